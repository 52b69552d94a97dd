/**
 * The connection contract shared by local (zx) and SSH (ssh2-promise) connections.
 *
 * exec() never throws because a command failed: a non-zero exit is data, the caller decides. It throws
 * `ConnectionError` only when the host cannot be reached or the connection dies, which the runner reports
 * as "unreachable".
 */
import type { Command } from '../command.ts';

export interface ExecResult {
  exitCode: number;
  /** stdout decoded as UTF-8 */
  stdout: string;
  stderr: string;
  /** stdout exactly as the host sent it */
  stdoutBytes: Buffer;
  /** The signal that ended the command, if any. */
  signal: string | null;
  /** True when the command was killed for running past its timeout (exitCode is then 124). */
  timedOut: boolean;
  durationMs: number;
}

export interface PutOptions {
  /** Octal mode, e.g. 0o644. Default: keep the mode of the file it replaces, else 0644. */
  mode?: number;
  /** Owner name. Default: keep the owner of the file it replaces, else the connecting user. */
  owner?: string;
  group?: string;
}

export interface ExecOptions {
  /** Override the connection's command timeout for this call. */
  timeoutMs?: number;
  /** Override the connection's become for this call (false: as the connecting user). */
  become?: boolean | string;
}

/** One command of a batch (Connection.execBatch). */
export interface BatchItem {
  readonly command: Command;
  readonly options?: ExecOptions;
}

export interface Connection {
  /** Inventory name of the host. */
  readonly host: string;
  /** Run a command (wrapped in /bin/sh -c with LC_ALL=C, under sudo -n when become is set). */
  exec(command: Command, options?: ExecOptions): Promise<ExecResult>;
  /** Write a file atomically: a temp file in the same folder, then rename. Throws on failure. */
  put(path: string, content: string | Uint8Array, options?: PutOptions): Promise<void>;
  /**
   * Run commands one after the other in ONE round trip (one shell on the host), each wrapped as exec() wraps
   * it, stdin from /dev/null (a command with stdin is refused). A result is undefined when that command did not
   * finish in the batch, or exited 124 or 137 (maybe its timeout): run it alone to know. Counts as one command.
   * Optional: without it, run each command with exec().
   */
  execBatch?(items: readonly BatchItem[]): Promise<(ExecResult | undefined)[]>;
  /** How many commands this connection has run (round trips). */
  readonly commandCount: number;
  close(): Promise<void>;
}

/** The host could not be reached, or the connection broke: the runner marks the host unreachable. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
  constructor(
    readonly host: string,
    message: string,
  ) {
    super(message);
  }
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;

/**
 * Commands are killed on the host by coreutils `timeout` (see wrapForHost). The client waits this much longer
 * before it gives up on a command whose host does not answer at all.
 */
export const CLIENT_GRACE_MS = 8_000;

/** Did the host's `timeout` end this command (124 after TERM, 137 after KILL), rather than the command itself? */
export function endedByTimeout(exitCode: number, durationMs: number, timeoutMs: number): boolean {
  return (exitCode === 124 || exitCode === 137) && durationMs >= timeoutMs - 50;
}
