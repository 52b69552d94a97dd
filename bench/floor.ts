/**
 * The raw floor: one SSH connection per host, all hosts in parallel, 20 trivial commands one after the other
 * on each connection. Prints one JSON line: connection set-up and command times (ms, as seen in this process).
 *
 *   npx tsx bench/floor.ts HOSTS.json [--via raw|sanbook] [--commands 20]
 *
 * HOSTS.json: { user, keyFile, knownHostsFile, hosts: [{ name, port }] }.
 * --via raw: ssh2's Client directly on a socket with TCP_NODELAY, `exec('true')` (what the SSH round trip
 *   itself costs);
 * --via sanbook: our SshConnection (lib/connection/ssh.ts), `exec(cmd('true'))`, i.e. with the wrapping every
 *   command of ours gets (LC_ALL=C, coreutils timeout, /bin/sh -c) and its host-key check.
 */
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';

export interface FloorHosts {
  user: string;
  keyFile: string;
  knownHostsFile: string;
  hosts: { name: string; port: number }[];
}

export interface FloorReport {
  via: 'raw' | 'sanbook';
  hosts: number;
  commands: number;
  /** From the start to the last host's last command. */
  totalMs: number;
  /** Connection set-up, slowest host. */
  connectMaxMs: number;
  /** Connection set-up, median host. */
  connectMedianMs: number;
  /** The commands of the slowest host, after its connection. */
  commandsMaxMs: number;
  /** One command, median over every command of every host. */
  perCommandMedianMs: number;
}

interface HostTiming {
  connectMs: number;
  commandMs: number[];
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The host's ed25519 key from a known_hosts line `[127.0.0.1]:PORT ssh-ed25519 BASE64`. */
function knownKeys(text: string): Map<number, Buffer> {
  const keys = new Map<number, Buffer>();
  for (const line of text.split('\n')) {
    const m = /^\[127\.0\.0\.1\]:(\d+)\s+\S+\s+(\S+)/.exec(line);
    if (m) keys.set(Number(m[1]), Buffer.from(m[2] as string, 'base64'));
  }
  return keys;
}

function rawExec(client: ssh2.Client, command: string): Promise<number> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) return reject(err);
      let code = -1;
      channel.on('exit', (c: number | null) => (code = c ?? -1));
      channel.on('close', () => resolve(code));
      channel.resume();
      channel.stderr.resume();
    });
  });
}

async function rawHost(spec: FloorHosts, port: number, key: Buffer, hostKey: Buffer | undefined, n: number): Promise<HostTiming> {
  const t0 = performance.now();
  const client = new ssh2.Client();
  // Nagle's algorithm off, as our connection has it: with it on, each command waits ~40 ms for a delayed ACK,
  // and that would be a floor no client needs to pay.
  const sock = connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({
      sock,
      host: '127.0.0.1',
      port,
      username: spec.user,
      privateKey: key,
      readyTimeout: 20_000,
      hostVerifier: (presented: Buffer) => hostKey !== undefined && presented.equals(hostKey),
    });
  });
  const connectMs = performance.now() - t0;
  const commandMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const c0 = performance.now();
    const code = await rawExec(client, 'true');
    if (code !== 0) throw new Error(`true exited ${code} on port ${port}`);
    commandMs.push(performance.now() - c0);
  }
  client.end();
  return { connectMs, commandMs };
}

type SanbookLib = typeof import('../lib/connection/ssh.ts') & typeof import('../lib/command.ts');

async function sanbookHost(lib: SanbookLib, spec: FloorHosts, name: string, port: number, n: number): Promise<HostTiming> {
  const { SshConnection, cmd } = lib;
  const t0 = performance.now();
  const conn = new SshConnection({
    host: name,
    address: '127.0.0.1',
    port,
    user: spec.user,
    privateKeyFile: spec.keyFile,
    agent: '',
    hostKeyChecking: 'strict',
    knownHostsFile: spec.knownHostsFile,
  });
  await conn.connect();
  const connectMs = performance.now() - t0;
  const commandMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const c0 = performance.now();
    const r = await conn.exec(cmd('true'));
    if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode} on ${name}: ${r.stderr}`);
    commandMs.push(performance.now() - c0);
  }
  await conn.close();
  return { connectMs, commandMs };
}

export async function runFloor(spec: FloorHosts, via: 'raw' | 'sanbook', n: number): Promise<FloorReport> {
  const key = await readFile(spec.keyFile);
  const hostKeys = knownKeys(await readFile(spec.knownHostsFile, 'utf8'));
  // Loaded before the clock starts, and only for --via sanbook: the raw floor process loads ssh2 only.
  const lib: SanbookLib | undefined =
    via === 'sanbook' ? { ...(await import('../lib/connection/ssh.ts')), ...(await import('../lib/command.ts')) } : undefined;
  const t0 = performance.now();
  const timings = await Promise.all(
    spec.hosts.map((h) =>
      lib === undefined ? rawHost(spec, h.port, key, hostKeys.get(h.port), n) : sanbookHost(lib, spec, h.name, h.port, n),
    ),
  );
  const totalMs = performance.now() - t0;
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
  return {
    via,
    hosts: spec.hosts.length,
    commands: n,
    totalMs,
    connectMaxMs: Math.max(...timings.map((t) => t.connectMs)),
    connectMedianMs: median(timings.map((t) => t.connectMs)),
    commandsMaxMs: Math.max(...timings.map((t) => sum(t.commandMs))),
    perCommandMedianMs: median(timings.flatMap((t) => t.commandMs)),
  };
}

async function cli(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { via: { type: 'string', default: 'raw' }, commands: { type: 'string', default: '20' } },
  });
  const file = positionals[0];
  if (file === undefined) throw new Error('usage: bench/floor.ts HOSTS.json [--via raw|sanbook] [--commands N]');
  const via = values.via === 'sanbook' ? 'sanbook' : 'raw';
  const spec = JSON.parse(await readFile(file, 'utf8')) as FloorHosts;
  process.stdout.write(`${JSON.stringify(await runFloor(spec, via, Number(values.commands)))}\n`);
}

const program = process.argv[1];
if (program !== undefined && realpathSync(program) === fileURLToPath(import.meta.url)) await cli();
