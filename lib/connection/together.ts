/**
 * Reads that a batch may do together: a command that knows what it reads (`Command.together`) can be joined
 * with the other reads of its family in the same batch, under the same become, into ONE script, whose output
 * is then cut into each read's own result: the very bytes and exit code its own script gives alone.
 *
 * Families: the paths of file, copy, template and setting (lib/connection/probe.ts); the dpkg-query of
 * package (modules/package.ts). A read the joint script cannot answer for sure has no result (undefined): its
 * task runs its own script in its turn.
 */
import type { Command } from '../command.ts';
import type { ExecResult } from './types.ts';

export interface Joined {
  /** The one script that reads for the whole group. */
  readonly script: Command;
  /** How the script appears in displays and errors. */
  readonly display: string;
  /** Its result cut into each read's, in the group's order. */
  split(result: ExecResult): (ExecResult | undefined)[];
}

export abstract class ReadTogether {
  /** Reads of the same family (and the same become) are joined. */
  abstract readonly family: string;
  /**
   * Join this read (first) and others of its family into one script. `mark` is fresh randomness the script may
   * use to tell its sections apart.
   */
  abstract join(others: readonly ReadTogether[], mark: string): Joined;
}

/** The reads of a group as their own class (the batch only groups reads of one family). */
export function sameFamily<T extends ReadTogether>(first: T, others: readonly ReadTogether[], kind: abstract new (...args: never[]) => T): T[] {
  return [first, ...others].map((r) => {
    if (!(r instanceof kind)) throw new Error(`a ${first.family} read cannot be joined with a ${r.family} read`);
    return r;
  });
}

/** An ExecResult for a read answered by a joint script. */
export function answered(stdout: Buffer, exitCode: number, durationMs: number): ExecResult {
  return { exitCode, stdout: stdout.toString('utf8'), stderr: '', stdoutBytes: stdout, signal: null, timedOut: false, durationMs };
}
