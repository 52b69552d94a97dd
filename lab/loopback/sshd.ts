/**
 * Real OpenSSH servers on loopback for tests: each `startSshd()` runs its own `/usr/sbin/sshd -D -e` on
 * 127.0.0.1 and a free port, from a temp dir holding its host key, config, log, authorized_keys, a client key
 * pair and a known_hosts file with the server's key. `stop()` kills exactly that sshd (by PID) and the
 * processes it started, and removes the dir. Also an ssh-agent helper for agent authentication tests.
 *
 *   const sshd = await startSshd();
 *   t.teardown(() => sshd.stop());
 *   const conn = await connectSsh(sshd.sshOptions());
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SshOptions } from '../../lib/connection/ssh.ts';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface StartSshdOptions {
  /**
   * Let the user's bash source ~/.bashrc for every command, as it does on a real host (default false). bash
   * sources it when run by sshd with SHLVL unset (Debian builds it with SSH_SOURCE_BASHRC); a slow .bashrc
   * (pyenv init: ~150 ms of CPU) would dominate every test, so the harness sets SHLVL=1 unless asked.
   */
  sourceBashrc?: boolean;
  /** Extra sshd_config lines. */
  extraConfig?: readonly string[];
  /** How long to wait for the server to accept connections (default 10 s). */
  readyTimeoutMs?: number;
}

export interface TestSshd {
  readonly pid: number;
  readonly port: number;
  readonly address: string;
  readonly user: string;
  readonly dir: string;
  readonly clientKeyFile: string;
  readonly hostKeyFile: string;
  readonly knownHostsFile: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 AAAA...` */
  readonly hostKeyLine: string;
  readonly logFile: string;
  /** Options for connectSsh(): this server, its client key, its known_hosts, strict checking, no agent. */
  sshOptions(overrides?: Partial<SshOptions>): SshOptions;
  /** How many logins the server accepted ("Accepted publickey" lines in its log). */
  acceptedConnections(): number;
  /** Authorize one more public key line for the user. */
  authorizeKey(publicKeyLine: string): Promise<void>;
  log(): string;
  /**
   * Break every open SSH connection, as a network failure would: SIGKILL the per-connection sshd processes
   * (so no exit status can reach the client), then the commands they ran. The server keeps listening.
   * Resolves with the number of connections broken.
   */
  dropConnections(): Promise<number>;
  /** The server dies, as a crashed or killed sshd: every connection broken, the port closed. */
  kill(): Promise<void>;
  /**
   * The host stops answering, as a paused VM: SIGSTOP to the server, its connections and the commands they run
   * (the kernel still holds the sockets open). Resolves with how many processes were stopped.
   */
  freeze(): Promise<number>;
  /** SIGCONT to what freeze() stopped. */
  thaw(): Promise<void>;
  /** Start it again after kill(): the same port, host key and config. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestKeyPair {
  privateKeyFile: string;
  publicKeyLine: string;
}

/** `ssh-keygen -t ed25519` at `file` (passphrase '' = none). */
export async function generateKey(file: string, passphrase = '', comment = 'sanbook-test'): Promise<TestKeyPair> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', comment, '-f', file]);
  return { privateKeyFile: file, publicKeyLine: (await readFile(`${file}.pub`, 'utf8')).trim() };
}

// ---- processes: kill exactly what we started -----------------------------------------------------------

interface ProcInfo {
  ppid: number;
  start: string;
}

function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), start: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** Every live descendant of pid (children first found, then theirs), with start times to guard PID reuse. */
function descendants(root: number): Map<number, string> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = procInfo(Number(name));
    if (info !== undefined) children.set(info.ppid, [...(children.get(info.ppid) ?? []), Number(name)]);
  }
  const found = new Map<number, string>();
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift() as number) ?? []) {
      const info = procInfo(child);
      if (info !== undefined && !found.has(child)) {
        found.set(child, info.start);
        queue.push(child);
      }
    }
  }
  return found;
}

/** The direct children of pid, with their start times. */
function childrenOf(pid: number): Map<number, string> {
  const found = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = procInfo(Number(name));
    if (info?.ppid === pid) found.set(Number(name), info.start);
  }
  return found;
}

function isGone(pid: number, start: string): boolean {
  if (procInfo(pid)?.start !== start) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
  } catch {
    return true;
  }
}

async function dropConnections(sshdPid: number): Promise<number> {
  const connections = childrenOf(sshdPid);
  const sessions = new Map<number, string>();
  for (const pid of connections.keys()) for (const [p, start] of descendants(pid)) sessions.set(p, start);
  for (const [p, start] of connections) signalIfSame(p, start, 'SIGKILL');
  const deadline = Date.now() + 2_000;
  while ([...connections].some(([p, start]) => !isGone(p, start)) && Date.now() < deadline) await sleep(10);
  for (const [p, start] of sessions) signalIfSame(p, start, 'SIGKILL');
  return connections.size;
}

function signalIfSame(pid: number, start: string, signal: NodeJS.Signals): boolean {
  if (procInfo(pid)?.start !== start) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Stop a child process we spawned, and everything it started: TERM, then KILL after `graceMs`. */
export async function killTree(child: ChildProcess, graceMs = 2_000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const tree = descendants(pid);
  const exited = child.exitCode !== null || child.signalCode !== null;
  const exit = exited ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
  if (!exited) child.kill('SIGTERM');
  for (const [p, start] of tree) signalIfSame(p, start, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    const alive = [...tree].some(([p, start]) => procInfo(p)?.start === start);
    if (!alive && (child.exitCode !== null || child.signalCode !== null)) break;
    await sleep(25);
  }
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const [p, start] of tree) signalIfSame(p, start, 'SIGKILL');
  await exit;
}

// Last resort if a test forgets to stop what it started: kill it when the test process exits.
const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const child of running) {
    if (child.pid !== undefined) for (const [p, start] of descendants(child.pid)) signalIfSame(p, start, 'SIGKILL');
    child.kill('SIGKILL');
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

function rm(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

// ---- sshd ----------------------------------------------------------------------------------------------

/** Ports this process has handed to an sshd: two servers started at once must never be given the same one. */
const handedOut = new Set<number>();

/**
 * A port nothing listens on, never one handed out before. (The kernel may give a closed probe's port to the next
 * probe: with 200 servers started at once two of them got the same port, the second could not bind, and the
 * first answered for both.)
 */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await probePort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves when something on address:port answers with an SSH banner. */
function probeBanner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('data', (d: Buffer) => done(d.toString('latin1').startsWith('SSH-2.0-')));
    socket.once('error', () => done(false));
  });
}

function sshdConfig(dir: string, port: number, options: StartSshdOptions): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    'AddressFamily inet',
    `HostKey ${join(dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    'LogLevel VERBOSE',
    'UseDNS no',
    'PrintMotd no',
    'MaxStartups 100:30:200',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    ...(options.sourceBashrc === true ? [] : ['SetEnv SHLVL=1']),
    ...(options.extraConfig ?? []),
    '',
  ].join('\n');
}

/** sshd -e logs "Server listening on 127.0.0.1 port N." once it has bound the port: how many times it has. */
function listenings(logFile: string, port: number): number {
  return existsSync(logFile) ? readFileSync(logFile, 'utf8').split(`Server listening on 127.0.0.1 port ${port}.`).length - 1 : 0;
}

/** sshd on configFile, logging to logFile; resolves once its own log says it listens (the `times`-th time). */
async function spawnSshd(configFile: string, logFile: string, port: number, times: number, readyTimeoutMs: number): Promise<ChildProcess> {
  const logFd = openSync(logFile, 'a', 0o600);
  const child = spawn(SSHD, ['-D', '-e', '-f', configFile], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  track(child);
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    // The banner must come from this sshd: its own log says it listens (another process may hold the port).
    if ((await probeBanner(port)) && listenings(logFile, port) >= times && child.exitCode === null) return child;
    await sleep(50);
  }
  await killTree(child);
  const state = child.exitCode !== null ? `sshd exited with status ${child.exitCode}` : `sshd did not answer within ${readyTimeoutMs} ms`;
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  throw new Error(`${state} on 127.0.0.1:${port}; its log (${logFile}):\n${log}`);
}

async function launch(dir: string, options: StartSshdOptions): Promise<{ child: ChildProcess; port: number }> {
  const configFile = join(dir, 'sshd_config');
  const logFile = join(dir, 'sshd.log');
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    await writeFile(configFile, sshdConfig(dir, port, options), { mode: 0o600 });
    try {
      return { child: await spawnSshd(configFile, logFile, port, listenings(logFile, port) + 1, readyTimeoutMs), port };
    } catch (e) {
      lastError = (e as Error).message;
      if (!/Address already in use|Cannot bind/i.test(lastError)) break;
    }
  }
  throw new Error(`cannot start a test sshd: ${lastError}`);
}

export async function startSshd(options: StartSshdOptions = {}): Promise<TestSshd> {
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = await makeTempDir('sanbook-sshd-');
  try {
    const hostKeyFile = join(dir, 'ssh_host_ed25519_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'sanbook-test-host', '-f', hostKeyFile]);
    const client = await generateKey(join(dir, 'client_key'));
    const authorizedKeys = join(dir, 'authorized_keys');
    await writeFile(authorizedKeys, `${client.publicKeyLine}\n`, { mode: 0o600 });
    const launched = await launch(dir, options);
    const port = launched.port;
    let child = launched.child;
    const [type, key] = (await readFile(`${hostKeyFile}.pub`, 'utf8')).trim().split(/\s+/);
    const hostKeyLine = `[127.0.0.1]:${port} ${type} ${key}`;
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, `${hostKeyLine}\n`, { mode: 0o600 });
    const logFile = join(dir, 'sshd.log');
    const user = userInfo().username;
    const log = (): string => readFileSync(logFile, 'utf8');
    let stopped: Promise<void> | undefined;
    let frozen: [number, string][] = [];
    return {
      get pid() {
        return child.pid as number;
      },
      port,
      address: '127.0.0.1',
      user,
      dir,
      clientKeyFile: client.privateKeyFile,
      hostKeyFile,
      knownHostsFile,
      hostKeyLine,
      logFile,
      sshOptions: (overrides = {}) => ({
        host: `sshd-${port}`,
        address: '127.0.0.1',
        port,
        user,
        privateKeyFile: client.privateKeyFile,
        agent: '',
        hostKeyChecking: 'strict',
        knownHostsFile,
        connectTimeoutMs: 5_000,
        ...overrides,
      }),
      acceptedConnections: () => log().split('\n').filter((l) => l.includes('Accepted publickey')).length,
      authorizeKey: (line) => appendFile(authorizedKeys, `${line.trim()}\n`),
      log,
      dropConnections: () => dropConnections(child.pid as number),
      freeze: async () => {
        frozen = [[child.pid as number, procInfo(child.pid as number)?.start ?? ''], ...descendants(child.pid as number)];
        for (const [p, start] of frozen) signalIfSame(p, start, 'SIGSTOP');
        return frozen.length;
      },
      thaw: async () => {
        for (const [p, start] of frozen) signalIfSame(p, start, 'SIGCONT');
        frozen = [];
      },
      kill: async () => {
        await dropConnections(child.pid as number);
        await killTree(child, 0);
      },
      restart: async () => {
        if (child.exitCode === null && child.signalCode === null) throw new Error('restart: this sshd is still running (kill() it first)');
        const configFile = join(dir, 'sshd_config');
        child = await spawnSshd(configFile, logFile, port, listenings(logFile, port) + 1, options.readyTimeoutMs ?? 10_000);
      },
      stop: () =>
        (stopped ??= (async () => {
          for (const [p, start] of frozen) signalIfSame(p, start, 'SIGCONT');
          await killTree(child);
          rm(dir);
        })()),
    };
  } catch (e) {
    rm(dir);
    throw e;
  }
}

/** Start n servers at once. */
export async function startSshdHosts(n: number, options: StartSshdOptions = {}): Promise<TestSshd[]> {
  const started = await Promise.allSettled(Array.from({ length: n }, () => startSshd(options)));
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }
  return servers;
}

// ---- ssh-agent -----------------------------------------------------------------------------------------

export interface TestSshAgent {
  readonly pid: number;
  readonly socket: string;
  stop(): Promise<void>;
}

/** Start `ssh-agent -D -a SOCKET` holding the given keys (passphrase-less key files). */
export async function startSshAgent(keyFiles: readonly string[]): Promise<TestSshAgent> {
  const dir = await makeTempDir('sanbook-agent-');
  const socket = join(dir, 'agent.sock');
  const child = spawn('ssh-agent', ['-D', '-a', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
  track(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = async (): Promise<void> => {
    await killTree(child);
    rm(dir);
  };
  try {
    const deadline = Date.now() + 5_000;
    while (!existsSync(socket)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`ssh-agent did not start: ${stderr}`);
      await sleep(20);
    }
    for (const key of keyFiles) {
      await run('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: socket } });
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { pid: child.pid as number, socket, stop };
}
