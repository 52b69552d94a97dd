/**
 * Secrets: values that must never appear in any output (progress, diffs, JSON lines, errors, logs).
 *
 * A Secret hides its value from every ordinary way of turning it into text (toString, JSON, util.inspect).
 * Every value ever wrapped is also remembered in a process-wide registry, so that text which reached us by
 * another road (a command's stderr echoing a password, a diff of a config file holding it) is masked by
 * `maskSecrets()` before any reporter prints it.
 */
import { inspect } from 'node:util';

export const MASK = '***';

const registry = new Set<string>();
let pattern: RegExp | null = null;

function register(value: string): void {
  // Very short values would mask innocent text everywhere ("a", "1"); they are still hidden when printed
  // as a Secret, but only values of 3+ characters are searched for in free text.
  if (value.length < 3 || registry.has(value)) return;
  registry.add(value);
  pattern = null;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Replace every registered secret value in `text` with `***`. */
export function maskSecrets(text: string): string {
  if (registry.size === 0 || text.length === 0) return text;
  if (pattern === null) {
    // Longest first, so that a secret containing another is masked whole.
    const values = [...registry].sort((a, b) => b.length - a.length).map(escapeRegExp);
    pattern = new RegExp(values.join('|'), 'g');
  }
  return text.replace(pattern, MASK);
}

/** Mask secrets inside any JSON-like value (strings are masked, Secrets become ***). */
export function maskDeep(value: unknown): unknown {
  if (typeof value === 'string') return maskSecrets(value);
  if (value instanceof Secret) return MASK;
  if (Array.isArray(value)) return value.map(maskDeep);
  if (Buffer.isBuffer(value)) return maskSecrets(value.toString('utf8'));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskDeep(v);
    return out;
  }
  return value;
}

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    if (typeof value !== 'string') throw new TypeError('a secret must be a string');
    this.#value = value;
    register(value);
  }

  /** The clear value: only the command builder and file writers call this. */
  reveal(): string {
    return this.#value;
  }

  equals(other: Secret | string): boolean {
    return this.#value === (other instanceof Secret ? other.reveal() : other);
  }

  toString(): string {
    return MASK;
  }

  toJSON(): string {
    return MASK;
  }

  [inspect.custom](): string {
    return `Secret(${MASK})`;
  }
}

/** Wrap a value as a secret (idempotent). */
export function secret(value: string | Secret): Secret {
  return value instanceof Secret ? value : new Secret(value);
}

/** The clear text of a value that may be a secret. */
export function reveal(value: string | Secret): string {
  return value instanceof Secret ? value.reveal() : value;
}
