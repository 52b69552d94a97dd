/**
 * The local connection: commands run on this machine through zx, with the same wrapping as over SSH
 * (/bin/sh -c, LC_ALL=C, sudo -n for become), so a module behaves the same on both.
 */
import { wrapForHost, type Command } from '../command.ts';
import { runBatch } from './batch.ts';
import { putWith } from './put.ts';
import {
  CLIENT_GRACE_MS,
  ConnectionError,
  endedByTimeout,
  DEFAULT_COMMAND_TIMEOUT_MS,
  type BatchItem,
  type Connection,
  type ExecOptions,
  type ExecResult,
  type PutOptions,
} from './types.ts';

export interface LocalOptions {
  host?: string;
  become?: boolean | string;
  commandTimeoutMs?: number;
}

const identity = (s: string): string => s;

/** zx, loaded by the first local command: a run over SSH only never needs it. */
let zx: Promise<typeof import('zx')> | undefined;

export class LocalConnection implements Connection {
  readonly host: string;
  #count = 0;
  readonly #become: boolean | string;
  readonly #timeoutMs: number;

  constructor(options: LocalOptions = {}) {
    this.host = options.host ?? 'localhost';
    this.#become = options.become ?? false;
    this.#timeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  }

  get commandCount(): number {
    return this.#count;
  }

  /** A command's become and timeout: its own, else the connection's. */
  #scope(command: Command, options: ExecOptions): { become: boolean | string; timeoutMs: number } {
    return { become: options.become ?? this.#become, timeoutMs: options.timeoutMs ?? command.timeoutMs ?? this.#timeoutMs };
  }

  execBatch(items: readonly BatchItem[]): Promise<(ExecResult | undefined)[]> {
    return runBatch(
      items,
      (command, options) => this.#scope(command, options),
      (script, timeoutMs) => this.exec(script, { become: false, timeoutMs }),
    );
  }

  async exec(command: Command, options: ExecOptions = {}): Promise<ExecResult> {
    this.#count++;
    const { become, timeoutMs } = this.#scope(command, options);
    const script = wrapForHost(command, { become, timeoutMs }).toString('utf8');
    const started = performance.now();
    try {
      const { $ } = await (zx ??= import('zx'));
      const child = $({
        shell: '/bin/sh',
        prefix: '',
        postfix: '',
        quote: identity,
        nothrow: true,
        quiet: true,
        verbose: false,
        input: command.stdin ?? '',
      })`${script}`;
      // zx's own buffers join stdout with stderr and decode them as text: keep the raw bytes of each stream.
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const { stdout, stderr } = child;
      if (!stdout || !stderr) throw new Error('zx did not start the process');
      stdout.on('data', (b: Buffer) => out.push(b));
      stderr.on('data', (b: Buffer) => err.push(b));
      // `timeout` ends the command; this only catches a wrapper that itself hangs.
      let hung = false;
      const timer = setTimeout(() => {
        hung = true;
        void child.kill('SIGKILL').catch(() => undefined);
      }, timeoutMs + CLIENT_GRACE_MS);
      const done = await child.finally(() => clearTimeout(timer));
      const stdoutBytes = Buffer.concat(out);
      const exitCode = hung ? 124 : (done.exitCode ?? 128);
      const timedOut = hung || endedByTimeout(exitCode, performance.now() - started, timeoutMs);
      return {
        exitCode: timedOut ? 124 : exitCode,
        stdout: stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        stdoutBytes,
        signal: done.signal,
        timedOut,
        durationMs: performance.now() - started,
      };
    } catch (e) {
      throw new ConnectionError(this.host, `cannot run a local command: ${(e as Error).message}`);
    }
  }

  async put(path: string, content: string | Uint8Array, options: PutOptions = {}): Promise<void> {
    await putWith((c) => this.exec(c), this.host, path, content, options);
  }

  async close(): Promise<void> {}
}
