/**
 * Several commands in ONE round trip: one /bin/sh on the host runs them one after the other (lib/command.ts
 * wrapForBatch: a subshell each, or sudo for become), stdin from /dev/null, and writes a boundary line after
 * each command's output on both streams, which tells the outputs apart. The boundary is 128 random bits, new
 * for every batch: a command would have to print it to confuse the split.
 *
 * A subshell costs a fork; exec()'s wrapping (coreutils timeout, then /bin/sh) starts two programs, about 4 ms
 * of a host's CPU each time on the benchmark machine: most of what a quick read costs. So a batch has one
 * timeout for the whole, the longest of its commands' timeouts. A command the batch did not finish (the batch
 * timed out, its shell died) has no result: the caller runs it on its own.
 *
 * Items whose wrapped command is byte for byte the same run once and share the result. Reads that know what
 * they read (Command.together) are joined with the others of their family under the same become: one line
 * reads for them all, and each gets the result its own script would give (lib/connection/together.ts).
 *
 * The runner uses it to gather ahead (lib/read-ahead.ts); a connection offers it as `execBatch`.
 */
import { randomBytes } from 'node:crypto';
import { Command, wrapForBatch } from '../command.ts';
import type { ReadTogether } from './together.ts';
import type { BatchItem, ExecOptions, ExecResult } from './types.ts';

/** A command's become and timeout as the connection would run it (its own, else the connection's defaults). */
export type ScopeOf = (command: Command, options: ExecOptions) => { become: boolean | string; timeoutMs: number };
/** Run the batch's own script as the connecting user, with this timeout. */
export type RunScript = (script: Command, timeoutMs: number) => Promise<ExecResult>;

export function batchScript(lines: readonly Buffer[], boundary: string): Buffer {
  const parts: Buffer[] = [Buffer.from(`B=${boundary}\n`)];
  for (const line of lines) {
    parts.push(line, Buffer.from(` </dev/null; printf '\\n%s %d\\n' "$B" $?; printf '\\n%s\\n' "$B" >&2\n`));
  }
  return Buffer.concat(parts);
}

/** Split a batch's output: one result per command that finished, in order; undefined for the rest. */
export function splitBatch(result: ExecResult, boundary: string, count: number): (ExecResult | undefined)[] {
  const out: (ExecResult | undefined)[] = [];
  const outMark = Buffer.from(`\n${boundary} `);
  const errMark = `\n${boundary}\n`;
  let at = 0;
  let errAt = 0;
  for (let i = 0; i < count; i++) {
    const end = result.stdoutBytes.indexOf(outMark, at);
    const errEnd = result.stderr.indexOf(errMark, errAt);
    const eol = end < 0 ? -1 : result.stdoutBytes.indexOf(0x0a, end + outMark.length);
    if (end < 0 || eol < 0 || errEnd < 0) break;
    const code = Number(result.stdoutBytes.subarray(end + outMark.length, eol).toString('latin1'));
    if (!Number.isInteger(code)) break;
    const stdoutBytes = Buffer.from(result.stdoutBytes.subarray(at, end));
    out.push({
      exitCode: code,
      stdout: stdoutBytes.toString('utf8'),
      stderr: result.stderr.slice(errAt, errEnd),
      stdoutBytes,
      signal: null,
      timedOut: false,
      durationMs: result.durationMs,
    });
    at = eol + 1;
    errAt = errEnd + errMark.length;
  }
  while (out.length < count) out.push(undefined);
  return out;
}

/** A line of the batch script, and how its result becomes the results of the items it stands for. */
interface Line {
  readonly bytes: Buffer;
  readonly display: string;
  readonly timeoutMs: number;
  /** The items it answers: item index -> its result from the line's. */
  readonly answers: Map<number, (r: ExecResult | undefined) => ExecResult | undefined>;
}

/**
 * The shared body of Connection.execBatch: a line per command, the script run once, its output split. Reads
 * of one family and one become (lib/connection/together.ts: the paths of file and copy, package's dpkg-query)
 * share one line that reads for them all.
 */
export async function runBatch(items: readonly BatchItem[], scopeOf: ScopeOf, run: RunScript): Promise<(ExecResult | undefined)[]> {
  if (items.some((i) => i.command.stdin !== undefined)) throw new Error('a batched command cannot take stdin');
  const scoped = items.map((item) => ({ command: item.command, ...scopeOf(item.command, item.options ?? {}) }));
  const lines: Line[] = [];
  // Reads of one family and one become: two or more are read together (lib/connection/together.ts).
  const groups = new Map<string, { at: number; read: ReadTogether }[]>();
  scoped.forEach(({ command, become }, at) => {
    const read = command.together;
    if (read === undefined) return;
    const key = `${read.family} ${JSON.stringify(become)}`;
    groups.set(key, [...(groups.get(key) ?? []), { at, read }]);
  });
  const grouped = new Set<number>();
  for (const group of groups.values()) {
    const [head, ...rest] = group;
    if (head === undefined || rest.length === 0) continue;
    const joined = head.read.join(
      rest.map((g) => g.read),
      `sanbook-read-${randomBytes(16).toString('hex')}`,
    );
    const answers = new Map<number, (r: ExecResult | undefined) => ExecResult | undefined>();
    let split: (ExecResult | undefined)[] | undefined;
    group.forEach(({ at }, k) => {
      grouped.add(at);
      answers.set(at, (r) => {
        split ??= r === undefined ? group.map(() => undefined) : joined.split(r);
        return split[k];
      });
    });
    lines.push({
      bytes: wrapForBatch(joined.script, { become: scoped[head.at]?.become ?? false }),
      display: joined.display,
      timeoutMs: Math.max(...group.map(({ at }) => scoped[at]?.timeoutMs ?? 0)),
      answers,
    });
  }
  // The same read asked twice (three settings of one file gather that file three times) runs once: a batch
  // only reads, so both askers get the same bytes.
  const slot = new Map<string, Line>();
  scoped.forEach(({ command, become, timeoutMs }, i) => {
    if (grouped.has(i)) return;
    const bytes = wrapForBatch(command, { become });
    const key = bytes.toString('latin1');
    let line = slot.get(key);
    if (line === undefined) {
      line = { bytes, display: command.display, timeoutMs, answers: new Map() };
      slot.set(key, line);
      lines.push(line);
    }
    line.answers.set(i, (r) => r);
  });
  const boundary = `sanbook-batch-${randomBytes(16).toString('hex')}`;
  const display = `(a batch of ${lines.length}: ${lines.map((l) => l.display).join('; ')})`;
  const timeoutMs = Math.max(...lines.map((l) => l.timeoutMs));
  const result = await run(new Command(batchScript(lines.map((l) => l.bytes), boundary), display), timeoutMs);
  const outputs = splitBatch(result, boundary, lines.length);
  const results: (ExecResult | undefined)[] = items.map(() => undefined);
  lines.forEach((line, at) => {
    for (const [itemAt, answer] of line.answers) results[itemAt] = answer(outputs[at]);
  });
  return results;
}
