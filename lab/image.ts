/**
 * The lab's base image: Debian 12 made with debootstrap from this machine's Debian mirror, GRUB in its own MBR
 * (each VM boots its own kernel and initramfs), no storage packages (they come from the local repository built
 * next to it, see repo.ts), and a boot-time service that takes the VM's identity from QEMU's fw_cfg
 * (opt/sanbook/{hostname,network,authorized_keys,ssh_host_ed25519_key,apt_source}) so the image stays generic.
 *
 * Built once and cached under cacheDir/image-HASH, HASH being the recipe's (package lists, guest files, version):
 * the build runs in a temp dir and is renamed into place only when complete and proven to boot.
 *
 *   npx tsx lab/image.ts build [--cache DIR]      (as root)
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { access, chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, statfs, truncate, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { accelArgs, chooseAccel, type Accel } from './accel.ts';
import { GRUB_SETUP_OK, GRUB_SETUP_PATH, GUEST_FILES, ROOT_DISK_SERIAL, ROOT_LABEL, type GuestFile } from './image-files.ts';
import { STORAGE_PACKAGES, buildRepo, run } from './repo.ts';

export { ROOT_DISK_SERIAL, ROOT_LABEL, type GuestFile };

/** Bump when the build steps change in a way the recipe's data does not show. */
export const IMAGE_VERSION = 3;
export const SUITE = 'bookworm';
export const DISK_GIB = 4;

/** Installed in the image (debootstrap --include); minbase brings the rest (util-linux, dpkg, apt...). */
export const IMAGE_PACKAGES: readonly string[] = [
  'linux-image-amd64', 'grub-pc', 'systemd-sysv', 'udev', 'dbus', 'kmod', 'iproute2', 'netbase', 'iputils-ping',
  'openssh-server', 'openssh-sftp-server', 'python3', 'sudo', 'less', 'procps', 'e2fsprogs', 'zstd',
];

/** The root filesystem's label (fstab and the kernel's root=) and the root disk's SCSI serial (as lab VMs have it). */
export interface Recipe {
  readonly version: number;
  readonly suite: string;
  readonly diskGiB: number;
  readonly imagePackages: readonly string[];
  readonly storagePackages: readonly string[];
  readonly files: readonly GuestFile[];
  /** Units enabled / disabled in the image (systemctl in the chroot). */
  readonly enable: readonly string[];
  readonly disable: readonly string[];
}

export interface BaseImage {
  /** qcow2, DISK_GIB virtual; use it as a backing file, never write to it. */
  readonly path: string;
  readonly hash: string;
  /** The local repository of the storage packages (Packages, Release, *.deb). */
  readonly repoDir: string;
  /** A copy of the image's kernel, for lab/accel.ts to try KVM with before the VMs boot. */
  readonly kernel: string;
}

export interface EnsureOptions {
  cacheDir: string;
  log?: (line: string) => void;
  /** Debian mirror (default: the one in this machine's apt sources). */
  mirror?: string;
  /** For the build-time boots (default: KVM if it really works, else TCG). */
  accel?: Accel;
}

export function defaultRecipe(): Recipe {
  return {
    version: IMAGE_VERSION,
    suite: SUITE,
    diskGiB: DISK_GIB,
    imagePackages: IMAGE_PACKAGES,
    storagePackages: STORAGE_PACKAGES,
    files: GUEST_FILES,
    enable: ['systemd-networkd.service', 'sanbook-identity.service'],
    // Nothing that starts apt behind a playbook's back, nor periodic work that steals an emulated CPU.
    disable: ['apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer', 'e2scrub_all.timer', 'e2scrub_reap.service', 'fstrim.timer'],
  };
}

/** 16 hex digits of sha256 over the recipe; package lists and files are order-insensitive. */
export function recipeHash(recipe: Recipe): string {
  const canonical = {
    ...recipe,
    imagePackages: [...recipe.imagePackages].sort(),
    storagePackages: [...recipe.storagePackages].sort(),
    files: [...recipe.files].sort((a, b) => a.path.localeCompare(b.path)).map((f) => [f.path, f.mode, f.content]),
    enable: [...recipe.enable].sort(),
    disable: [...recipe.disable].sort(),
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 16);
}

/** The first Debian mirror of `suite` in apt sources (deb822 `.sources` or one-line `.list` files). */
export function parseAptMirror(files: readonly { name: string; content: string }[], suite: string): string | undefined {
  for (const { name, content } of files) {
    if (name.endsWith('.sources')) {
      for (const stanza of content.split(/\n\s*\n/)) {
        const field = (key: string): string[] => {
          const m = new RegExp(`^${key}:[ \\t]*(.*)$`, 'mi').exec(stanza);
          return m?.[1]?.trim().split(/\s+/) ?? [];
        };
        if (field('Enabled')[0]?.toLowerCase() === 'no' || !field('Types').includes('deb') || !field('Suites').includes(suite)) continue;
        const uri = field('URIs').find((u) => /^(https?|file):/.test(u));
        if (uri) return uri;
      }
    } else if (name.endsWith('.list') || name === 'sources.list') {
      for (const line of content.split('\n')) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m?.[2] === suite && /^(https?|file):/.test(m[1] ?? '')) return m[1];
      }
    }
  }
  return undefined;
}

export async function hostMirror(suite = SUITE): Promise<string> {
  const files: { name: string; content: string }[] = [];
  const read = async (path: string): Promise<void> => {
    const content = await readFile(path, 'utf8').catch(() => undefined);
    if (content !== undefined) files.push({ name: path.split('/').pop() ?? path, content });
  };
  await read('/etc/apt/sources.list');
  for (const n of (await readdir('/etc/apt/sources.list.d').catch(() => [] as string[])).sort()) await read(join('/etc/apt/sources.list.d', n));
  const mirror = parseAptMirror(files, suite);
  if (!mirror) throw new Error(`base image: no Debian mirror for "${suite}" in /etc/apt/sources.list or /etc/apt/sources.list.d/*.{list,sources}`);
  return mirror;
}

const HOST_TOOLS: readonly (readonly [string, string])[] = [
  ['debootstrap', 'debootstrap'], ['chroot', 'coreutils'], ['dd', 'coreutils'], ['sfdisk', 'fdisk'],
  ['mkfs.ext4', 'e2fsprogs'], ['dpkg-deb', 'dpkg'], ['qemu-img', 'qemu-utils'], ['qemu-system-x86_64', 'qemu-system-x86'],
];

async function checkHost(cacheDir: string): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('base image: building it needs root (debootstrap and chroot); run as root or with sudo');
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/sbin'].filter(Boolean);
  const missing = new Set<string>();
  for (const [tool, pkg] of HOST_TOOLS) {
    const found = await Promise.all(dirs.map((d) => access(join(d, tool), constants.X_OK).then(() => true, () => false)));
    if (!found.includes(true)) missing.add(pkg);
  }
  if (missing.size > 0) throw new Error(`base image: missing host packages: ${[...missing].join(' ')} (apt-get install -y ${[...missing].join(' ')})`);
  const fs = await statfs(cacheDir);
  const free = fs.bavail * fs.bsize;
  if (free < 6 * 2 ** 30) throw new Error(`base image: ${cacheDir} has ${(free / 2 ** 30).toFixed(1)} GiB free; the build needs 6 GiB`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

/** Unmount anything left mounted under dir (debootstrap mounts proc/sys in the target), then remove it. */
async function removeTree(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '')
    .map((p) => p.replace(/\\040/g, ' ')).filter((p) => p === dir || p.startsWith(`${dir}/`)).sort().reverse();
  for (const m of mounts) await run(['umount', '-l', m], { step: `clean-up: umount ${m}` });
  await rm(dir, { recursive: true, force: true });
}

/** The cached image for the default recipe, built first if needed (one build at a time per cacheDir). */
export async function ensureBaseImage(options: EnsureOptions): Promise<BaseImage> {
  const recipe = defaultRecipe();
  const hash = recipeHash(recipe);
  const finalDir = join(options.cacheDir, `image-${hash}`);
  const result: BaseImage = { path: join(finalDir, 'disk.qcow2'), hash, repoDir: join(finalDir, 'repo'), kernel: join(finalDir, 'vmlinuz') };
  if (await exists(join(finalDir, 'manifest.json'))) return result;
  await mkdir(options.cacheDir, { recursive: true });
  const lock = join(options.cacheDir, `image-${hash}.lock`);
  const log = options.log ?? (() => undefined);
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      await writeFile(lock, `${process.pid}\n`);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`base image: cannot create the lock ${lock}: ${(e as Error).message}`);
      const pid = Number.parseInt(await readFile(lock, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(pid) && alive(pid)) {
        log(`base image: waiting for the build by process ${pid} (${lock})`);
        while (alive(pid) && (await exists(lock))) await sleep(2000);
      } else {
        await sleep(200);    // a lock just created and not written yet, or a stale one
        if ((await readFile(lock, 'utf8').catch(() => '')) === (Number.isInteger(pid) ? `${pid}\n` : '')) await rm(lock, { force: true });
      }
      if (await exists(join(finalDir, 'manifest.json'))) return result;
    }
  }
  try {
    if (await exists(join(finalDir, 'manifest.json'))) return result;   // built while we waited for the lock
    if (await exists(finalDir)) await removeTree(finalDir);   // no manifest: not ours to trust
    for (const n of await readdir(options.cacheDir)) {   // what builds killed on the way left behind
      const pid = /^\.build-[0-9a-f]+-(\d+)$/.exec(n)?.[1];
      if (pid !== undefined && !alive(Number(pid))) await removeTree(join(options.cacheDir, n));
      if (/^image-[0-9a-f]+\.lock$/.test(n) && n !== `image-${hash}.lock`) {
        const owner = Number.parseInt(await readFile(join(options.cacheDir, n), 'utf8').catch(() => ''), 10);
        if (Number.isInteger(owner) && !alive(owner)) await rm(join(options.cacheDir, n), { force: true });
      }
    }
    await checkHost(options.cacheDir);
    const work = join(options.cacheDir, `.build-${hash}-${process.pid}`);
    await removeTree(work);
    await mkdir(work);
    try {
      await buildImage(recipe, hash, work, options.mirror ?? (await hostMirror(recipe.suite)), options.accel, log);
      await rename(work, finalDir);
    } catch (e) {
      const kept: string[] = [];   // the consoles of the build boots outlive the failed build
      for (const n of (await readdir(work).catch(() => [] as string[])).filter((f) => f.endsWith('.console.log'))) {
        const to = join(options.cacheDir, `failed-${hash}-${n}`);
        if (await rename(join(work, n), to).then(() => true, () => false)) kept.push(to);
      }
      await removeTree(work).catch(() => undefined);
      throw kept.length > 0 && e instanceof Error ? new Error(`${e.message}
(kept: ${kept.join(' ')})`) : e;
    }
  } finally {
    await rm(lock, { force: true });
  }
  return result;
}

async function buildImage(recipe: Recipe, hash: string, work: string, mirror: string, forcedAccel: Accel | undefined, log: (l: string) => void): Promise<void> {
  const started = Date.now();
  const times: Record<string, number> = {};
  const step = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    log(`base image: ${name}...`);
    const value = await body().catch((e: unknown) => {
      throw new Error(`base image ${hash}: step "${name}" failed after ${Math.round((Date.now() - t0) / 1000)} s: ${e instanceof Error ? e.message : String(e)}`);
    });
    times[name] = Math.round((Date.now() - t0) / 100) / 10;
    log(`base image: ${name} done in ${times[name]} s`);
    return value;
  };
  const rootfs = join(work, 'rootfs');
  const chroot = (what: string, ...argv: string[]) => run(['chroot', rootfs, ...argv],
    { step: `configure: ${what}`, env: { DEBIAN_FRONTEND: 'noninteractive', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  log(`base image ${hash}: Debian ${recipe.suite} from ${mirror}, in ${work}`);

  await step('debootstrap', () => run(['debootstrap', '--variant=minbase', `--include=${recipe.imagePackages.join(',')}`,
    recipe.suite, rootfs, mirror], { step: 'debootstrap', timeoutMs: 20 * 60_000 })
    .catch(async (e: Error) => {
      const dlog = await readFile(join(rootfs, 'debootstrap/debootstrap.log'), 'utf8').catch(() => '');
      throw new Error(`${e.message}${dlog ? `\n--- debootstrap.log (tail) ---\n${dlog.trimEnd().split('\n').slice(-15).join('\n')}` : ''}`);
    }));

  await step('configure', async () => {
    for (const f of recipe.files) {
      const path = join(rootfs, f.path);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, f.content);
      await chmod(path, f.mode);
    }
    await rm(join(rootfs, 'etc/network/interfaces'), { force: true });
    await chroot('systemctl enable', 'systemctl', 'enable', ...recipe.enable);
    await chroot('systemctl disable', 'systemctl', 'disable', ...recipe.disable);
    await run(['chroot', rootfs, 'debconf-set-selections'], { step: 'configure: debconf',
      input: `grub-pc grub-pc/install_devices multiselect /dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_${ROOT_DISK_SERIAL}\n` });
    for (const n of await readdir(join(rootfs, 'etc/ssh'))) {
      if (/^ssh_host_.*_key(\.pub)?$/.test(n)) await rm(join(rootfs, 'etc/ssh', n));
    }
  });

  const repo = await step('repository', () => buildRepo({ rootfs, repoDir: join(work, 'repo'), mirror, suite: recipe.suite, packages: recipe.storagePackages, log }));

  const kernel = await step('clean', async () => {
    await writeFile(join(rootfs, 'etc/apt/sources.list'), '');
    await writeFile(join(rootfs, 'etc/resolv.conf'), '');
    await writeFile(join(rootfs, 'etc/machine-id'), '');   // each VM makes its own at boot (not a "first boot")
    await rm(join(rootfs, 'var/lib/dbus/machine-id'), { force: true });
    await rm(join(rootfs, 'var/log/bootstrap.log'), { force: true });
    const boot = await readdir(join(rootfs, 'boot'));
    const version = boot.find((n) => n.startsWith('vmlinuz-'))?.slice('vmlinuz-'.length);
    if (version === undefined || !boot.includes(`initrd.img-${version}`)) throw new Error(`clean: no kernel and initrd in ${rootfs}/boot (${boot.join(' ')})`);
    return version;
  });
  // KVM only if it boots this very kernel (lab/accel.ts); the lab tries it again with this copy before its VMs boot.
  await copyFile(join(rootfs, 'boot', `vmlinuz-${kernel}`), join(work, 'vmlinuz'));
  const accel = forcedAccel ?? (await chooseAccel(join(work, 'vmlinuz')));
  log(`base image: ${accel.toUpperCase()} for the build boots`);

  const raw = join(work, 'disk.raw');
  await step('filesystem and disk', async () => {
    const fsImage = join(work, 'root.ext4');
    const size = recipe.diskGiB * 2 ** 30;
    await writeFile(fsImage, '');
    await truncate(fsImage, size - 2 ** 20);
    await run(['mkfs.ext4', '-q', '-F', '-L', ROOT_LABEL, '-E', 'lazy_itable_init=0,lazy_journal_init=0', '-d', rootfs, fsImage],
      { step: 'mkfs.ext4 -d', timeoutMs: 10 * 60_000 });
    await writeFile(raw, '');
    await truncate(raw, size);
    await run(['sfdisk', '-q', '--no-reread', '--no-tell-kernel', raw], { step: 'sfdisk', input: 'label: dos\nstart=2048, type=83, bootable\n' });
    await run(['dd', `if=${fsImage}`, `of=${raw}`, 'bs=1M', 'seek=1', 'conv=notrunc,sparse', 'status=none'], { step: 'dd into the partition' });
    await rm(fsImage);
  });

  await step('boot loader (one boot with the image\'s own kernel)', async () => {
    const consoleLog = join(work, 'grub-setup.console.log');
    await runQemu({
      accel, consoleLog, timeoutMs: 10 * 60_000, step: 'boot loader',
      args: ['-drive', `file=${raw},if=none,id=root,format=raw,cache=unsafe,discard=unmap`,
        '-kernel', join(rootfs, 'boot', `vmlinuz-${kernel}`), '-initrd', join(rootfs, 'boot', `initrd.img-${kernel}`),
        '-append', `root=LABEL=${ROOT_LABEL} rw console=ttyS0,115200 loglevel=4 panic=1 init=${GRUB_SETUP_PATH}`],
    });
    const text = await readFile(consoleLog, 'utf8');
    if (!text.includes(GRUB_SETUP_OK)) throw new Error(`boot loader: the one-shot did not report success; console (${consoleLog}):\n${consoleTail(text)}`);
  });
  await removeTree(rootfs);

  const qcow2 = join(work, 'disk.qcow2');
  await step('qcow2', async () => {
    await run(['qemu-img', 'convert', '-O', 'qcow2', raw, qcow2], { step: 'qemu-img convert', timeoutMs: 10 * 60_000 });
    await rm(raw);
  });

  await step('verify: boot from the disk alone (GRUB, own kernel) to the login prompt', async () => {
    const consoleLog = join(work, 'verify-boot.console.log');
    await runQemu({
      accel, consoleLog, timeoutMs: 6 * 60_000, step: 'verify boot',
      args: ['-snapshot', '-drive', `file=${qcow2},if=none,id=root,format=qcow2`, '-fw_cfg', 'name=opt/sanbook/hostname,string=sanbook-verify'],
      until: /sanbook-verify login:/,
    });
  });

  const imageBytes = (await stat(qcow2)).size;
  const manifest = {
    hash, version: recipe.version, suite: recipe.suite, mirror, kernel, builtAt: new Date().toISOString(),
    buildSeconds: Math.round((Date.now() - started) / 1000), steps: times, imageBytes, repo,
  };
  await writeFile(join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`base image ${hash}: built in ${manifest.buildSeconds} s; disk.qcow2 ${(imageBytes / 2 ** 20).toFixed(0)} MiB, repository ${(repo.bytes / 2 ** 20).toFixed(1)} MiB (${repo.debs} packages)`);
}

const consoleTail = (text: string): string => text.replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trimEnd().split('\n').slice(-30).join('\n');

/**
 * Run a QEMU with the root disk as the lab's VMs have it (virtio-scsi, /dev/sda), no network, the serial console
 * to consoleLog. Resolves when QEMU exits by itself or, with `until`, when the console shows it (QEMU is then
 * killed); rejects on a timeout, a kernel panic or a GRUB rescue prompt, with the console's tail.
 */
async function runQemu(o: { accel: Accel; consoleLog: string; args: string[]; timeoutMs: number; step: string; until?: RegExp }): Promise<void> {
  const argv = [...accelArgs(o.accel), '-m', '1024', '-smp', '1', '-display', 'none', '-nodefaults',
'-no-reboot', '-serial', `file:${o.consoleLog}`, '-device', 'virtio-scsi-pci,id=scsi0',
    ...o.args, '-device', `scsi-hd,drive=root,bus=scsi0.0,serial=${ROOT_DISK_SERIAL}${o.args.includes('-kernel') ? '' : ',bootindex=0'}`];
  // timeout(1) bounds a QEMU this process would leave behind if it were killed itself.
  const child = spawn('timeout', ['--kill-after=10', `${Math.ceil(o.timeoutMs / 1000) + 30}`, 'qemu-system-x86_64', ...argv],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const killOnExit = (): void => void child.kill('SIGTERM');
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  let exit: string | null = null;
  const exited = new Promise<void>((ok) => child.on('close', (code, signal) => {
    exit = signal ?? String(code);
    process.off('exit', killOnExit);
    ok();
  }));
  child.on('error', (e) => { stderr += e.message; });
  const deadline = Date.now() + o.timeoutMs;
  const fail = async (why: string): Promise<never> => {
    if (exit === null) { child.kill('SIGTERM'); await exited; }   // timeout(1) passes it on, and SIGKILLs 10 s later
    const text = await readFile(o.consoleLog, 'utf8').catch(() => '');
    throw new Error(`${o.step}: ${why} (qemu-system-x86_64 ${argv.join(' ')})${stderr ? `\nqemu: ${stderr.trim()}` : ''}\n--- console ${o.consoleLog} (tail) ---\n${consoleTail(text)}`);
  };
  for (;;) {
    const text = await readFile(o.consoleLog, 'utf8').catch(() => '');
    if (o.until?.test(text)) { child.kill('SIGTERM'); await exited; return; }
    if (/Kernel panic|grub rescue>|Welcome to emergency mode/.test(text)) return fail('the guest failed to boot');
    if (exit !== null) {
      if (o.until) return fail(`QEMU exited (${exit}) before the console showed ${o.until}`);
      if (exit !== '0') return fail(`QEMU exited with ${exit}`);
      return;
    }
    if (Date.now() > deadline) return fail(`timeout after ${o.timeoutMs / 1000} s`);
    await sleep(500);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [command, ...rest] = process.argv.slice(2);
  const cacheIdx = rest.indexOf('--cache');
  const cacheDir = cacheIdx >= 0 && rest[cacheIdx + 1] ? rest[cacheIdx + 1]!
    : join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'sanbook', 'lab');
  if (command !== 'build') {
    process.stderr.write('usage: npx tsx lab/image.ts build [--cache DIR]   (as root)\n');
    process.exit(1);
  }
  process.once('SIGINT', () => process.exit(130));    // so that the build's QEMU is stopped on the way out
  process.once('SIGTERM', () => process.exit(143));
  const t0 = Date.now();
  const log = (line: string): void => void process.stdout.write(`${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s ${line}\n`);
  try {
    const image = await ensureBaseImage({ cacheDir, log });
    log(`image ${image.path}\nrepository ${image.repoDir}\nhash ${image.hash}`);
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
