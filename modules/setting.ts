/**
 * setting: `key = value` settings in a config file, keeping its comments and layout byte for byte.
 *
 * Works for iscsid.conf (`node.session.timeo.replacement_timeout = 15`), shell-style `KEY=value` files,
 * whitespace-separated files (`separator: ' '`, sshd_config style) and ini files with `[section]`s.
 *
 * For each key, within its section (or before the first section header when no section is given):
 *   - the first active occurrence is changed in place (its own spacing around the separator is kept);
 *   - later active occurrences are removed;
 *   - a key present only commented out (`# key = value`, `#key=value`) gets its line right after the last
 *     such commented line;
 *   - otherwise the line is appended at the end of the section (the section is appended when missing);
 *   - null removes every active occurrence.
 * Values are compared without surrounding blanks and written verbatim (one line each). Everything else is preserved byte for byte (the file is handled as bytes, not decoded).
 */
import { defineModule, type Change } from '../lib/module.ts';
import { Secret } from '../lib/secret.ts';
import { planContent, readFile, type FileContentFacts } from './copy.ts';
import { attributeChanges, attributeSchema, pathSchema, type Attributes } from './file.ts';

export interface SettingFormat {
  /** Written between key and value in new lines (default ' = '); its non-blank part is what is matched. */
  separator: string;
  /** Comment prefix (default '#'). */
  comment: string;
  /** ini section; undefined: the part of the file before the first section header. */
  section?: string;
}

export interface SettingEdit {
  readonly key: string;
  readonly kind: 'set' | 'add' | 'remove' | 'duplicate';
  /** The value it had (set, remove). */
  readonly old?: string;
}

export interface SettingsResult {
  readonly text: string;
  readonly edits: readonly SettingEdit[];
}

const HEADER = /^\s*\[([^\]]*)\]\s*\r?$/;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

interface Matchers {
  active: RegExp;
  commented: RegExp;
}

function matchers(key: string, format: SettingFormat): Matchers {
  const core = format.separator.trim();
  const sep = core === '' ? '[ \\t]+' : `[ \\t]*${escapeRegExp(core)}[ \\t]*`;
  const k = escapeRegExp(key);
  return {
    // groups: indent, separator as written, value, CR
    active: new RegExp(`^([ \\t]*)${k}(${sep})(.*?)(\\r?)$`),
    commented: new RegExp(`^([ \\t]*)(?:${escapeRegExp(format.comment)})+[ \\t]*${k}(?:${sep})(.*?)(\\r?)$`),
  };
}

/** [start, end) of the lines a key lives in, and where the section header is (-1: none). */
function region(lines: readonly string[], section: string | undefined): { start: number; end: number; found: boolean } {
  const headers: number[] = [];
  lines.forEach((l, i) => {
    if (HEADER.test(l)) headers.push(i);
  });
  if (section === undefined) return { start: 0, end: headers[0] ?? lines.length, found: true };
  const at = headers.find((i) => HEADER.exec(lines[i] ?? '')?.[1]?.trim() === section);
  if (at === undefined) return { start: lines.length, end: lines.length, found: false };
  const next = headers.find((i) => i > at);
  return { start: at + 1, end: next ?? lines.length, found: true };
}

/** The value of the first active occurrence of key (null: not set). */
export function readSetting(text: string, key: string, format: SettingFormat): string | null {
  const lines = text.split('\n');
  const { start, end } = region(lines, format.section);
  const m = matchers(key, format);
  for (let i = start; i < end; i++) {
    const hit = m.active.exec(lines[i] ?? '');
    if (hit) return (hit[3] ?? '').trim();
  }
  return null;
}

/** Apply settings to a config text (pure). Applying the result again changes nothing. */
export function applySettings(
  text: string,
  settings: Iterable<readonly [string, string | null]>,
  format: SettingFormat,
): SettingsResult {
  let finalNewline = text === '' || text.endsWith('\n');
  const lines = text === '' ? [] : text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  const edits: SettingEdit[] = [];
  for (const [key, value] of settings) {
    const m = matchers(key, format);
    const r = region(lines, format.section);
    const active: number[] = [];
    let lastCommented = -1;
    for (let i = r.start; i < r.end; i++) {
      const line = lines[i] ?? '';
      if (m.active.test(line)) active.push(i);
      else if (m.commented.test(line)) lastCommented = i;
    }
    const [first, ...later] = active;
    // Removing the last line of a file without a final newline: the line before keeps its newline.
    const removeLine = (i: number): void => {
      if (i === lines.length - 1) finalNewline = true;
      lines.splice(i, 1);
    };
    for (const i of later.reverse()) {
      removeLine(i);
      edits.push({ key, kind: value === null ? 'remove' : 'duplicate' });
    }
    if (first !== undefined) {
      const hit = m.active.exec(lines[first] ?? '');
      const old = (hit?.[3] ?? '').trim();
      if (value === null) {
        removeLine(first);
        edits.push({ key, kind: 'remove', old });
      } else if (old.trim() !== value.trim() && hit) {
        lines[first] = `${hit[1] ?? ''}${key}${hit[2] ?? ''}${value}${hit[4] ?? ''}`;
        edits.push({ key, kind: 'set', old });
      }
      continue;
    }
    if (value === null) continue;
    const line = `${key}${format.separator}${value}`;
    edits.push({ key, kind: 'add' });
    if (lastCommented >= 0) {
      const hit = m.commented.exec(lines[lastCommented] ?? '');
      lines.splice(lastCommented + 1, 0, `${hit?.[1] ?? ''}${line}${hit?.[3] ?? ''}`);
      continue;
    }
    if (!r.found) {
      if (lines.length > 0 && (lines[lines.length - 1] ?? '').trim() !== '') lines.push('');
      lines.push(`[${format.section ?? ''}]`, line);
      finalNewline = true;
      continue;
    }
    // After the last non-blank line of the region (blank lines before the next section stay there).
    let at = r.end;
    while (at > r.start && (lines[at - 1] ?? '').trim() === '') at--;
    if (r.end < lines.length || at < r.end) {
      lines.splice(at, 0, line);
    } else {
      lines.push(line);
      finalNewline = true;
    }
  }
  const out = lines.join('\n');
  return { text: lines.length > 0 && finalNewline ? `${out}\n` : out, edits };
}

/** Replace the values of the given keys' active lines (secrets) by a mask, for display. */
export function maskSettings(text: string, masks: ReadonlyMap<string, string>, format: SettingFormat): string {
  if (masks.size === 0) return text;
  const lines = text.split('\n');
  const { start, end } = region(lines, format.section);
  for (const [key, mask] of masks) {
    const m = matchers(key, format);
    for (let i = start; i < end; i++) {
      const hit = m.active.exec(lines[i] ?? '');
      if (hit) lines[i] = `${hit[1] ?? ''}${key}${hit[2] ?? ''}${mask}${hit[4] ?? ''}`;
    }
  }
  return lines.join('\n');
}

export type SettingValue = string | number | boolean | null;

export interface SettingParams extends Attributes {
  path: string;
  settings?: Record<string, SettingValue>;
  secrets?: Record<string, Secret>;
  separator?: string;
  comment?: string;
  section?: string;
  create?: boolean;
}

/** Bytes <-> a string with one char per byte, so that any file survives the text transform exactly. */
const asBytes = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
const asText = (s: string): string => Buffer.from(s, 'latin1').toString('utf8');

function render(v: Exclude<SettingValue, null>): string {
  return typeof v === 'string' ? v : String(v);
}

function formatOf(p: SettingParams): SettingFormat {
  return {
    separator: asBytes(p.separator ?? ' = '),
    comment: asBytes(p.comment ?? '#'),
    ...(p.section !== undefined ? { section: asBytes(p.section) } : {}),
  };
}

export function planSetting(p: SettingParams, f: FileContentFacts): Change[] {
  const settings = p.settings ?? {};
  const secrets = p.secrets ?? {};
  const both = Object.keys(secrets).filter((k) => k in settings);
  if (both.length > 0) throw new Error(`keys given both in settings and secrets: ${both.join(', ')}`);
  if (f.stat === null && f.linkTarget === null && !p.create) {
    throw new Error(`${p.path} does not exist (set create: true to create it)`);
  }
  const format = formatOf(p);
  const core = format.separator.trim();
  const bad = [...Object.keys(settings), ...Object.keys(secrets)].filter((k) => core !== '' && asBytes(k).includes(core));
  if (bad.length > 0) throw new Error(`keys contain the separator ${JSON.stringify(core)}: ${bad.join(', ')}`);
  const ops: [string, string | null][] = [
    ...Object.entries(settings).map(([k, v]): [string, string | null] => [asBytes(k), v === null ? null : asBytes(render(v))]),
    ...Object.entries(secrets).map(([k, v]): [string, string] => [asBytes(k), asBytes(v.reveal())]),
  ];
  const before = f.content === null ? '' : f.content.toString('latin1');
  const result = applySettings(before, ops, format);
  if (result.text === before && f.stat !== null) return attributeChanges(p.path, f.stat, p);
  const secretKeys = new Set(Object.keys(secrets).map(asBytes));
  const masksBefore = new Map([...secretKeys].map((k) => [k, '***']));
  const masksAfter = new Map(
    [...secretKeys].map((k) => [k, readSetting(before, k, format) === readSetting(result.text, k, format) ? '***' : '*** (changed)']),
  );
  const show = (e: SettingEdit): string => {
    const key = asText(e.key);
    const value = settings[key];
    const now = secretKeys.has(e.key) ? '***' : value === undefined || value === null ? '' : render(value);
    const was = e.old === undefined ? '' : secretKeys.has(e.key) ? ' (was ***)' : ` (was ${asText(e.old)})`;
    if (e.kind === 'duplicate') return `remove duplicate ${key}`;
    if (e.kind === 'remove') return `remove ${key}${was}`;
    return `${e.kind} ${key}${p.separator ?? ' = '}${now}${was}`;
  };
  const [change, ...attrs] = planContent(
    {
      path: p.path,
      content: Buffer.from(result.text, 'latin1'),
      display: asText(maskSettings(result.text, masksAfter, format)),
      displayBefore: f.content === null ? '' : asText(maskSettings(before, masksBefore, format)),
      ...(p.mode !== undefined ? { mode: p.mode } : {}),
      ...(p.owner !== undefined ? { owner: p.owner } : {}),
      ...(p.group !== undefined ? { group: p.group } : {}),
    },
    f,
  );
  if (change === undefined) return attrs;
  const what = result.edits.length > 0 ? result.edits.map(show).join('; ') : 'rewrite';
  const where = p.section !== undefined ? ` [${p.section}]` : '';
  return [{ ...change, summary: `${f.stat === null ? 'create' : 'update'} ${p.path}${where}: ${what}` }, ...attrs];
}

const KEY_PATTERN = '^[^\\s\\[\\]#;=]+$';

/** What later tasks read: the value of each key of `settings` in the file after the task (null: not set). */
export type SettingOutput = Record<string, string | null>;

export const setting = defineModule<SettingParams, FileContentFacts, SettingOutput>({
  name: 'setting',
  description:
    'key = value settings in a config file (iscsid.conf, KEY=value shell files, ini sections), changed in place keeping comments and layout.',
  examples: [
    { title: 'iscsid.conf settings, the CHAP secret among them', params: { path: '/etc/iscsi/iscsid.conf', settings: { 'node.startup': 'automatic', 'node.session.auth.authmethod': 'CHAP' }, secrets: { 'node.session.auth.password': 'chap-secret-01' }, mode: '0600' } },
    { title: 'An option in an ini section', params: { path: '/etc/app/app.ini', section: 'server', settings: { listen: '0.0.0.0:8080' }, separator: ' = ', create: true } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    anyOf: [{ properties: { settings: true }, required: ['settings'] }, { properties: { secrets: true }, required: ['secrets'] }],
    properties: {
      path: { ...pathSchema, description: 'Absolute path of the config file (a symbolic link there is an error).' },
      settings: {
        type: 'object',
        propertyNames: { pattern: KEY_PATTERN },
        additionalProperties: { type: ['string', 'number', 'boolean', 'null'], pattern: '^[^\\n\\r]*$' },
        description:
          'Key -> value, written verbatim after the separator (true/false and numbers as text; quote shell values yourself). null removes the key.',
      },
      secrets: {
        type: 'object',
        propertyNames: { pattern: KEY_PATTERN },
        additionalProperties: { secret: true },
        description: 'Key -> secret value (e.g. CHAP passwords): written in clear, shown as *** in summaries and diffs.',
      },
      separator: {
        type: 'string',
        default: ' = ',
        pattern: '^[ \\t]*[^ \\t\\n]*[ \\t]*$',
        description:
          "Written between key and value in new lines (default ' = '; '=' for shell files; ' ' for sshd_config style). Existing lines match on its non-blank part with any spacing.",
      },
      comment: { type: 'string', default: '#', minLength: 1, pattern: '^\\S+$', description: "Comment prefix (default '#'; ';' for some ini files)." },
      section: {
        type: 'string',
        pattern: '^[^\\]\\n]+$',
        description: 'ini section ([name]) the keys belong to; appended when missing. Without it: the part before any section header.',
      },
      create: {
        type: 'boolean',
        default: false,
        description: 'Create the file when it does not exist (default false: a missing file is an error, e.g. a package not installed).',
      },
      ...attributeSchema,
    },
  },
  readAhead: true,
  gather: (conn, params) => readFile(conn, params.path),
  plan: planSetting,
  output: (params, facts) => {
    const text = facts.content === null ? '' : facts.content.toString('latin1');
    const format = formatOf(params);
    const out: SettingOutput = {};
    for (const k of Object.keys(params.settings ?? {})) {
      const v = readSetting(text, asBytes(k), format);
      out[k] = v === null ? null : asText(v);
    }
    return out;
  },
});
