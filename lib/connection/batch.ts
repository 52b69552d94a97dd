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

/** The shared body of Connection.execBatch: a line per command, the script run once, its output split. */
export async function runBatch(items: readonly BatchItem[], scopeOf: ScopeOf, run: RunScript): Promise<(ExecResult | undefined)[]> {
  if (items.some((i) => i.command.stdin !== undefined)) throw new Error('a batched command cannot take stdin');
  const wrapped = items.map((i) => {
    const { become, timeoutMs } = scopeOf(i.command, i.options ?? {});
    return { line: wrapForBatch(i.command, { become }), timeoutMs };
  });
  // The same read asked twice (three settings of one file gather that file three times) runs once: a batch
  // only reads, so both askers get the same bytes.
  const lines: Buffer[] = [];
  const displays: string[] = [];
  const slot = new Map<string, number>();
  const slotOf = wrapped.map((w, i) => {
    const key = w.line.toString('latin1');
    let at = slot.get(key);
    if (at === undefined) {
      at = lines.push(w.line) - 1;
      displays.push((items[i] as BatchItem).command.display);
      slot.set(key, at);
    }
    return at;
  });
  const boundary = `sanbook-batch-${randomBytes(16).toString('hex')}`;
  const display = `(a batch of ${lines.length}: ${displays.join('; ')})`;
  const timeoutMs = Math.max(...wrapped.map((w) => w.timeoutMs));
  const result = await run(new Command(batchScript(lines, boundary), display), timeoutMs);
  const outputs = splitBatch(result, boundary, lines.length);
  return slotOf.map((at) => outputs[at]);
}
