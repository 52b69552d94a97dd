/**
 * The lab's local Debian repository: the storage packages a playbook installs (and exactly the dependencies the
 * base image lacks), fetched on the host from the Debian mirror by apt running inside the image's own rootfs,
 * then served on the host's 127.0.0.1 to the guests over QEMU user networking (see repoAptSource).
 *
 *   await buildRepo({ rootfs, repoDir, mirror, suite: 'bookworm', packages: STORAGE_PACKAGES, log });
 *   const server = await startRepoServer(repoDir, { detached: { pidFile } });   // outlives this process
 *   repoAptSource('http://10.0.2.100/')   // 'deb [trusted=yes] http://10.0.2.100/ ./' (see there)
 *   await stopRepoServer(pidFile);                                               // from any process
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, openSync, closeSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, realpath, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** What the playbooks install; none of it is in the base image. */
export const STORAGE_PACKAGES: readonly string[] = [
  'mdadm', 'targetcli-fb', 'open-iscsi', 'multipath-tools', 'kpartx', 'xfsprogs', 'parted', 'firewalld',
  'moosefs-master', 'moosefs-chunkserver', 'moosefs-client', 'moosefs-cgi', 'moosefs-cgiserv',
  'moosefs-metalogger', 'moosefs-cli', 'fuse3', 'lsscsi', 'sg3-utils', 'tgt', 'libiscsi-bin',
  // playbooks/iscsi-boot.ts's boot server: root volumes on LVM, made by debootstrap, served by TFTP.
  'lvm2', 'debootstrap', 'tftpd-hpa',
];

/**
 * The apt source line for a guest that reaches the repository at baseUrl. With QEMU user networking the host's
 * loopback is 10.0.2.2 (`http://10.0.2.2:PORT/`), but `restrict=on` blocks that: then a guestfwd
 * (`guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:127.0.0.1:PORT`) gives the guest `http://10.0.2.100/`.
 */
export function repoAptSource(baseUrl: string): string {
  return `deb [trusted=yes] ${baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`} ./`;
}

// ---------------------------------------------------------------------------------------------------------
// Running commands (shared with image.ts)

export interface RunOptions {
  /** Names the step in errors ("debootstrap", "repository: apt-get update", ...). */
  step: string;
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
}

const tail = (text: string, lines: number): string => text.trimEnd().split('\n').slice(-lines).join('\n');

/** Run argv (no shell); resolve with its output, or reject naming the step, the command and its stderr tail. */
export function run(argv: readonly string[], options: RunOptions): Promise<{ stdout: string; stderr: string }> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error(`${options.step}: empty command`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: { ...process.env, LC_ALL: 'C', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = options.timeoutMs === undefined ? undefined
      : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${options.step}: cannot run ${argv.join(' ')}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      if (code === 0) return resolvePromise({ stdout, stderr });
      const why = signal ? `was killed by ${signal}${options.timeoutMs ? ` (timeout ${options.timeoutMs / 1000} s)` : ''}` : `exited ${code}`;
      const detail = tail(stderr, 25) || tail(stdout, 25);
      reject(new Error(`${options.step} failed: \`${argv.join(' ')}\` ${why}${detail ? `\n${detail}` : ''}`));
    });
    // A child that exits without reading its input (a failure) closes the pipe: its exit status tells why.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

// ---------------------------------------------------------------------------------------------------------
// Building the repository

export interface BuildRepoOptions {
  /** The image's rootfs, with its final set of packages installed (apt runs in it with chroot). */
  rootfs: string;
  /** Where the .debs and the index go (created if missing). */
  repoDir: string;
  mirror: string;
  suite: string;
  packages: readonly string[];
  log: (line: string) => void;
}

const CHROOT_ENV = { DEBIAN_FRONTEND: 'noninteractive', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

/**
 * Let apt in the rootfs download `packages` with what they depend on and the rootfs lacks (no recommends, as
 * the image's apt config says), move the .debs to repoDir, index them, and leave the rootfs's apt cache and
 * lists empty. The rootfs's sources.list is left pointing at the mirror: the caller empties it.
 */
export async function buildRepo(o: BuildRepoOptions): Promise<{ debs: number; bytes: number }> {
  const chroot = (step: string, ...argv: string[]) =>
    run(['chroot', o.rootfs, ...argv], { step: `repository: ${step}`, env: CHROOT_ENV, timeoutMs: 15 * 60_000 });
  const archives = join(o.rootfs, 'var/cache/apt/archives');
  await writeFile(join(o.rootfs, 'etc/apt/sources.list'), `deb ${o.mirror} ${o.suite} main\n`);
  await chroot('apt-get update', 'apt-get', 'update', '-q');
  await chroot('apt-get clean', 'apt-get', 'clean');
  await chroot('apt-get install --download-only', 'apt-get', 'install', '--download-only', '-y', '-q',
    '--no-install-recommends', ...o.packages);
  await rm(o.repoDir, { recursive: true, force: true });
  await mkdir(o.repoDir, { recursive: true });
  const debs = (await readdir(archives)).filter((n) => n.endsWith('.deb')).sort();
  let bytes = 0;
  for (const name of debs) {
    const from = join(archives, name);
    const to = join(o.repoDir, poolName(name));
    bytes += (await stat(from)).size;
    await rename(from, to).catch(async () => { await copyFile(from, to); await unlink(from); });
  }
  await chroot('apt-get clean', 'apt-get', 'clean');
  for (const name of await readdir(join(o.rootfs, 'var/lib/apt/lists'))) {
    if (name !== 'partial' && name !== 'lock') await rm(join(o.rootfs, 'var/lib/apt/lists', name), { recursive: true, force: true });
  }
  const missing = await missingPackages(o.repoDir, o.packages);
  if (missing.length > 0) {
    throw new Error(`repository: no .deb was downloaded for ${missing.join(', ')} (already in the image? then take it out of the image's package list)`);
  }
  await writeRepoIndex(o.repoDir);
  o.log(`repository: ${debs.length} packages, ${(bytes / 1048576).toFixed(1)} MiB in ${o.repoDir}`);
  return { debs: debs.length, bytes };
}

/**
 * The name a .deb has in a Debian pool: apt saves `targetcli-fb_1%3a2.1.53-1.1_all.deb` (epoch, URL-encoded),
 * which apt itself would then request unencoded (a 404): drop the epoch as the pool does.
 */
export function poolName(archiveName: string): string {
  const [pkg, version, ...rest] = archiveName.split('_');
  if (version === undefined || rest.length === 0) return archiveName;
  return [pkg, version.replace(/^\d+(%3[aA]|:)/, ''), ...rest].join('_');
}

async function missingPackages(repoDir: string, wanted: readonly string[]): Promise<string[]> {
  const have = new Set((await readdir(repoDir)).map((n) => n.split('_')[0]));
  return wanted.filter((p) => !have.has(p));
}

/** Write Packages, Packages.gz and Release for the .debs in dir (a flat repository: `deb URL ./`). */
export async function writeRepoIndex(dir: string): Promise<void> {
  const stanzas: string[] = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.deb')).sort()) {
    const path = join(dir, name);
    const { stdout } = await run(['dpkg-deb', '-f', path], { step: `repository: read the control fields of ${name}` });
    const data = await readFile(path);
    stanzas.push([
      stdout.trimEnd(),
      `Filename: ./${name}`,
      `Size: ${data.length}`,
      `MD5sum: ${createHash('md5').update(data).digest('hex')}`,
      `SHA256: ${createHash('sha256').update(data).digest('hex')}`,
    ].join('\n'));
  }
  const packages = Buffer.from(stanzas.length > 0 ? `${stanzas.join('\n\n')}\n` : '');
  const packagesGz = gzipSync(packages, { level: 9 });
  await writeFile(join(dir, 'Packages'), packages);
  await writeFile(join(dir, 'Packages.gz'), packagesGz);
  const files = [['Packages', packages], ['Packages.gz', packagesGz]] as const;
  const sums = (algo: string) => files.map(([n, b]) => ` ${createHash(algo).update(b).digest('hex')} ${b.length} ${n}`).join('\n');
  await writeFile(join(dir, 'Release'),
    `Origin: sanbook-lab\nLabel: sanbook-lab\nDate: ${new Date().toUTCString().replace(/GMT$/, 'UTC')}\nArchitectures: amd64 all\nMD5Sum:\n${sums('md5')}\nSHA256:\n${sums('sha256')}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// Serving it

export interface RepoServer {
  readonly port: number;
  /** Set when the server runs detached, in a process of its own. */
  readonly pid?: number;
  stop(): Promise<void>;
}

/** Resolve a request path under root, or null when it is not a plain path inside root. */
async function resolveInside(root: string, rawUrl: string): Promise<string | null> {
  let path: string;
  try {
    path = decodeURIComponent((rawUrl.split('?')[0] ?? '').split('#')[0] ?? '');
  } catch {
    return null;
  }
  if (!path.startsWith('/') || path.includes('\0') || path.includes('\\')) return null;
  const segments = path.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.some((s) => s === '..')) return null;
  const full = resolve(root, ...segments);
  if (full !== root && !full.startsWith(root + sep)) return null;
  try {
    const real = await realpath(full);
    return real === root || real.startsWith(root + sep) ? real : null;
  } catch {
    return full;   // does not exist: a 404 later
  }
}

async function handle(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const send = (status: number, text: string, headers: Record<string, string> = {}) => {
    const body = Buffer.from(`${text}\n`);
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length, ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed', { Allow: 'GET, HEAD' });
  const path = await resolveInside(root, req.url ?? '/');
  if (path === null) return send(403, 'forbidden');
  const st = await stat(path).catch(() => null);
  if (st === null || !st.isFile()) return send(404, 'not found');
  const modified = new Date(Math.floor(st.mtimeMs / 1000) * 1000);
  const since = req.headers['if-modified-since'];
  if (since !== undefined && !Number.isNaN(Date.parse(since)) && Date.parse(since) >= modified.getTime()) {
    res.writeHead(304, { 'Last-Modified': modified.toUTCString() });
    return void res.end();
  }
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': st.size,
    'Last-Modified': modified.toUTCString(),
  });
  if (req.method === 'HEAD') return void res.end();
  const stream = createReadStream(path);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

/** Serve dir read-only on host:port (default 127.0.0.1, port 0 = any free port) in this process. */
export async function serveRepo(dir: string, options: { port?: number; host?: string } = {}): Promise<RepoServer> {
  const root = await realpath(dir);
  const server = createServer((req, res) => {
    handle(root, req, res).catch(() => { if (!res.headersSent) res.writeHead(500); res.end(); });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (e) => fail(new Error(`repository server: cannot listen on ${options.host ?? '127.0.0.1'}:${options.port ?? 0}: ${e.message}`)));
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => ok());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('repository server: no TCP address');
  return {
    port: address.port,
    stop: () => new Promise<void>((ok) => { server.close(() => ok()); server.closeAllConnections(); }),
  };
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((ok, fail) => { s.once('error', fail); s.listen(0, '127.0.0.1', () => ok()); });
  const address = s.address();
  await new Promise<void>((ok) => s.close(() => ok()));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/** Does something answer HTTP on 127.0.0.1:port? */
export function repoAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((ok) => {
    const req = request({ host: '127.0.0.1', port, method: 'HEAD', path: '/Release', timeout: timeoutMs }, (res) => {
      res.resume();
      ok(true);
    });
    req.on('timeout', () => { req.destroy(); ok(false); });
    req.on('error', () => ok(false));
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
export const REPO_SERVER_SCRIPT = fileURLToPath(new URL('./repo-server.ts', import.meta.url));

/**
 * Serve repoDir on 127.0.0.1. Without `detached`, in this process. With `detached`, in a process of its own
 * (lab/repo-server.ts, its own session) that outlives this one: its PID goes to pidFile, its output to logFile
 * (default pidFile + '.log'); resolves once it answers. Stop it with stop() or, from another process,
 * stopRepoServer(pidFile).
 */
export async function startRepoServer(
  repoDir: string,
  options: { port?: number; detached?: { pidFile: string; logFile?: string }; readyTimeoutMs?: number } = {},
): Promise<RepoServer> {
  if (options.detached === undefined) return serveRepo(repoDir, { port: options.port ?? 0 });
  const { pidFile } = options.detached;
  const logFile = options.detached.logFile ?? `${pidFile}.log`;
  const port = options.port !== undefined && options.port !== 0 ? options.port : await freePort();
  await rm(pidFile, { force: true });
  const logFd = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), REPO_SERVER_SCRIPT, repoDir, String(port), pidFile],
    { detached: true, stdio: ['ignore', logFd, logFd], cwd: '/' });
  closeSync(logFd);
  let exited: string | null = null;
  child.on('exit', (code, signal) => { exited = signal ?? `exit ${code}`; });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`repository server: could not start ${REPO_SERVER_SCRIPT}`);
  const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
  while (!(await readFile(pidFile, 'utf8').then((t) => t.trim() === String(pid), () => false)) || !(await repoAnswers(port))) {
    if (exited !== null || Date.now() > deadline) {
      if (exited === null) process.kill(pid, 'SIGKILL');
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(`repository server on 127.0.0.1:${port} did not come up (${exited ?? 'timeout'})${log ? `:\n${tail(log, 10)}` : ''}`);
    }
    await sleep(100);
  }
  return { port, pid, stop: () => stopRepoServer(pidFile) };
}

/** Stop the detached server whose PID is in pidFile (only if that process is a repo server); no-op if gone. */
export async function stopRepoServer(pidFile: string): Promise<void> {
  const text = await readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 1) return void (await rm(pidFile, { force: true }));
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (cmdline.includes('repo-server.ts')) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  await rm(pidFile, { force: true });
}

/** startRepoServer({ detached }) in the shape lab.ts uses. */
export async function startRepoDetached(repoDir: string, port: number, pidFile: string, logFile: string): Promise<{ port: number; pid: number }> {
  const server = await startRepoServer(repoDir, { port, detached: { pidFile, logFile } });
  if (server.pid === undefined) throw new Error('repository server: no PID');
  return { port: server.port, pid: server.pid };
}

/** The same as stopRepoServer(pidFile). */
export const stopRepo = stopRepoServer;
