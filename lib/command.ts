/**
 * Commands as data, and the one POSIX-sh quoter.
 *
 * Every command that reaches a host is a `Command`: a POSIX `sh` script held as bytes, whose every
 * interpolated value went through `quote()`. There is no other way to build one: no string-formatted shell
 * commands anywhere. Two builders:
 *
 *   cmd('mdadm', '--detail', '--export', device)        argv form: every word quoted
 *   sh`test -e ${path} && cat -- ${path}`               script form: literal text is the author's,
 *                                                       every ${value} is quoted (arrays: one word each)
 *
 * Values may be strings, byte arrays (non-UTF-8 bytes survive intact), numbers, Secrets (revealed in the
 * script, masked as *** in `display`), other Commands (embedded as a sub-script) or `raw()` fragments.
 */
import { isUtf8 } from 'node:buffer';
import type { ReadTogether } from './connection/together.ts';
import { MASK, Secret } from './secret.ts';

/** A byte-exact argument, or a value rendered as one word. */
export type Word = string | number | Uint8Array | Secret;
/** What `sh` accepts inside ${...}. */
export type Interpolation = Word | Command | Raw | readonly Word[];

export class QuoteError extends Error {
  override name = 'QuoteError';
}

/** A fragment of script text that is inserted as-is (the author vouches for it). */
export class Raw {
  constructor(readonly text: string) {}
}

/** Insert trusted script text without quoting (operators, redirections built by library code). */
export function raw(text: string): Raw {
  return new Raw(text);
}

// Bytes that never need quoting in any position but the command word (where `=` would make an assignment).
const SAFE_BYTES = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-') {
  SAFE_BYTES[c.charCodeAt(0)] = 1;
}
const QUOTE = 0x27; // '
const ESCAPED_QUOTE = Buffer.from(`'\\''`);

function isSafe(bytes: Uint8Array, commandWord: boolean): boolean {
  if (bytes.length === 0) return false;
  for (const b of bytes) {
    if (SAFE_BYTES[b] !== 1) return false;
    if (commandWord && b === 0x3d) return false; // '='
  }
  return true;
}

/**
 * Quote bytes as one POSIX shell word. Single quotes keep every byte literally except the quote itself,
 * which is written as '\''. A NUL byte cannot be part of any argument and is refused.
 */
export function quoteBytes(bytes: Uint8Array, commandWord = false): Buffer {
  if (bytes.includes(0)) {
    throw new QuoteError('a command argument contains a NUL byte, which no program argument can carry');
  }
  if (isSafe(bytes, commandWord)) return Buffer.from(bytes);
  const parts: Buffer[] = [Buffer.from("'")];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === QUOTE) {
      parts.push(Buffer.from(bytes.subarray(start, i)), ESCAPED_QUOTE);
      start = i + 1;
    }
  }
  parts.push(Buffer.from(bytes.subarray(start)), Buffer.from("'"));
  return Buffer.concat(parts);
}

/** Quote a string as one POSIX shell word (UTF-8). */
export function quote(value: string): string {
  return quoteBytes(Buffer.from(value, 'utf8')).toString('utf8');
}

function wordBytes(value: Word): Buffer {
  if (value instanceof Secret) return Buffer.from(value.reveal(), 'utf8');
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new QuoteError(`a command argument is not a finite number: ${value}`);
    return Buffer.from(String(value));
  }
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  return Buffer.from(value);
}

/** A printable form of bytes: UTF-8 where valid, \xNN escapes where not. */
function printable(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  if (!text.includes('\uFFFD')) return text;
  let out = '';
  for (const b of bytes) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

export interface CommandOptions {
  /** Bytes or text written to the command's standard input (then closed). */
  stdin?: string | Uint8Array | Secret;
  /** Exit codes that mean success for this command (default [0]). */
  okCodes?: readonly number[];
  /** Kill the command after this many milliseconds (overrides the connection's default). */
  timeoutMs?: number;
  /** What the command reads, for a batch that may read it with others of its kind (lib/connection/together.ts). */
  together?: ReadTogether;
}

export class Command {
  /** The script as the shell will read it. */
  readonly script: Buffer;
  /** The script for humans: secrets masked, non-UTF-8 bytes escaped. */
  readonly display: string;
  readonly stdin: Buffer | undefined;
  readonly okCodes: readonly number[];
  readonly timeoutMs: number | undefined;
  /** True when stdin holds a secret (displays never print stdin, but reporters may say it was given). */
  readonly secretStdin: boolean;
  /** What the command reads, for a batch that may read it with others of its kind (lib/connection/together.ts). */
  readonly together: ReadTogether | undefined;

  constructor(script: Buffer, display: string, options: CommandOptions = {}) {
    this.script = script;
    this.display = display;
    const stdin = options.stdin;
    this.secretStdin = stdin instanceof Secret;
    this.stdin =
      stdin === undefined
        ? undefined
        : stdin instanceof Secret
          ? Buffer.from(stdin.reveal(), 'utf8')
          : typeof stdin === 'string'
            ? Buffer.from(stdin, 'utf8')
            : Buffer.from(stdin);
    this.okCodes = options.okCodes ?? [0];
    this.timeoutMs = options.timeoutMs;
    this.together = options.together;
  }

  /** The same script with other options. */
  with(options: CommandOptions): Command {
    const merged: CommandOptions = {
      okCodes: this.okCodes,
      ...(this.stdin !== undefined ? { stdin: this.stdin } : {}),
      ...(this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {}),
      ...(this.together !== undefined ? { together: this.together } : {}),
      ...options,
    };
    return new Command(this.script, this.display, merged);
  }

  toString(): string {
    return this.display;
  }

  toJSON(): string {
    return this.display;
  }
}

function joinBytes(parts: readonly Buffer[], separator: string): Buffer {
  const sep = Buffer.from(separator);
  return Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [sep, p])));
}

function render(value: Interpolation, commandWord: boolean): { bytes: Buffer; shown: string } {
  if (value instanceof Command) return { bytes: value.script, shown: value.display };
  if (value instanceof Raw) return { bytes: Buffer.from(value.text, 'utf8'), shown: value.text };
  if (Array.isArray(value)) {
    const words = (value as readonly Word[]).map((w, i) => render(w, commandWord && i === 0));
    return { bytes: joinBytes(words.map((w) => w.bytes), ' '), shown: words.map((w) => w.shown).join(' ') };
  }
  const word = value as Word;
  const bytes = quoteBytes(wordBytes(word), commandWord);
  return { bytes, shown: word instanceof Secret ? MASK : printable(bytes) };
}

/** Build a command from argv: every word is quoted. */
export function cmd(program: Word, ...args: readonly (Word | readonly Word[])[]): Command {
  const words = [render(program, true), ...args.map((a) => render(a as Interpolation, false))];
  return new Command(joinBytes(words.map((w) => w.bytes), ' '), words.map((w) => w.shown).join(' '));
}

/** Build a script from a template: literal parts are the author's, every ${value} is quoted. */
export function sh(strings: TemplateStringsArray, ...values: readonly Interpolation[]): Command {
  const bytes: Buffer[] = [];
  let shown = '';
  strings.forEach((literal, i) => {
    bytes.push(Buffer.from(literal, 'utf8'));
    shown += literal;
    if (i < values.length) {
      const part = render(values[i] as Interpolation, false);
      bytes.push(part.bytes);
      shown += part.shown;
    }
  });
  return new Command(Buffer.concat(bytes), shown);
}

/** Join commands into one script, each run only if the previous succeeded (each grouped in { }). */
export function andThen(...commands: readonly Command[]): Command {
  const grouped = commands.map((c) => Buffer.concat([Buffer.from('{ '), c.script, Buffer.from('\n}')]));
  return new Command(joinBytes(grouped, ' && '), commands.map((c) => c.display).join(' && '));
}

/**
 * A script that holds bytes which are not UTF-8 cannot travel as a JavaScript string (process arguments,
 * zx, ssh2-promise). Such a script is sent as ASCII: `eval "$(printf '%b' '\0351...')"`, which gives the shell
 * the very same bytes (command substitution only drops trailing newlines, which do not change a script).
 */
export function asciiSafe(script: Buffer): Buffer {
  if (isUtf8(script)) return script;
  let escaped = '';
  for (const b of script) {
    escaped += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\0${b.toString(8).padStart(3, '0')}`;
  }
  return Buffer.from(`eval "$(printf '%b' ${quote(escaped)})"`);
}

export interface WrapOptions {
  /** Run as this user through `sudo -n` (true = root). */
  become?: boolean | string;
  /**
   * Kill the command on the host after this many milliseconds: coreutils `timeout` sends TERM to the command's
   * whole process group, then KILL 5 s later (exit code 124, or 137 when KILL was needed).
   */
  timeoutMs?: number;
}

/** Seconds between TERM and KILL for a command past its timeout. */
export const KILL_AFTER_S = 5;

/**
 * One command's line in a batch (lib/connection/batch.ts), run by the batch's own /bin/sh: as the connecting
 * user, a subshell that evals the script with LC_ALL=C (a syntax error, an `exit` or a `cd` stay in it, and no
 * program is started for the wrapping); with become, `sudo -n ... /bin/sh -c` as wrapForHost has it. No
 * timeout of its own: the batch has one.
 */
export function wrapForBatch(command: Command, options: { become?: boolean | string } = {}): Buffer {
  if (options.become) return wrapForHost(command, { become: options.become });
  return Buffer.concat([Buffer.from('(LC_ALL=C; export LC_ALL; eval '), quoteBytes(asciiSafe(command.script)), Buffer.from(')')]);
}

/**
 * The exact bytes sent to a host: `/bin/sh -c '<script>'` with LC_ALL=C, optionally under `sudo -n`.
 * Wrapping in /bin/sh makes the command independent of the login shell (bash, zsh, fish, csh).
 */
export function wrapForHost(command: Command, options: WrapOptions = {}): Buffer {
  const inner = Buffer.concat([Buffer.from('LC_ALL=C; export LC_ALL; '), asciiSafe(command.script)]);
  const parts: Buffer[] = [];
  if (options.become) {
    const user = options.become === true ? 'root' : options.become;
    parts.push(Buffer.from('sudo -n -H -u '), quoteBytes(Buffer.from(user)), Buffer.from(' -- '));
  }
  if (options.timeoutMs !== undefined) {
    if (!(options.timeoutMs > 0)) throw new QuoteError(`a command timeout must be positive, not ${options.timeoutMs}`);
    parts.push(Buffer.from(`timeout -k ${KILL_AFTER_S} ${options.timeoutMs / 1000} `));
  }
  parts.push(Buffer.from('/bin/sh -c '), quoteBytes(inner));
  return Buffer.concat(parts);
}
