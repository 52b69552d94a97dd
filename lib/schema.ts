/**
 * JSON-schema validation (ajv) shared by module params and inventories.
 *
 * Extra keyword: `secret: true` on a property accepts a string or a Secret and always yields a Secret, so a
 * password typed as a plain string in a playbook is masked from then on. `secret: {minLength, maxLength,
 * pattern}` also checks the string (the error never shows the value).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Secret } from './secret.ts';
import { UserError, type Where } from './errors.ts';

// validateSchema: false skips checking each schema against the JSON-schema meta-schema when it is compiled,
// about half of the compile time (0.19 s of 0.36 s for all modules' schemas). Strict mode and ajv's own checks
// of each keyword's value still refuse a misspelt keyword, a wrong type or a bad value at compile time
// (test/lib/schema.test.ts), and the meta-schema check of every module and playbook schema is a test.
/** One IPv4 octet (0-255, no leading zero), for patterns. */
export const IPV4_OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
/** A schema pattern: an IPv4 address. */
export const IPV4_PATTERN = `^${IPV4_OCTET}(\\.${IPV4_OCTET}){3}$`;
/** A schema pattern: an IPv4 address with its prefix length (10.3.1.51/24). */
export const IPV4_CIDR_PATTERN = `^${IPV4_OCTET}(\\.${IPV4_OCTET}){3}/([0-9]|[12][0-9]|3[0-2])$`;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true, validateSchema: false });

interface SecretRules {
  minLength?: number;
  maxLength?: number;
  pattern?: string;
}

function secretProblem(rules: SecretRules, value: string): string | undefined {
  if (rules.minLength !== undefined && value.length < rules.minLength) return `must be at least ${rules.minLength} characters`;
  if (rules.maxLength !== undefined && value.length > rules.maxLength) return `must be at most ${rules.maxLength} characters`;
  if (rules.pattern !== undefined && !new RegExp(rules.pattern, 'u').test(value)) return `must match pattern "${rules.pattern}"`;
  return undefined;
}

ajv.addKeyword({
  keyword: 'secret',
  schemaType: ['boolean', 'object'],
  modifying: true,
  errors: true,
  validate: function validateSecret(
    this: unknown,
    enabled: boolean | SecretRules,
    data: unknown,
    _parent: unknown,
    ctx?: { parentData: Record<string | number, unknown>; parentDataProperty: string | number },
  ): boolean {
    if (enabled === false) return true;
    const rules = typeof enabled === 'object' ? enabled : {};
    const value = data instanceof Secret ? data.reveal() : data;
    if (typeof value === 'string') {
      const problem = secretProblem(rules, value);
      if (problem !== undefined) {
        (validateSecret as unknown as { errors: Partial<ErrorObject>[] }).errors = [{ keyword: 'secret', message: problem, params: {} }];
        return false;
      }
      if (ctx && !(data instanceof Secret)) ctx.parentData[ctx.parentDataProperty] = new Secret(value);
      return true;
    }
    (validateSecret as unknown as { errors: Partial<ErrorObject>[] }).errors = [
      { keyword: 'secret', message: 'must be a string (a secret)', params: {} },
    ];
    return false;
  },
});

const compiled = new WeakMap<object, ValidateFunction>();

function compile(schema: Readonly<Record<string, unknown>>): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema as Record<string, unknown>);
    compiled.set(schema, fn);
  }
  return fn;
}

/**
 * Compile a schema now (the validator is kept): the runner compiles its play's schemas while the hosts connect,
 * instead of when the first task on the first host validates its params.
 */
export function precompile(schema: Readonly<Record<string, unknown>>): void {
  compile(schema);
}

/** A copy that keeps class instances (Secret, Buffer) as they are: validation may modify the copy only. */
export function cloneData<T>(value: T): T {
  if (Array.isArray(value)) return value.map(cloneData) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = cloneData(v);
    return out as T;
  }
  return value;
}

/** `/devices/0` -> `devices[0]`; the property an `additionalProperties` or `required` error is about. */
export function fieldOf(error: ErrorObject): string {
  let path = error.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join('')
    .replace(/^\./, '');
  const params = error.params as Record<string, unknown>;
  const extra =
    typeof params['additionalProperty'] === 'string'
      ? params['additionalProperty']
      : typeof params['missingProperty'] === 'string'
        ? params['missingProperty']
        : undefined;
  if (extra !== undefined) path = path ? `${path}.${extra}` : extra;
  return path || '(top level)';
}

function describe(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return 'is not a known field';
    case 'required':
      return 'is required';
    case 'enum':
      return `must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return error.message ?? 'is invalid';
  }
}

/** Every schema error as `field: message`, deduplicated, most specific first. */
export function formatErrors(errors: readonly ErrorObject[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of errors) {
    // `anyOf`/`oneOf` summaries repeat what their branches said.
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'if') continue;
    const line = `${fieldOf(e)} ${describe(e)}`;
    if (!seen.has(line)) {
      seen.add(line);
      out.push(line);
    }
  }
  return out;
}

/** Validate data against a schema; throws UserError naming each bad field. Returns the validated copy. */
/**
 * The first string (value, map key, or Secret) that no command or file could carry faithfully: one holding a NUL
 * byte (no program argument, path or config line can), or one that is not valid Unicode (a lone UTF-16
 * surrogate: it would be written as U+FFFD, silently not what was given). The field is named as fieldOf names it.
 */
export function badText(value: unknown, field = ''): { field: string; problem: string } | undefined {
  const check = (text: string, at: string): { field: string; problem: string } | undefined => {
    if (text.includes('\0')) return { field: at, problem: 'contains a NUL byte, which no command argument, path or text file line can carry' };
    if (!text.isWellFormed()) return { field: at, problem: 'is not valid Unicode text (it holds a lone UTF-16 surrogate)' };
    return undefined;
  };
  if (typeof value === 'string') return check(value, field);
  if (value instanceof Secret) return check(value.reveal(), field);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = badText(value[i], `${field}[${i}]`);
      if (bad) return bad;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) {
      const at = field === '' ? k : `${field}.${k}`;
      const bad = check(k, `${at} (the key)`) ?? badText(v, at);
      if (bad) return bad;
    }
  }
  return undefined;
}

export function validateSchema<T>(schema: Readonly<Record<string, unknown>>, data: unknown, where: Where): T {
  const bad = badText(data);
  if (bad) throw new UserError(bad.problem, { ...where, field: bad.field || '(the whole value)' });
  const copy = cloneData(data);
  const validate = compile(schema);
  if (!validate(copy)) {
    const errors = validate.errors ?? [];
    let lines = formatErrors(errors);
    // Only an anyOf/oneOf said no (no branch error was more precise): say that.
    if (lines.length === 0) lines = errors.map((e) => `${fieldOf(e)} ${e.message ?? 'is invalid'}`);
    const only = errors.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && e.keyword !== 'if');
    if (lines.length === 1 && only[0]) {
      throw new UserError(describe(only[0]), { ...where, field: fieldOf(only[0]) });
    }
    throw new UserError(`${lines.length} errors:\n  - ${lines.join('\n  - ')}`, where);
  }
  return copy as T;
}

/** Validate a module's params (the module is named in the message). */
export function validateParams<P>(moduleName: string, schema: Readonly<Record<string, unknown>>, raw: unknown): P {
  return validateSchema<P>(schema, raw, { module: moduleName });
}
