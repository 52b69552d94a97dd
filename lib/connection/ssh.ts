/**
 * The SSH connection (ssh2-promise over ssh2): ONE SSH connection per host, opened once and reused by every
 * command; each command runs on its own session channel, wrapped like a local one (/bin/sh -c, LC_ALL=C,
 * sudo -n for become). Host keys are checked against known_hosts (strict, accept-new or off).
 *
 * What ssh2-promise does that we step around (read in its sources):
 * - its exec() rejects on any stderr and loses the exit status: we use the channel from spawn();
 * - it retries 10 x 5 s by default: `reconnect: false`, and ssh2's readyTimeout bounds the whole connect;
 * - it caches connections process-wide by `uniqueId` (default user@host:port), so two objects for the same
 *   target would share (and one's close() would break the other): every SshConnection has its own id;
 * - any ssh2 `error` event makes it close the cached connection: an agent socket that does not exist would
 *   kill the connection during authentication, so a missing agent socket is not offered at all.
 */
import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { constants as osConstants } from 'node:os';
import ssh2, { type ClientChannel, type ConnectConfig, type ExecOptions as Ssh2ExecOptions } from 'ssh2';
import SSH2Promise from 'ssh2-promise';
import { wrapForHost, type Command } from '../command.ts';
import { maskSecrets, type Secret } from '../secret.ts';
import { decideHostKey, preferredHostKeyAlgorithms, type HostKeyChecking } from './host-keys.ts';
import { hostKeyName, knownKeyTypes, readKnownHosts, type KnownHostEntry } from './known_hosts.ts';
import { runBatch } from './batch.ts';
import { putWith } from './put.ts';
import {
  CLIENT_GRACE_MS,
  ConnectionError,
  DEFAULT_COMMAND_TIMEOUT_MS,
  endedByTimeout,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type BatchItem,
  type Connection,
  type ExecOptions,
  type ExecResult,
  type PutOptions,
} from './types.ts';

export type { HostKeyChecking } from './host-keys.ts';

export interface SshOptions {
  /** Inventory name of the host. */
  host: string;
  address: string;
  port: number;
  user: string;
  privateKeyFile?: string;
  passphrase?: Secret;
  password?: Secret;
  /** ssh-agent socket path; default process.env.SSH_AUTH_SOCK; '' = no agent. */
  agent?: string;
  hostKeyChecking: HostKeyChecking;
  knownHostsFile: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  become?: boolean | string;
  keepaliveIntervalMs?: number;
  /**
   * Commands run at once on the connection. Default 5: sshd's MaxSessions is 10, and a session whose channel
   * just closed keeps its slot until sshd's next loop pass, so up to twice this many can be counted.
   */
  maxSessions?: number;
}

export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
/** How long a channel refused by the server (MaxSessions) is retried. */
const OPEN_RETRY_MS = 10_000;

/** The part of ssh2-promise's per-connection object that we use (its typings declare connect(): any). */
interface SshSession {
  spawn(cmd: string, params?: string[], options?: Ssh2ExecOptions): Promise<ClientChannel>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  return e === null || e === undefined ? 'the connection closed' : String(e);
}

function errorField(e: unknown, field: 'level' | 'code' | 'reason'): unknown {
  return typeof e === 'object' && e !== null && field in e ? (e as Record<string, unknown>)[field] : undefined;
}

function payloadError(payload: unknown): unknown {
  const err = typeof payload === 'object' && payload !== null ? (payload as { err?: unknown }).err : undefined;
  return err === null ? undefined : err;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

function signalExitCode(signal: string | null): number {
  const n = signal === null ? undefined : (osConstants.signals as Record<string, number | undefined>)[signal];
  return n === undefined ? 255 : 128 + n;
}

/** A counting semaphore: at most `size` channels open at once. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#free++;
  }
}

export class SshConnection implements Connection {
  readonly host: string;
  readonly #options: SshOptions;
  readonly #uniqueId = `sanbook:${randomUUID()}`;
  readonly #slots: Slots;
  #count = 0;
  #ssh: SSH2Promise | undefined;
  #opening: Promise<SshSession> | undefined;
  /** Why the connection is unusable (lost or closed), once it is. */
  #down: string | undefined;
  /** What the host-key check decided, to explain ssh2's bare "Host denied (verification failed)". */
  #hostKeyRefusal: string | undefined;

  constructor(options: SshOptions) {
    this.host = options.host;
    this.#options = options;
    this.#slots = new Slots(Math.max(1, options.maxSessions ?? 5));
  }

  get commandCount(): number {
    return this.#count;
  }

  /** `root@10.3.0.5:22`: who we talk to. */
  get target(): string {
    const o = this.#options;
    return `${o.user}@${o.address}:${o.port}`;
  }

  /** Every message names the inventory host first: `host target1: ...`; secrets are masked. */
  #fail(message: string): ConnectionError {
    return new ConnectionError(this.host, maskSecrets(`host ${this.host}: ${message}`));
  }

  /** Open the SSH connection (once; later calls share it). */
  async connect(): Promise<void> {
    this.#opening ??= this.#open();
    await this.#opening;
  }

  async #authConfig(): Promise<{ config: Partial<ConnectConfig>; tried: string[] }> {
    const o = this.#options;
    const config: Partial<ConnectConfig> = {};
    const tried: string[] = [];
    if (o.privateKeyFile !== undefined) {
      let key: Buffer;
      try {
        key = await readFile(o.privateKeyFile);
      } catch (e) {
        throw this.#fail(`cannot read the private key file ${o.privateKeyFile} for ${this.target}: ${errorText(e)}`);
      }
      const parsed = ssh2.utils.parseKey(key, o.passphrase?.reveal());
      if (parsed instanceof Error) {
        throw this.#fail(`cannot use the private key ${o.privateKeyFile} for ${this.target}: ${parsed.message}`);
      }
      config.privateKey = key;
      if (o.passphrase !== undefined) config.passphrase = o.passphrase.reveal();
      tried.push(`key file ${o.privateKeyFile}`);
    }
    const agent = o.agent ?? process.env.SSH_AUTH_SOCK ?? '';
    if (agent !== '') {
      const isSocket = await stat(agent).then((s) => s.isSocket(), () => false);
      if (isSocket) {
        config.agent = agent;
        tried.push(`ssh-agent ${agent}`);
      } else {
        tried.push(`ssh-agent (no socket at ${agent})`);
      }
    }
    if (o.password !== undefined) {
      config.password = o.password.reveal();
      tried.push('password');
    }
    if (tried.length === 0) tried.push('nothing: set a private key file, an ssh-agent or a password');
    return { config, tried };
  }

  async #knownHosts(): Promise<KnownHostEntry[]> {
    const o = this.#options;
    try {
      return await readKnownHosts(o.knownHostsFile);
    } catch (e) {
      if (o.hostKeyChecking === 'off') return [];
      throw this.#fail(`cannot read the known_hosts file ${o.knownHostsFile} for ${this.target}: ${errorText(e)}`);
    }
  }

  /** ssh2's hostVerifier: the policy decides; a refusal is kept to explain ssh2's bare "verification failed". */
  #verifyHostKey(entries: readonly KnownHostEntry[], key: Buffer, verify: (ok: boolean) => void): void {
    const o = this.#options;
    decideHostKey({ ...o, entries, key }).then(
      (refusal) => {
        if (refusal !== undefined) this.#hostKeyRefusal = refusal;
        verify(refusal === undefined);
      },
      (e: unknown) => {
        this.#hostKeyRefusal = `cannot check the host key of ${hostKeyName(o.address, o.port)}: ${errorText(e)}`;
        verify(false);
      },
    );
  }

  async #open(): Promise<SshSession> {
    const o = this.#options;
    const connectTimeoutMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const { config: auth, tried } = await this.#authConfig();
    const entries = await this.#knownHosts();
    const known = knownKeyTypes(entries, o.address, o.port);
    const serverHostKey = o.hostKeyChecking === 'off' ? undefined : preferredHostKeyAlgorithms(known);
    // ssh2-promise rejects with the LAST error: after a ready timeout that is "Connection lost before
    // handshake". Every error is also emitted as a "disconnect" event: keep them all to tell the cause.
    const errors: unknown[] = [];
    // Our own TCP socket, with Nagle's algorithm off. ssh2's own socket keeps it on, and then every command
    // waits for the peer's delayed ACK: about 40 ms a round trip on any link (48 ms a command on loopback
    // against 5.5 ms without it; bench/RESULTS.md). ssh2 takes over the socket and its errors; the listener
    // here only keeps an error that comes before ssh2 has attached its own from being an uncaught one.
    const sock = tcpConnect({ host: o.address, port: o.port, noDelay: true });
    sock.on('error', (e) => errors.push(e));
    const ssh = new SSH2Promise({
      ...auth,
      uniqueId: this.#uniqueId,
      host: o.address,
      port: o.port,
      sock,
      username: o.user,
      reconnect: false,
      readyTimeout: connectTimeoutMs,
      keepaliveInterval: o.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => this.#verifyHostKey(entries, key, verify),
      ...(serverHostKey !== undefined ? { algorithms: { serverHostKey } } : {}),
    });
    this.#ssh = ssh;
    ssh.on('ssh', (status: unknown, _conn: unknown, payload: unknown) => {
      const err = payloadError(payload);
      if (status === 'disconnect' && err !== undefined) errors.push(err);
    });
    let guard: NodeJS.Timeout | undefined;
    try {
      // ssh2's readyTimeout bounds connect + handshake + auth; the guard only catches a hang past it.
      const timeout = new Promise<never>((_, reject) => {
        guard = setTimeout(() => reject(new Error('Timed out while waiting for handshake')), connectTimeoutMs + 2_000);
      });
      const session = (await Promise.race([ssh.connect() as Promise<SshSession>, timeout])) as SshSession;
      session.on('ssh:disconnect', (_conn: unknown, payload: unknown) => {
        const err = payloadError(payload);
        this.#down ??= `the SSH connection to ${this.target} was lost${err ? `: ${errorText(err)}` : ''}`;
      });
      return session;
    } catch (e) {
      await this.#dispose();
      throw this.#connectError([...errors, e], connectTimeoutMs, tried);
    } finally {
      clearTimeout(guard);
    }
  }

  #connectError(errors: readonly unknown[], connectTimeoutMs: number, tried: readonly string[]): ConnectionError {
    const mine = errors.find((e) => e instanceof ConnectionError);
    if (mine instanceof ConnectionError) return mine;
    if (this.#hostKeyRefusal !== undefined) return this.#fail(this.#hostKeyRefusal);
    const has = (test: (e: unknown) => boolean): boolean => errors.some(test);
    if (has((e) => errorField(e, 'level') === 'client-authentication')) {
      return this.#fail(`authentication failed for ${this.target} (tried: ${tried.join(', ')})`);
    }
    if (has((e) => errorField(e, 'code') === 'ECONNREFUSED')) {
      return this.#fail(`cannot connect to ${this.target}: connection refused (is sshd running on port ${this.#options.port}?)`);
    }
    if (has((e) => ['ENOTFOUND', 'EAI_AGAIN'].includes(String(errorField(e, 'code'))))) {
      return this.#fail(`cannot connect to ${this.target}: unknown address ${this.#options.address}`);
    }
    if (has((e) => errorField(e, 'level') === 'client-timeout' || /timed out/i.test(errorText(e)))) {
      return this.#fail(
        `cannot connect to ${this.target} within ${seconds(connectTimeoutMs)} (the host is down or unreachable, a firewall drops the packets, or the server does not answer)`,
      );
    }
    const first = errors.find((e) => e !== null && e !== undefined);
    return this.#fail(`cannot connect to ${this.target}: ${errorText(first)}`);
  }

  async #dispose(): Promise<void> {
    const ssh = this.#ssh;
    this.#ssh = undefined;
    if (ssh !== undefined) await ssh.close().catch(() => undefined);
    // A connect that failed before ssh2-promise emitted "disconnect" leaves its cache entry behind.
    const cache = SSH2Promise.__cache as Record<string, unknown>;
    delete cache[this.#uniqueId];
  }

  /** A command's become and timeout: its own, else the connection's. */
  #scope(command: Command, options: ExecOptions): { become: boolean | string; timeoutMs: number } {
    return {
      become: options.become ?? this.#options.become ?? false,
      timeoutMs: options.timeoutMs ?? command.timeoutMs ?? this.#options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    };
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
    // The host's coreutils `timeout` kills the command's process group: nothing is left running there.
    const wrapped = wrapForHost(command, { become, timeoutMs });
    const session = await (this.#opening ??= this.#open());
    await this.#slots.acquire();
    try {
      return await this.#exec(session, wrapped, command.stdin, timeoutMs);
    } finally {
      this.#slots.release();
    }
  }

  async #exec(session: SshSession, wrapped: Buffer, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
    let channel: ClientChannel | undefined;
    const deadline = performance.now() + OPEN_RETRY_MS;
    for (let attempt = 0; channel === undefined; attempt++) {
      if (this.#down !== undefined) throw this.#fail(this.#down);
      try {
        channel = await session.spawn(wrapped.toString('utf8'));
      } catch (e) {
        if (this.#down !== undefined) throw this.#fail(this.#down);
        // The server refused the channel (a `reason` code): sshd frees a finished session's slot only after a
        // pass of its main loop, so a burst can briefly exceed MaxSessions. Wait and retry.
        if (typeof errorField(e, 'reason') !== 'number' || performance.now() > deadline) {
          throw this.#fail(`cannot start a command on ${this.target}: ${errorText(e)}`);
        }
        await new Promise((r) => setTimeout(r, Math.min(10 * 2 ** attempt, 250)));
      }
    }
    return this.#run(channel, stdin, timeoutMs);
  }

  /**
   * Collect a channel's output and exit status. The command is ended on the host by `timeout` (exit 124 or
   * 137); if the host does not even answer CLIENT_GRACE_MS after that, the channel is closed and the command
   * reported as timed out.
   */
  #run(channel: ClientChannel, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
    const started = performance.now();
    return new Promise<ExecResult>((resolve, reject) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let exitCode: number | null | undefined;
      let signal: string | null = null;
      let hung = false;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (!hung && exitCode === undefined && this.#down !== undefined) {
          reject(this.#fail(`${this.#down} (while a command was running)`));
          return;
        }
        const durationMs = performance.now() - started;
        const code = hung ? 124 : typeof exitCode === 'number' ? exitCode : signalExitCode(signal);
        const timedOut = hung || endedByTimeout(code, durationMs, timeoutMs);
        const stdoutBytes = Buffer.concat(stdout);
        resolve({
          exitCode: timedOut ? 124 : code,
          stdout: stdoutBytes.toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
          stdoutBytes,
          signal,
          timedOut,
          durationMs,
        });
      };
      const timer = setTimeout(() => {
        hung = true;
        channel.close();
        finish();
      }, timeoutMs + CLIENT_GRACE_MS);
      channel.on('data', (chunk: Buffer) => stdout.push(chunk));
      channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      // The exit status can arrive in the same packet batch as the exec reply, i.e. before this listener
      // exists: ssh2 keeps it and passes it to 'close' as well, which cannot fire before stdout is read.
      const onExit = (code?: unknown, sig?: unknown): void => {
        if (exitCode === undefined && (typeof code === 'number' || code === null)) exitCode = code;
        if (typeof sig === 'string') signal ??= sig;
      };
      channel.on('exit', onExit);
      // Writing stdin to a command that already exited, or a channel torn down with the connection, can
      // error: the exit status and the close event still tell what happened.
      channel.on('error', () => undefined);
      channel.stderr.on('error', () => undefined);
      channel.on('close', (code?: unknown, sig?: unknown) => {
        onExit(code, sig);
        finish();
      });
      channel.end(stdin);
    });
  }

  async put(path: string, content: string | Uint8Array, options: PutOptions = {}): Promise<void> {
    await putWith((c) => this.exec(c), this.host, path, content, options);
  }

  async close(): Promise<void> {
    this.#down ??= `the SSH connection to ${this.target} is closed`;
    const opening = this.#opening;
    if (opening !== undefined) await opening.catch(() => undefined);
    await this.#dispose();
  }
}

/** Open an SSH connection (once) and return it; throws ConnectionError if the host cannot be reached. */
export async function connectSsh(options: SshOptions): Promise<SshConnection> {
  const connection = new SshConnection(options);
  await connection.connect();
  return connection;
}
