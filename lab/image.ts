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
import { access, chmod, mkdir, readdir, readFile, rename, rm, stat, statfs, truncate, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { accelArgs, chooseAccel, type Accel } from './accel.ts';
import { STORAGE_PACKAGES, buildRepo, run } from './repo.ts';

/** Bump when the build steps change in a way the recipe's data does not show. */
export const IMAGE_VERSION = 2;
export const SUITE = 'bookworm';
export const DISK_GIB = 4;

/** Installed in the image (debootstrap --include); minbase brings the rest (util-linux, dpkg, apt...). */
export const IMAGE_PACKAGES: readonly string[] = [
  'linux-image-amd64', 'grub-pc', 'systemd-sysv', 'udev', 'dbus', 'kmod', 'iproute2', 'netbase', 'iputils-ping',
  'openssh-server', 'openssh-sftp-server', 'python3', 'sudo', 'less', 'procps', 'e2fsprogs', 'zstd',
];

/** The root filesystem's label (fstab and the kernel's root=) and the root disk's SCSI serial (as lab VMs have it). */
export const ROOT_LABEL = 'sanbook-root';
export const ROOT_DISK_SERIAL = 'sanbook-root';
const IDENTITY_PATH = '/usr/local/sbin/sanbook-identity';
const GRUB_SETUP_PATH = '/usr/local/sbin/sanbook-grub-setup';
const GRUB_SETUP_OK = 'SANBOOK-GRUB-SETUP: OK';

/** Applies the VM's identity from fw_cfg at every boot, before the network and sshd; idempotent. */
const IDENTITY_SCRIPT = String.raw`#!/bin/sh
# sanbook-identity: this VM's identity from QEMU fw_cfg (opt/sanbook/NAME), applied at every boot before
# systemd-networkd and sshd start (sanbook-identity.service). Idempotent: a file is written only when its
# content differs. Without fw_cfg it only makes sure sshd has a host key. Entries are LF-separated lines.
# Few processes on purpose: each one costs tens of milliseconds in an emulated guest.
set -u
umask 022
dir=/sys/firmware/qemu_fw_cfg/by_name/opt/sanbook
key=/etc/ssh/ssh_host_ed25519_key
done=""
[ -d "$dir" ] || modprobe qemu_fw_cfg 2>/dev/null || true
# fw NAME: the entry opt/sanbook/NAME in $value; false when there is none
fw() { [ -r "$dir/$1/raw" ] && value=$(cat "$dir/$1/raw"); }
# slurp FILE: its content in $text without the final newline ("" when there is no such file)
slurp() {
  text="" nl=""
  [ -f "$1" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do text="$text$nl$line" nl='
'; done < "$1"
}
# write FILE CONTENT: FILE holds CONTENT and a newline afterwards; untouched if it did already
write() { slurp "$1"; [ "$text" = "$2" ] || printf '%s\n' "$2" > "$1"; }
warn() { echo "sanbook-identity: $*" >&2; }

if fw hostname; then
  case $value in
    ''|*[!A-Za-z0-9.-]*) warn "ignoring the hostname '$value'" ;;
    *) write /etc/hostname "$value"
       printf '%s' "$value" > /proc/sys/kernel/hostname
       slurp /etc/hosts
       hosts=""
       while IFS= read -r line; do
         case $line in 127.0.1.1[[:space:]]*) ;; *) hosts="$hosts$line
" ;; esac
       done <<HOSTS
$text
HOSTS
       write /etc/hosts "$hosts""127.0.1.1	$value"
       done="$done hostname=$value" ;;
  esac
fi

if fw network; then
  [ -d /etc/systemd/network ] || mkdir -p /etc/systemd/network
  keep="" n=0
  while read -r mac addr _; do
    case $mac in ''|\#*) continue ;; esac
    case $mac in
      *[!0-9A-Fa-f:]*) warn "ignoring the network line '$mac $addr'"; continue ;;
      ??:??:??:??:??:??) ;;
      *) warn "ignoring the network line '$mac $addr'"; continue ;;
    esac
    case $addr in
      dhcp) conf="DHCP=ipv4" ;;
      */*) conf="Address=$addr" ;;
      *) warn "ignoring the network line '$mac $addr'"; continue ;;
    esac
    IFS=: read -r m1 m2 m3 m4 m5 m6 <<MAC
$mac
MAC
    file=/etc/systemd/network/20-sanbook-$m1$m2$m3$m4$m5$m6.network
    write "$file" "[Match]
MACAddress=$mac

[Network]
$conf
LinkLocalAddressing=no
IPv6AcceptRA=no"
    keep="$keep $file" n=$((n + 1))
  done <<NETWORK
$value
NETWORK
  for file in /etc/systemd/network/20-sanbook-*.network; do
    [ -e "$file" ] || continue
    case "$keep " in *" $file "*) ;; *) rm -f "$file" ;; esac
  done
  done="$done networks=$n"
fi

if fw authorized_keys; then
  umask 077
  [ -d /root/.ssh ] || mkdir /root/.ssh
  write /root/.ssh/authorized_keys "$value"
  umask 022
  done="$done authorized_keys"
fi

if fw ssh_host_ed25519_key; then
  slurp "$key"
  if [ "$text" != "$value" ] || [ ! -s "$key.pub" ]; then
    umask 077
    printf '%s\n' "$value" > "$key"
    umask 022
    ssh-keygen -y -f "$key" > "$key.pub"
  fi
  done="$done host_key"
fi
if [ ! -s "$key" ]; then
  rm -f "$key" "$key.pub"
  ssh-keygen -q -t ed25519 -N '' -f "$key"
  done="$done host_key=generated"
fi

if fw apt_source; then
  write /etc/apt/sources.list.d/sanbook-lab.list "$value"
  done="$done apt_source"
fi
echo "sanbook-identity:$done"
`;

/** Run once at build time as init: initramfs, GRUB into this disk's MBR, grub.cfg; remove itself, power off. */
const GRUB_SETUP_SCRIPT = `#!/bin/sh
# sanbook-grub-setup: run once while the image is built (init=${GRUB_SETUP_PATH} on the kernel command line):
# make the initramfs, install GRUB into this disk's MBR, write grub.cfg, remove itself, power off.
# lab/image.ts reads the console.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mountpoint -q /run || mount -t tmpfs tmpfs /run
# Run from /run, so that / holds no open deleted file and can be remounted read-only at the end.
if [ "$0" != /run/sanbook-grub-setup ]; then cp "$0" /run/sanbook-grub-setup && exec /bin/sh /run/sanbook-grub-setup; fi
echo "sanbook-grub-setup: root on $(findmnt -no SOURCE /); $(ls /dev/disk/by-id/ 2>/dev/null | tr '\\n' ' ')"
# The initramfs again, now that fstab names the root filesystem (fsck) and with MODULES=dep for this hardware.
if update-initramfs -u -k all && grub-install --target=i386-pc /dev/sda && update-grub; then
  rm -f ${GRUB_SETUP_PATH}
  echo "${GRUB_SETUP_OK}"
else
  echo "SANBOOK-GRUB-SETUP: FAILED"
fi
fstrim / || true   # the blocks of the replaced initramfs: left out of the qcow2
sync
mount -o remount,ro /
echo o > /proc/sysrq-trigger
sleep 60
`;

const GUEST_FILES: readonly GuestFile[] = [
  { path: '/etc/fstab', mode: 0o644, content: `LABEL=${ROOT_LABEL} / ext4 errors=remount-ro 0 1\n` },
  { path: '/etc/hostname', mode: 0o644, content: 'sanbook\n' },
  { path: '/etc/hosts', mode: 0o644, content: '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tsanbook\n' },
  {
    path: '/etc/default/grub.d/sanbook.cfg', mode: 0o644, content: [
      'GRUB_TIMEOUT=0', 'GRUB_TIMEOUT_STYLE=hidden', 'GRUB_DISABLE_RECOVERY=true', 'GRUB_DISABLE_OS_PROBER=true',
      'GRUB_CMDLINE_LINUX_DEFAULT=""', 'GRUB_CMDLINE_LINUX="console=ttyS0,115200 net.ifnames=0 loglevel=4"',
      'GRUB_TERMINAL="serial console"', 'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"', '',
    ].join('\n'),
  },
  {
    path: '/etc/ssh/sshd_config.d/sanbook.conf', mode: 0o644, content: [
      'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UseDNS no',
      'HostKey /etc/ssh/ssh_host_ed25519_key', '',
    ].join('\n'),
  },
  // MODULES=most (Debian's default) makes update-initramfs take ~13 min in an emulated guest, dep ~2 min.
  { path: '/etc/initramfs-tools/conf.d/sanbook.conf', mode: 0o644, content: 'MODULES=dep\n' },
  { path: '/etc/apt/apt.conf.d/90sanbook', mode: 0o644, content: 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\nAcquire::Languages "none";\n' },
  {
    path: '/etc/systemd/system/sanbook-identity.service', mode: 0o644, content: `[Unit]
Description=sanbook lab: this VM's identity from QEMU fw_cfg
DefaultDependencies=no
After=systemd-remount-fs.service systemd-modules-load.service local-fs.target
Before=sysinit.target network-pre.target systemd-networkd.service ssh.service systemd-hostnamed.service shutdown.target
Wants=network-pre.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${IDENTITY_PATH}

[Install]
WantedBy=sysinit.target
`,
  },
  { path: IDENTITY_PATH, mode: 0o755, content: IDENTITY_SCRIPT },
  { path: GRUB_SETUP_PATH, mode: 0o755, content: GRUB_SETUP_SCRIPT },
];

export interface GuestFile {
  readonly path: string;
  readonly mode: number;
  readonly content: string;
}

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
  const result: BaseImage = { path: join(finalDir, 'disk.qcow2'), hash, repoDir: join(finalDir, 'repo') };
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
      await buildImage(recipe, hash, work, options.mirror ?? (await hostMirror(recipe.suite)), options.accel ?? (await chooseAccel()), log);
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

async function buildImage(recipe: Recipe, hash: string, work: string, mirror: string, accel: Accel, log: (l: string) => void): Promise<void> {
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
  log(`base image ${hash}: Debian ${recipe.suite} from ${mirror}, ${accel.toUpperCase()} for the build boots, in ${work}`);

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
