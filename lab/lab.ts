/**
 * The VM lab as a whole: `up` (build or reuse the image, serve the package repository, create the network,
 * boot the VMs in parallel, write inventory/lab.yaml), `down` (remove every VM, tap, bridge and namespace it
 * made), `status`, and rebooting a VM. Running `up` on a running lab is a no-op.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { sh } from '../lib/command.ts';
import { chooseAccel, type Accel } from './accel.ts';
import { ensureBaseImage } from './image.ts';
import { labInventory } from './inventory.ts';
import { destroyNetwork, ensureNetwork } from './net.ts';
import { ensureDebootstrapTarball } from './netboot.ts';
import { repoAnswers, startRepoDetached, stopRepo } from './repo.ts';
import { run } from './run.ts';
import { topology, type VmSpec } from './topology.ts';
import { loadVm, prepareVm, qemuPid, sshTo, startVm, stopVm, waitForSsh, type LabPaths, type VmRuntime } from './vm.ts';

export interface LabState {
  topology: string;
  accel: Accel;
  repo: { port: number; pid: number };
  vms: { name: string; sshPort: number }[];
}

export interface LabOptions {
  /** The project root (where .lab/ and inventory/ are). */
  projectRoot: string;
  log?: (line: string) => void;
}

export interface Lab {
  readonly paths: LabPaths;
  readonly state: LabState;
  readonly vms: readonly VmRuntime[];
  readonly inventoryFile: string;
}

export const HOST_TOOLS: Readonly<Record<string, string>> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  debootstrap: 'debootstrap',
  socat: 'socat',
  'mkfs.ext4': 'e2fsprogs',
  sfdisk: 'fdisk',
  ip: 'iproute2',
  'ssh-keygen': 'openssh-client',
};

/** Files the lab needs, by the Debian package that has them: the iPXE ROM diskless VMs boot with. */
export const HOST_FILES: Readonly<Record<string, string>> = {
  '/usr/lib/ipxe/qemu/pxe-virtio.rom': 'ipxe-qemu',
};

/** The Debian packages of the host tools the lab needs that are missing. */
export async function missingHostPackages(): Promise<string[]> {
  const missing = new Set<string>();
  for (const [file, pkg] of Object.entries(HOST_FILES)) if (!existsSync(file)) missing.add(pkg);
  for (const [tool, pkg] of Object.entries(HOST_TOOLS)) {
    try {
      await run('sh', ['-c', 'command -v "$1"', 'sh', tool]);
    } catch {
      missing.add(pkg);
    }
  }
  return [...missing];
}

export function labPaths(projectRoot: string): LabPaths {
  const root = join(resolve(projectRoot), '.lab');
  return { root, clientKey: join(root, 'id_ed25519'), knownHosts: join(root, 'known_hosts') };
}

export function cacheDir(): string {
  return join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'sanbook', 'lab');
}

async function readState(paths: LabPaths): Promise<LabState | undefined> {
  const text = await readFile(join(paths.root, 'state.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as LabState);
}

function freePort(start: number, taken: ReadonlySet<number>): Promise<number> {
  const tryPort = (port: number): Promise<number> =>
    new Promise((resolvePort, reject) => {
      if (port > 65_000) return reject(new Error('no free TCP port on 127.0.0.1'));
      if (taken.has(port)) return resolvePort(tryPort(port + 1));
      const server = createServer();
      server.once('error', () => resolvePort(tryPort(port + 1)));
      server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(port)));
    });
  return tryPort(start);
}

function specOf(state: LabState, name: string): VmSpec {
  const spec = topology(state.topology).find((s) => s.name === name);
  if (!spec) throw new Error(`the lab state names a VM "${name}" that topology "${state.topology}" does not have`);
  return spec;
}

export async function labUp(options: LabOptions & { topology: string; timeoutMs?: number }): Promise<Lab> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const missing = await missingHostPackages();
  if (missing.length > 0) {
    throw new Error(`the lab needs these Debian packages on this machine: ${missing.join(' ')} (apt-get install -y ${missing.join(' ')}, or run with --install-deps)`);
  }
  const paths = labPaths(options.projectRoot);
  await mkdir(paths.root, { recursive: true });
  const previous = await readState(paths);
  if (previous && previous.topology !== options.topology) {
    const running = await Promise.all(previous.vms.map(async (v) => (await readFile(join(paths.root, 'vms', v.name, 'qemu.pid'), 'utf8').catch(() => '')) !== ''));
    if (running.some(Boolean)) throw new Error(`the lab runs the "${previous.topology}" topology: run \`npm run lab -- down\` first`);
  }
  if (!existsSync(paths.clientKey)) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'sanbook-lab', '-f', paths.clientKey]);
  const t0 = Date.now();
  const image = await ensureBaseImage({ cacheDir: cacheDir(), log });
  log(`base image ${image.path} (${Math.round((Date.now() - t0) / 1000)} s)`);

  // The package repository, served on loopback (guests reach it through QEMU's forward).
  let repo = previous?.repo;
  if (!repo || !(await repoAnswers(repo.port))) {
    const port = await freePort(22_180, new Set());
    repo = await startRepoDetached(image.repoDir, port, join(paths.root, 'repo.pid'), join(paths.root, 'repo.log'));
    log(`package repository on 127.0.0.1:${repo.port}`);
  }

  const accel = previous?.accel ?? (await chooseAccel(existsSync(image.kernel) ? image.kernel : undefined));
  const specs = topology(options.topology);
  const taken = new Set<number>([repo.port]);
  const vms: LabState['vms'] = [];
  for (const spec of specs) {
    const port = previous?.vms.find((v) => v.name === spec.name)?.sshPort ?? (await freePort(22_201, taken));
    taken.add(port);
    vms.push({ name: spec.name, sshPort: port });
  }
  const state: LabState = { topology: options.topology, accel, repo: { port: repo.port, pid: repo.pid }, vms };
  await writeFile(join(paths.root, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);

  await ensureNetwork();
  const rts = await Promise.all(state.vms.map((v) => prepareVm(paths, specOf(state, v.name), image.path, v.sshPort)));
  await writeFile(paths.knownHosts, rts.map((r) => `${r.hostKeyLine}\n`).join(''), { mode: 0o600 });
  const toBoot: VmRuntime[] = [];
  // Diskless VMs wait for `lab start NAME`: what they boot from is built by a playbook after the lab is up.
  const booted = rts.filter((rt) => !rt.spec.diskless);
  for (const rt of booted) {
    if ((await qemuPid(rt)) !== undefined) continue;
    await startVm(rt, accel, paths, state.repo.port);
    toBoot.push(rt);
  }
  if (toBoot.length > 0) log(`booting ${toBoot.map((r) => r.spec.name).join(', ')} (${accel})`);
  const timeoutMs = options.timeoutMs ?? (accel === 'kvm' ? 120_000 : 420_000);
  await Promise.all(
    booted.map(async (rt) => {
      const t = Date.now();
      await waitForSsh(rt, paths, timeoutMs);
      if (toBoot.includes(rt)) log(`${rt.spec.name} up in ${Math.round((Date.now() - t) / 1000)} s (ssh -p ${rt.sshPort} root@127.0.0.1)`);
    }),
  );
  const inventoryFile = join(resolve(options.projectRoot), 'inventory', 'lab.yaml');
  await mkdir(dirname(inventoryFile), { recursive: true });
  const tarball = rts.some((rt) => rt.spec.diskless) ? await ensureDebootstrapTarball(image.repoDir, log) : undefined;
  await writeFile(inventoryFile, labInventory(rts, paths, tarball));
  log(`lab up in ${Math.round((Date.now() - started) / 1000)} s; inventory ${inventoryFile}`);
  return { paths, state, vms: rts, inventoryFile };
}

/** The running lab (throws if there is none). */
export async function openLab(projectRoot: string): Promise<Lab> {
  const paths = labPaths(projectRoot);
  const state = await readState(paths);
  if (!state) throw new Error('no lab here: run `npm run lab -- up` first');
  const rts = await Promise.all(state.vms.map((v) => loadVm(paths, specOf(state, v.name), v.sshPort)));
  return { paths, state, vms: rts, inventoryFile: join(resolve(projectRoot), 'inventory', 'lab.yaml') };
}

export async function labDown(options: LabOptions): Promise<void> {
  const log = options.log ?? (() => undefined);
  const paths = labPaths(options.projectRoot);
  const state = await readState(paths);
  const specs = state ? topology(state.topology) : [...topology('full')];
  if (state) {
    const lab = await openLab(options.projectRoot);
    await Promise.all(lab.vms.map((rt) => stopVm(rt)));
    await stopRepo(join(paths.root, 'repo.pid'));
  }
  await destroyNetwork(specs);
  await rm(paths.root, { recursive: true, force: true });
  await rm(join(resolve(options.projectRoot), 'inventory', 'lab.yaml'), { force: true });
  log('lab down: VMs stopped, disks, taps, bridges and the network namespace removed');
}

export interface VmStatus {
  name: string;
  running: boolean;
  sshPort: number;
  console: string;
}

export async function labStatus(projectRoot: string): Promise<{ state: LabState; vms: VmStatus[] } | undefined> {
  const paths = labPaths(projectRoot);
  const state = await readState(paths);
  if (!state) return undefined;
  const lab = await openLab(projectRoot);
  const vms = await Promise.all(
    lab.vms.map(async (rt) => {
      const text = await readFile(rt.consoleLog, 'utf8').catch(() => '');
      const last = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split('\n').filter((l) => l.trim()).at(-1) ?? '';
      return { name: rt.spec.name, running: (await qemuPid(rt)) !== undefined, sshPort: rt.sshPort, console: last.trim() };
    }),
  );
  return { state, vms };
}

/**
 * Start a stopped VM of the running lab (a diskless one after the playbook that serves its boot; any VM that
 * `stop` ended) and, unless `wait` is false, wait until it answers SSH as itself. Returns the milliseconds taken.
 */
export async function startLabVm(lab: Lab, name: string, options: { wait?: boolean; timeoutMs?: number } = {}): Promise<number> {
  const rt = vmOf(lab, name);
  const t = Date.now();
  if ((await qemuPid(rt)) === undefined) await startVm(rt, lab.state.accel, lab.paths, lab.state.repo.port);
  if (options.wait !== false) await waitForSsh(rt, lab.paths, options.timeoutMs ?? (lab.state.accel === 'kvm' ? 180_000 : 900_000));
  return Date.now() - t;
}

/** Power a VM of the running lab off (QEMU quits: a pulled plug, not a shutdown). */
export async function stopLabVm(lab: Lab, name: string): Promise<void> {
  await stopVm(vmOf(lab, name));
}

function vmOf(lab: Lab, name: string): VmRuntime {
  const rt = lab.vms.find((v) => v.spec.name === name);
  if (!rt) throw new Error(`no VM named "${name}" in the lab (${lab.vms.map((v) => v.spec.name).join(', ')})`);
  return rt;
}

/**
 * Reboot a VM from inside (systemctl reboot) and wait until it is back with a new boot id and its boot has finished
 * (`systemctl is-system-running --wait`: every unit of the boot transaction has started or failed). SSH answers
 * before the iSCSI logins, multipath maps and remote mounts of the boot are done; a test that looked then would
 * see a half-booted host.
 */
export async function rebootVm(lab: Lab, name: string, timeoutMs = 420_000): Promise<number> {
  const rt = vmOf(lab, name);
  const t = Date.now();
  const conn = await sshTo(rt, lab.paths);
  const before = (await conn.exec(sh`cat /proc/sys/kernel/random/boot_id`)).stdout.trim();
  await conn.exec(sh`systemctl reboot`).catch(() => undefined);
  await conn.close();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await new Promise((r) => setTimeout(r, 3_000));
    await waitForSsh(rt, lab.paths, Math.max(1_000, deadline - Date.now()));
    // The sshd that answered may be the old system's, in its last seconds: a connection that then fails is
    // the reboot under way, not an error (seen on a loaded machine: chunk1 did not answer the next connect).
    let c: Awaited<ReturnType<typeof sshTo>> | undefined;
    let after: string;
    try {
      c = await sshTo(rt, lab.paths);
      after = (await c.exec(sh`cat /proc/sys/kernel/random/boot_id`)).stdout.trim();
    } catch (e) {
      await c?.close().catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`${name} did not come back within ${Math.round(timeoutMs / 1000)} s: ${(e as Error).message}`);
      continue;
    }
    if (after !== before) {
      const left = Math.max(10, Math.round((deadline - Date.now()) / 1000));
      await c.exec(sh`systemctl is-system-running --wait`, { timeoutMs: left * 1000 }).catch(() => undefined);
      await c.close();
      return Date.now() - t;
    }
    await c.close();
    if (Date.now() > deadline) throw new Error(`${name} did not reboot within ${Math.round(timeoutMs / 1000)} s`);
  }
}
