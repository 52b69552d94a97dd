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
 * Items whose wrapped command is byte for byte the same run once and share the result.
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
  const scoped = items.map((i) => scopeOf(i.command, i.options ?? {}));
  const lines: Line[] = [];
  // Reads of one family and one become: two or more are read together (lib/connection/together.ts).
  const groups = new Map<string, number[]>();
  items.forEach((item, i) => {
    const together = item.command.together;
    if (together === undefined) return;
    const key = `${together.family} ${JSON.stringify((scoped[i] as { become: boolean | string }).become)}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const grouped = new Set<number>();
  for (const indexes of groups.values()) {
    if (indexes.length < 2) continue;
    const [head, ...rest] = indexes.map((i) => (items[i] as BatchItem).command.together as ReadTogether);
    const joined = (head as ReadTogether).join(rest, `sanbook-read-${randomBytes(16).toString('hex')}`);
    const first = scoped[indexes[0] as number] as { become: boolean | string };
    const answers = new Map<number, (r: ExecResult | undefined) => ExecResult | undefined>();
    let split: (ExecResult | undefined)[] | undefined;
    indexes.forEach((itemAt, k) => {
      grouped.add(itemAt);
      answers.set(itemAt, (r) => {
        split ??= r === undefined ? indexes.map(() => undefined) : joined.split(r);
        return split[k];
      });
    });
    lines.push({
      bytes: wrapForBatch(joined.script, { become: first.become }),
      display: joined.display,
      timeoutMs: Math.max(...indexes.map((i) => (scoped[i] as { timeoutMs: number }).timeoutMs)),
      answers,
    });
  }
  // The same read asked twice (three settings of one file gather that file three times) runs once: a batch
  // only reads, so both askers get the same bytes.
  const slot = new Map<string, Line>();
  items.forEach((item, i) => {
    if (grouped.has(i)) return;
    const { become, timeoutMs } = scoped[i] as { become: boolean | string; timeoutMs: number };
    const bytes = wrapForBatch(item.command, { become });
    const key = bytes.toString('latin1');
    let line = slot.get(key);
    if (line === undefined) {
      line = { bytes, display: item.command.display, timeoutMs, answers: new Map() };
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
