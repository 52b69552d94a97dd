/**
 * rootfs: a Debian root filesystem built with debootstrap on a block device (an LV, a disk), for a machine that
 * boots from it over the network: an msdos label with one ext4 partition, the machine's hostname, initiator
 * name, DHCP interfaces and SSH keys, an initramfs with the modules it boots with; its kernel and initramfs are
 * kept on this host (and copied to exportDir, e.g. a TFTP directory).
 *
 * gather reads and never mounts (a client may be running from the device): the device's signatures, the
 * filesystem at partition 1's offset (blkid -p -O), whether anything holds the device open (an exclusive open
 * fails: a mount, a map, an iSCSI target's backstore), the module's marker on this host, and the checksums of the
 * kept and exported files. What was built is known by the marker: the recipe it was built for (every param that
 * changes the image; the host key by its hash) and the filesystem UUID.
 *
 * plan: built for this recipe, same UUID -> nothing (or copy the exports that differ). Blank, or a build of ours
 * that did not finish -> build. Anything else on the device (a filesystem, a partition table, the build of
 * another recipe: the client's root with its data) -> build, destructive. A device in use is never built.
 */
import { createHash } from 'node:crypto';
import { cmd, sh, type Command } from '../lib/command.ts';
import { defineModule, exec, type Change } from '../lib/module.ts';
import { IPV4_CIDR_PATTERN, IPV4_PATTERN } from '../lib/schema.ts';
import type { Secret } from '../lib/secret.ts';
import { SECTION_FUNCTION, describeSignature, parseBlkid, sectionOf, splitSections, type Signature } from './blockdev.ts';
import { PARTITION_OFFSET, buildScript, type BuildSpec, type StaticAddress } from './rootfs/script.ts';

export interface RootfsParams {
  device: string;
  suite: string;
  variant?: 'minbase' | 'buildd' | 'fakechroot';
  include?: string[];
  source: { mirror: string } | { tarball: string; sha256: string };
  hostname: string;
  uuid: string;
  label?: string;
  initiatorName?: string;
  initramfsModules?: 'most' | 'netboot' | 'dep' | 'list';
  grub?: { kernelArgs?: string[] };
  dhcp?: string[];
  addresses?: StaticAddress[];
  authorizedKeys?: string[];
  sshHostKey?: Secret;
  exportDir?: string;
}

/** What was built: the marker's recipe. Secrets appear only as hashes. */
export type Recipe = Readonly<Record<string, unknown>>;

export interface Marker {
  readonly state: 'building' | 'built';
  readonly recipe: Recipe;
  readonly uuid: string;
  readonly kernel: string | null;
}

export interface RootfsFacts {
  readonly device: string;
  readonly exists: boolean;
  /** What blkid -p finds on the whole device (the msdos label of a build, or anything else). */
  readonly signature: Signature | null;
  /** The filesystem at partition 1's offset. */
  readonly filesystem: Signature | null;
  /** Why the device cannot be opened exclusively (empty: nobody holds it). */
  readonly busy: string | null;
  readonly marker: Marker | null;
  /** sha256 of the kept kernel and initramfs, and of the exported copies (null: missing). */
  readonly kept: { readonly vmlinuz: string | null; readonly initrd: string | null };
  readonly exported: { readonly vmlinuz: string | null; readonly initrd: string | null };
  readonly missingTools: readonly string[];
}

export interface RootfsOutput {
  device: string;
  uuid: string | null;
  label: string | null;
  kernel: string | null;
  /** The kernel and initramfs on this host (exportDir's copies when set). */
  vmlinuz: string;
  initrd: string;
  built: boolean;
}

const TOOLS = ['debootstrap', 'parted', 'losetup', 'mkfs.ext4', 'wipefs', 'chroot', 'sha256sum', 'python3', 'wget'];
const BUILD_MS = 3 * 3600_000;

/** Where the module keeps what it built, on the host (a test points it elsewhere). */
export const STATE_ROOT = '/var/lib/sanbook/rootfs';

/** The module's directory for a device on the host: /var/lib/sanbook/rootfs/dev-boot-dl1-root. */
export function stateDir(device: string, root = STATE_ROOT): string {
  return `${root}/${device.replace(/^\/+/, '').replace(/[^A-Za-z0-9._-]+/g, '-')}`;
}

/** Every param that changes what is built, in a fixed order; the host key by its sha256. */
export function recipeOf(p: RootfsParams): Recipe {
  const source = 'mirror' in p.source ? { mirror: p.source.mirror } : { tarballSha256: p.source.sha256 };
  return {
    // The build's own version: a volume built by an earlier script (grub.cfg without a menu entry) is rebuilt.
    layout: 'msdos-1-ext4/2',
    suite: p.suite, variant: p.variant ?? 'minbase', include: [...(p.include ?? [])].sort(), source,
    hostname: p.hostname, uuid: p.uuid, label: p.label ?? 'root', initiatorName: p.initiatorName ?? null,
    initramfsModules: p.initramfsModules ?? 'netboot', grub: p.grub ? (p.grub.kernelArgs ?? []) : null, dhcp: p.dhcp ?? [], addresses: p.addresses ?? [],
    authorizedKeys: p.authorizedKeys ?? [], sshHostKey: p.sshHostKey ? createHash('sha256').update(p.sshHostKey.reveal()).digest('hex') : null,
  };
}

/** The recipe's fields that differ (their names), in the recipe's order. */
export function recipeChanges(was: Recipe, now: Recipe): string[] {
  return Object.keys(now).filter((k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]));
}

export function gatherCommand(p: RootfsParams, root = STATE_ROOT): Command {
  const dir = stateDir(p.device, root);
  const exp = p.exportDir;
  return sh`${SECTION_FUNCTION}
d=${p.device}
sanbook_run tools sh -c 'for t; do command -v "$t" >/dev/null || echo "$t"; done' sh ${TOOLS}
if sanbook_run exists test -b "$d"; then
sanbook_run blkid blkid -p -o export "$d"
sanbook_run fs blkid -p -o export -O ${String(PARTITION_OFFSET)} "$d"
sanbook_run busy python3 -c 'import os,sys
try: os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL))
except OSError as e: print(e.strerror); sys.exit(1)' "$d"
fi
sanbook_run marker cat ${`${dir}/marker.json`}
sanbook_run kept sha256sum ${`${dir}/vmlinuz`} ${`${dir}/initrd.img`}
${exp !== undefined ? sh`sanbook_run exported sha256sum ${`${exp}/vmlinuz`} ${`${exp}/initrd.img`}\n` : sh``}:`;
}

/** sha256sum's output for two files: each hash, or null for a file it could not read. */
function sums(stdout: string, a: string, b: string): [string | null, string | null] {
  const of = (path: string) => stdout.split('\n').find((l) => l.endsWith(`  ${path}`))?.slice(0, 64) ?? null;
  return [of(a), of(b)];
}

export function parseRootfsGather(stdout: string, p: RootfsParams, host: string, root = STATE_ROOT): RootfsFacts {
  const sections = splitSections(stdout);
  const what = `rootfs ${p.device} on ${host}`;
  const get = (tag: string) => sectionOf(sections, tag, what);
  const has = (tag: string) => sections.find((s) => s.tag === tag);
  const exists = has('exists')?.exitCode === 0;
  const probe = (tag: string): Signature | null => {
    const s = exists ? get(tag) : null;
    return s ? parseBlkid(s.stdout, s.exitCode, s.stderr) : null;
  };
  const busy = exists ? get('busy') : null;
  const markerSection = get('marker');
  let marker: Marker | null = null;
  if (markerSection.exitCode === 0) {
    try {
      marker = JSON.parse(markerSection.stdout) as Marker;
    } catch {
      throw new Error(`${what}: ${stateDir(p.device, root)}/marker.json is not JSON: remove it (the device will then count as foreign)`);
    }
  }
  const dir = stateDir(p.device, root);
  const [kv, ki] = sums(get('kept').stdout, `${dir}/vmlinuz`, `${dir}/initrd.img`);
  const ex = has('exported');
  const [ev, ei] = ex && p.exportDir !== undefined ? sums(ex.stdout, `${p.exportDir}/vmlinuz`, `${p.exportDir}/initrd.img`) : [null, null];
  return {
    device: p.device, exists, signature: probe('blkid'), filesystem: probe('fs'),
    busy: busy && busy.exitCode !== 0 ? busy.stdout.trim() || busy.stderr.trim() || `exit ${busy.exitCode}` : null,
    marker, kept: { vmlinuz: kv, initrd: ki }, exported: { vmlinuz: ev, initrd: ei },
    missingTools: get('tools').stdout.split('\n').map((l) => l.trim()).filter(Boolean),
  };
}

function raise(message: string): never {
  throw new Error(message);
}

/** What the build script is made from (`root`: where the state directory is; a test points it elsewhere). */
export function buildSpec(p: RootfsParams, root = STATE_ROOT): BuildSpec {
  const recipe = recipeOf(p);
  const marker = (state: string, kernel: string | null) => JSON.stringify({ state, recipe, uuid: p.uuid, kernel });
  return {
    device: p.device, stateDir: stateDir(p.device, root), suite: p.suite, variant: p.variant ?? 'minbase', include: p.include ?? [],
    source: p.source, uuid: p.uuid, label: p.label ?? 'root', hostname: p.hostname, initiatorName: p.initiatorName ?? null,
    initramfsModules: p.initramfsModules ?? 'netboot', grubArgs: p.grub ? (p.grub.kernelArgs ?? []) : null, dhcp: p.dhcp ?? [], addresses: p.addresses ?? [], authorizedKeys: p.authorizedKeys ?? [], sshHostKey: p.sshHostKey ?? null,
    markerBuilding: marker('building', null), markerBuilt: marker('built', '@KERNEL@'),
  };
}

/** Is what the device holds this recipe's finished build? (null: yes; else why not, for the summary). */
function staleness(p: RootfsParams, f: RootfsFacts): { why: string; destroys: string | null } | null {
  const m = f.marker;
  const ours = m !== null && f.filesystem?.uuid === m.uuid;
  if (ours && m.state === 'built' && recipeChanges(m.recipe, recipeOf(p)).length === 0) return null;
  if (ours && m.state === 'building') return { why: 'an earlier build did not finish', destroys: null };
  if (ours) {
    const changed = recipeChanges(m.recipe, recipeOf(p));
    return { why: `built for another recipe (${changed.join(', ')} changed)`, destroys: `${p.device} holds the root filesystem built for ${String(m.recipe['hostname'])} (${changed.join(', ')} changed): rebuilding erases it and whatever the client wrote on it` };
  }
  const sig = f.signature ?? f.filesystem;
  if (sig === null) return { why: 'the device is blank', destroys: null };
  const what = [f.signature, f.filesystem].filter((s): s is Signature => s !== null).map(describeSignature).join(' and ');
  return { why: `it holds ${what}`, destroys: `${p.device} holds ${what}: building the root filesystem erases it` };
}

export function planRootfs(p: RootfsParams, f: RootfsFacts): Change[] {
  if (!f.exists) raise(`${p.device} does not exist (not a block device)`);
  const stale = staleness(p, f);
  const changes: Change[] = [];
  const dir = stateDir(p.device);
  if (p.grub && !(p.include ?? []).includes('grub-pc')) raise("grub needs the root filesystem's own GRUB: add grub-pc to include");
  const both = (p.addresses ?? []).map((a) => a.interface.toLowerCase()).filter((i) => (p.dhcp ?? []).some((d) => d.toLowerCase() === i));
  if (both.length > 0) raise(`${both.join(', ')} is in both dhcp and addresses: an interface is configured one way`);
  if (stale) {
    if (f.missingTools.length > 0) raise(`building a root filesystem needs ${f.missingTools.join(', ')} on this host: install them first (packages debootstrap, parted, e2fsprogs, python3, wget)`);
    if (f.busy !== null) raise(`${p.device} is in use (${f.busy}: mounted, held by a map, or exported by an iSCSI target): it cannot be built while a client may boot from it. Remove its LUN or stop the client first`);
    changes.push({
      summary: `build a Debian ${p.suite} root filesystem for ${p.hostname} on ${p.device} (${stale.why})`,
      steps: [exec(buildScript(buildSpec(p)).with({ timeoutMs: BUILD_MS }))],
      ...(stale.destroys !== null ? { destructive: stale.destroys } : {}),
    });
  }
  if (p.exportDir !== undefined) {
    const built = stale !== null;
    const differs = built || f.kept.vmlinuz === null || f.kept.vmlinuz !== f.exported.vmlinuz || f.kept.initrd !== f.exported.initrd;
    if (differs) {
      if (!built && (f.kept.vmlinuz === null || f.kept.initrd === null)) {
        raise(`${dir} lacks the kernel or initramfs of the build on ${p.device}: remove ${dir}/marker.json to build again`);
      }
      const copy = (name: string) => sh`cp ${`${dir}/${name}`} ${`${p.exportDir}/${name}.part`} && chmod 644 ${`${p.exportDir}/${name}.part`} && mv ${`${p.exportDir}/${name}.part`} ${`${p.exportDir}/${name}`}`;
      changes.push({
        summary: `copy ${p.hostname}'s kernel and initramfs to ${p.exportDir}`,
        steps: [exec(cmd('mkdir', '-p', '--', p.exportDir)), exec(copy('vmlinuz')), exec(copy('initrd.img'))],
      });
    }
  }
  return changes;
}

export function rootfsOutput(p: RootfsParams, f: RootfsFacts): RootfsOutput {
  const dir = p.exportDir ?? stateDir(p.device);
  const built = staleness(p, f) === null && f.exists;
  return {
    device: p.device, uuid: built ? p.uuid : null, label: built ? (p.label ?? 'root') : null, kernel: built ? (f.marker?.kernel ?? null) : null,
    vmlinuz: `${dir}/vmlinuz`, initrd: `${dir}/initrd.img`, built,
  };
}

const PKG = '^[a-z0-9][a-z0-9+.-]+$';
const IFACE = '^([a-z][a-z0-9]{0,14}|[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5})$';
const UUID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

export const rootfs = defineModule<RootfsParams, RootfsFacts, RootfsOutput>({
  name: 'rootfs',
  description:
    "A Debian root filesystem built with debootstrap on a block device, for a machine that boots from it over the network (seed 002's diskless client): an msdos label, one ext4 partition with the given UUID and label, the machine's hostname, iSCSI initiator name, DHCP interfaces and SSH keys, and an initramfs with the modules it boots with. Its kernel and initramfs are kept on this host and copied to exportDir. Built once: a device that holds this recipe's build is left alone, whatever the client wrote on it. Building over anything else (a filesystem, a partition table, a build for another recipe) is destructive; a device in use (mounted, held, exported by a target) is always refused. Output: {device, uuid, label, kernel, vmlinuz, initrd, built}.",
  examples: [
    {
      title: "Seed 002's client root on an LV, from a debootstrap tarball, kernel and initramfs exported for TFTP",
      params: {
        device: '/dev/boot/dl1-root', suite: 'bookworm', include: ['linux-image-amd64', 'systemd-sysv', 'udev', 'open-iscsi', 'openssh-server', 'ifupdown'],
        source: { tarball: 'http://10.0.2.100/debootstrap/bookworm.tgz', sha256: '0'.repeat(64) },
        hostname: 'dl1', uuid: '6d3f0b4e-31c8-4f57-9a41-0f5b2c1d7e90', initiatorName: 'iqn.2024-12.tp2.b3:dl1', dhcp: ['eth0'],
        exportDir: '/srv/tftp/sanbook/dl1',
      },
    },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['device', 'suite', 'source', 'hostname', 'uuid'],
    properties: {
      device: { type: 'string', pattern: '^/dev/[^\\s]+$', description: 'The block device that becomes the client\'s disk: /dev/VG/LV, /dev/md/NAME, /dev/disk/by-id/...' },
      suite: { type: 'string', pattern: '^[a-z]+$', description: 'Debian suite (bookworm).' },
      variant: { enum: ['minbase', 'buildd', 'fakechroot'], default: 'minbase', description: "debootstrap's --variant." },
      include: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: PKG }, description: 'Packages installed by debootstrap (--include): a kernel, systemd-sysv, open-iscsi, openssh-server, ...' },
      source: {
        oneOf: [
          { type: 'object', additionalProperties: false, required: ['mirror'], properties: { mirror: { type: 'string', pattern: '^(https?|file)://[^\\s]+$', description: 'A Debian mirror.' } } },
          {
            type: 'object', additionalProperties: false, required: ['tarball', 'sha256'],
            properties: {
              tarball: { type: 'string', pattern: '^(https?|ftp)://[^\\s]+$', description: 'A tarball made by debootstrap --make-tarball with the same suite, variant and include (downloaded with wget).' },
              sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: "The tarball's sha256 (checked before use)." },
            },
          },
        ],
        description: 'Where the packages come from: {mirror: URL}, or {tarball: URL, sha256} for a host without a mirror.',
      },
      hostname: { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', description: "The client's host name." },
      uuid: { type: 'string', pattern: UUID, description: "The root filesystem's UUID (the boot entry's root=UUID=...: known before the build, so check mode plans it exactly)." },
      label: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,16}$', default: 'root', description: 'The ext4 label.' },
      initiatorName: { type: 'string', pattern: '^(iqn\\.[0-9]{4}-[0-9]{2}\\.[^\\s:]+(:[^\\s]+)?|eui\\.[0-9A-Fa-f]{16})$', description: "/etc/iscsi/initiatorname.iscsi (the target's ACL names it); the build then checks that the initramfs holds iscsistart." },
      initramfsModules: {
        enum: ['most', 'netboot', 'dep', 'list'], default: 'netboot',
        description: "initramfs-tools' MODULES. netboot (default): filesystems and network drivers, and sd_mod (a hook the build adds): what a root on iSCSI needs. most adds every disk driver (minutes more per initramfs); dep would inspect this host, not the client.",
      },
      grub: {
        type: 'object', additionalProperties: false,
        properties: { kernelArgs: { type: 'array', items: { type: 'string', pattern: '^[^\\s"]+$' }, description: 'Kernel arguments after root=UUID=... ro (iSCSI from the firmware: iscsi_auto, and ip= for the boot NIC).' } },
        description: "GRUB in the device's MBR (the root filesystem's own grub-pc: include it), so the device boots itself when iPXE sanboots it.",
      },
      dhcp: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: IFACE }, description: 'Interfaces (names, or MAC addresses) that systemd-networkd configures by DHCP. Leave the boot NIC out (give it to addresses): the initramfs configured it, and networkd would flush its address under the root filesystem.' },
      addresses: {
        type: 'array',
        items: {
          type: 'object', additionalProperties: false, required: ['interface', 'address'],
          properties: {
            interface: { type: 'string', pattern: IFACE, description: 'Its name, or its MAC address.' },
            address: { type: 'string', pattern: IPV4_CIDR_PATTERN, description: 'IPv4 address/prefix.' },
            gateway: { type: 'string', pattern: IPV4_PATTERN, description: 'IPv4 default gateway on this link.' },
          },
        },
        description: "Interfaces with a fixed address that systemd-networkd keeps from the moment it starts (KeepConfiguration=yes): the boot NIC of a root on iSCSI, whose address the initramfs set (ip=, or the iBFT) and which must never go away under the root filesystem.",
      },
      authorizedKeys: { type: 'array', items: { type: 'string', pattern: '^(ssh|ecdsa|sk)-[^\\n]+$' }, description: "root's authorized_keys." },
      sshHostKey: { secret: true, description: 'An OpenSSH ed25519 private key: the only host key of the client (so its known_hosts line is known before it boots). Default: the keys the openssh-server package made.' },
      exportDir: { type: 'string', pattern: '^/[^\\s]*$', description: 'A directory the kernel (vmlinuz) and initramfs (initrd.img) are copied to: a TFTP or HTTP root the boot entry loads them from.' },
    },
  },
  async gather(conn, params, ctx) {
    const r = await conn.exec(gatherCommand(params));
    return parseRootfsGather(r.stdout, params, ctx.host);
  },
  plan: planRootfs,
  output: rootfsOutput,
});
