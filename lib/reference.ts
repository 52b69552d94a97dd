/**
 * The module reference, made from the modules' own schemas (the one source of their documentation): one
 * section per module with a table of its params.
 */
interface SchemaNode {
  type?: string | string[];
  description?: string;
  enum?: unknown[];
  default?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  items?: SchemaNode;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  anyOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  secret?: boolean | { minLength?: number; maxLength?: number; pattern?: string };
  additionalProperties?: boolean | SchemaNode;
}

export interface DocumentedModule {
  readonly name: string;
  readonly description: string;
  readonly schema: Readonly<Record<string, unknown>>;
  readonly examples?: readonly ModuleExample[];
  readonly readAhead?: boolean;
}

/** A task of the module as a user writes it; the docs test validates `params` against the schema. */
export interface ModuleExample {
  readonly title: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** Task options shown with it (force, notify, ...). */
  readonly options?: Readonly<Record<string, unknown>>;
}

/** A value as TS source (object keys unquoted when they can be). */
function tsValue(v: unknown, indent: string): string {
  if (Array.isArray(v)) {
    const items = v.map((x) => tsValue(x, `${indent}  `));
    const flat = `[${items.join(', ')}]`;
    return flat.length <= 80 && !flat.includes('\n') ? flat : `[\n${items.map((i) => `${indent}  ${i}`).join(',\n')},\n${indent}]`;
  }
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v).map(([k, x]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${tsValue(x, `${indent}  `)}`);
    const flat = `{ ${entries.join(', ')} }`;
    return flat.length <= 80 && !flat.includes('\n') ? flat : `{\n${entries.map((e) => `${indent}  ${e}`).join(',\n')},\n${indent}}`;
  }
  return typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : String(v);
}

/** The name a module is exported under (package -> pkg, multipath_conf -> multipathConf). */
function exportName(name: string): string {
  return name === 'package' ? 'pkg' : name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function exampleBlock(m: DocumentedModule, e: ModuleExample): string {
  const opts = e.options ? `, ${tsValue(e.options, '')}` : '';
  return ['```ts', `${exportName(m.name)}.task('${e.title.replace(/'/g, "\\'")}', ${tsValue(e.params, '')}${opts})`, '```'].join('\n');
}

function typeOf(node: SchemaNode): string {
  if (node.secret) return 'secret string';
  if (node.enum) return node.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' | ');
  const alternatives = node.anyOf ?? node.oneOf;
  if (alternatives && !node.type) return alternatives.map(typeOf).join(' | ');
  const t = Array.isArray(node.type) ? node.type.join(' | ') : (node.type ?? 'any');
  if (t === 'array' && node.items) return `${typeOf(node.items)}[]`;
  if (t === 'object' && node.additionalProperties && typeof node.additionalProperties === 'object') {
    return `map of ${typeOf(node.additionalProperties)}`;
  }
  return t;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function rows(props: Record<string, SchemaNode>, required: readonly string[], prefix: string): string[] {
  const out: string[] = [];
  for (const [name, node] of Object.entries(props)) {
    const notes: string[] = [];
    if (node.default !== undefined) notes.push(`default \`${JSON.stringify(node.default)}\``);
    const rules = typeof node.secret === 'object' ? node.secret : node;
    if (rules.pattern !== undefined) notes.push(`pattern \`${rules.pattern}\``);
    if (typeof node.secret === 'object' && node.secret.minLength !== undefined) notes.push(`at least ${node.secret.minLength} characters`);
    if (node.minimum !== undefined) notes.push(`min ${node.minimum}`);
    if (node.maximum !== undefined) notes.push(`max ${node.maximum}`);
    const desc = [node.description ?? '', notes.length > 0 ? `(${notes.join(', ')})` : ''].filter(Boolean).join(' ');
    out.push(`| \`${prefix}${name}\` | ${cell(typeOf(node))} | ${required.includes(name) ? 'yes' : ''} | ${cell(desc)} |`);
    if (node.properties) out.push(...rows(node.properties, node.required ?? [], `${prefix}${name}.`));
    if (node.items?.properties) out.push(...rows(node.items.properties, node.items.required ?? [], `${prefix}${name}[].`));
  }
  return out;
}

export function moduleReference(modules: readonly DocumentedModule[], title: string, intro: string): string {
  const parts = [`# ${title}`, '', intro, ''];
  parts.push(modules.map((m) => `- [${m.name}](#${m.name})`).join('\n'), '');
  for (const m of modules) {
    const schema = m.schema as SchemaNode;
    parts.push(`## ${m.name}`, '', m.description, '');
    if (m.readAhead === true) {
      parts.push('Its gather is a quick read: a converged run reads it ahead, in one batch with the play\'s other quick reads.', '');
    }
    const alternatives = schema.anyOf ?? schema.oneOf;
    if (alternatives) {
      const needs = alternatives.map((a) => (a.required ?? []).map((r) => `\`${r}\``).join(' + ')).filter(Boolean);
      if (needs.length > 0) parts.push(`Give one of: ${needs.join(', ')}.`, '');
    }
    parts.push('| param | type | required | description |', '|---|---|---|---|');
    parts.push(...rows(schema.properties ?? {}, schema.required ?? [], ''), '');
    for (const e of m.examples ?? []) parts.push(`${e.title}:`, '', exampleBlock(m, e), '');
  }
  return parts.join('\n');
}
