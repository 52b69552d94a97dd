/**
 * The inventory variables of playbooks/iscsi-boot.ts, typed: a diskless client's `iscsi_boot` (its identity on
 * the SAN, its boot NIC, its root volume) and a boot server's `iscsi_boot_server` (its disks, its TFTP address,
 * where debootstrap gets the packages). Checked before anything runs; each problem names the host and the field.
 */
import { createHash } from 'node:crypto';
import { UserError } from '../../lib/errors.ts';
import { IPV4_CIDR_PATTERN, IPV4_PATTERN, validateSchema } from '../../lib/schema.ts';
import type { Secret } from '../../lib/secret.ts';
import { IQN_PATTERN } from '../../modules/targetcli.ts';
import { SIZE_PATTERN } from '../../modules/lvm.ts';

const MAC = '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$';
const IFACE = '^[a-z][a-z0-9]{0,14}$';

/**
 * What a client's root filesystem holds (debootstrap --include): a kernel and its initramfs tools, systemd, the
 * iSCSI initiator (its initramfs scripts log in to the root target), SSH, and GRUB (the volume boots itself when
 * iPXE sanboots it: one build serves both boot modes). The lab's debootstrap tarball is made
 * with exactly these (lab/netboot.ts).
 */
export const ROOT_PACKAGES: readonly string[] = [
  'linux-image-amd64', 'systemd-sysv', 'udev', 'dbus', 'kmod', 'iproute2', 'netbase', 'openssh-server', 'open-iscsi', 'e2fsprogs', 'grub-pc',
];
export const ROOT_SUITE = 'bookworm';
export const ROOT_VARIANT = 'minbase';

export const BOOT_VARS_SCHEMA = {
  type: 'object',
  properties: {
    iscsi_boot: {
      type: 'object',
      additionalProperties: false,
      required: ['server', 'initiator', 'target', 'portal', 'chap_user', 'chap_secret', 'boot_mac', 'boot_address', 'boot_interface'],
      description: 'A diskless client (seed 002): the boot server that serves it, its iSCSI identity, its boot NIC, its root volume.',
      properties: {
        server: { type: 'string', minLength: 1, description: 'The inventory host that builds its root volume, exports it and serves its boot entry.' },
        mode: { enum: ['initramfs', 'sanboot'], default: 'initramfs', description: 'initramfs: iPXE loads the kernel and initramfs by TFTP and passes ISCSI_* on the kernel command line. sanboot: iPXE logs in and boots the LUN (one-way CHAP only).' },
        initiator: { type: 'string', pattern: IQN_PATTERN, description: "The client's initiator IQN (the target's ACL)." },
        target: { type: 'string', pattern: IQN_PATTERN, description: 'The IQN of the target that exports its root volume.' },
        portal: { type: 'string', pattern: IPV4_PATTERN, description: "The boot server's address the client logs in to (port 3260)." },
        chap_user: { type: 'string', pattern: '^[A-Za-z0-9._@:-]+$', maxLength: 255, description: 'CHAP user name.' },
        chap_secret: { secret: { minLength: 12, maxLength: 16, pattern: '^[A-Za-z0-9._~:@+!%^*,/-]+$' }, description: 'CHAP secret (12 to 16 characters; mark it !secret). It is on the kernel command line in initramfs mode: anyone who can read the boot entry or the client\'s /proc/cmdline sees it.' },
        boot_mac: { type: 'string', pattern: MAC, description: 'MAC address of the boot NIC (the boot entry is named after it).' },
        boot_address: { type: 'string', pattern: IPV4_CIDR_PATTERN, description: 'Address/prefix of the boot NIC, set by iPXE and by the initramfs (ip=).' },
        boot_interface: { type: 'string', pattern: IFACE, description: "The boot NIC's name in Linux (with net.ifnames=0: eth0, eth1, ...)." },
        dhcp: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: IFACE }, description: 'Other interfaces configured by DHCP once booted (systemd-networkd).' },
        root_size: { type: 'string', pattern: SIZE_PATTERN, description: 'Size of the root volume (default 1200M).' },
        authorized_keys: { type: 'array', items: { type: 'string', pattern: '^(ssh|ecdsa|sk)-[^\\n]+$' }, description: "root's SSH authorized_keys on the client." },
        ssh_host_key: { secret: true, description: "The client's SSH host key (an OpenSSH ed25519 private key; mark it !secret)." },
      },
    },
    iscsi_boot_server: {
      type: 'object',
      additionalProperties: false,
      required: ['pvs', 'tftp_address', 'debootstrap'],
      description: 'A boot server: the volume group of root volumes, TFTP, the packages debootstrap installs.',
      properties: {
        pvs: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^/dev/[^\\s]+$' }, description: 'Devices of the volume group that holds the root volumes.' },
        vg: { type: 'string', pattern: '^[A-Za-z0-9+_.-]+$', description: 'Volume group name (default boot).' },
        tftp_address: { type: 'string', pattern: IPV4_PATTERN, description: 'The address TFTP listens on (the clients\' boot network).' },
        tftp_root: { type: 'string', pattern: '^/[^\\s]*$', description: 'TFTP root (default /srv/tftp).' },
        debootstrap: {
          oneOf: [
            { type: 'object', additionalProperties: false, required: ['mirror'], properties: { mirror: { type: 'string', pattern: '^(https?|file)://[^\\s]+$', description: 'A Debian mirror.' } } },
            {
              type: 'object', additionalProperties: false, required: ['tarball', 'sha256'],
              properties: {
                tarball: { type: 'string', pattern: '^(https?|ftp)://[^\\s]+$', description: `debootstrap --make-tarball of ${ROOT_SUITE} --variant=${ROOT_VARIANT} --include=${ROOT_PACKAGES.join(',')}.` },
                sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: "The tarball's sha256." },
              },
            },
          ],
          description: 'Where debootstrap gets the packages: {mirror} or {tarball, sha256}.',
        },
      },
    },
  },
} as const;

export interface BootClient {
  readonly host: string;
  readonly server: string;
  readonly mode: 'initramfs' | 'sanboot';
  readonly initiator: string;
  readonly target: string;
  readonly portal: string;
  readonly chapUser: string;
  readonly chapSecret: Secret;
  readonly bootMac: string;
  readonly bootAddress: string;
  readonly bootPrefix: number;
  readonly bootInterface: string;
  readonly dhcp: readonly string[];
  readonly rootSize: string;
  readonly authorizedKeys: readonly string[];
  readonly sshHostKey: Secret | null;
}

export interface BootServer {
  readonly pvs: readonly string[];
  readonly vg: string;
  readonly tftpAddress: string;
  readonly tftpRoot: string;
  readonly source: { readonly mirror: string } | { readonly tarball: string; readonly sha256: string };
}

interface RawClient {
  server: string; mode?: 'initramfs' | 'sanboot'; initiator: string; target: string; portal: string; chap_user: string; chap_secret: Secret;
  boot_mac: string; boot_address: string; boot_interface: string; dhcp?: string[]; root_size?: string; authorized_keys?: string[]; ssh_host_key?: Secret;
}
interface RawServer {
  pvs: string[]; vg?: string; tftp_address: string; tftp_root?: string; debootstrap: { mirror: string } | { tarball: string; sha256: string };
}
interface RawVars { iscsi_boot?: RawClient; iscsi_boot_server?: RawServer }

function raw(vars: Readonly<Record<string, unknown>>, host: string): RawVars {
  return validateSchema<RawVars>(BOOT_VARS_SCHEMA, vars, { host });
}

/** A client's variables, typed (undefined: the host is no diskless client). */
export function bootClient(vars: Readonly<Record<string, unknown>>, host: string): BootClient | undefined {
  const c = raw(vars, host).iscsi_boot;
  if (!c) return undefined;
  const [address = '', prefix = '24'] = c.boot_address.split('/');
  if ((c.dhcp ?? []).includes(c.boot_interface)) {
    throw new UserError(`names the boot NIC (${c.boot_interface}): its address is boot_address, kept under the root filesystem; DHCP on it would fight that`, { host, field: 'iscsi_boot.dhcp' });
  }
  return {
    host, server: c.server, mode: c.mode ?? 'initramfs', initiator: c.initiator, target: c.target, portal: c.portal,
    chapUser: c.chap_user, chapSecret: c.chap_secret, bootMac: c.boot_mac.toLowerCase(), bootAddress: address, bootPrefix: Number(prefix),
    bootInterface: c.boot_interface, dhcp: c.dhcp ?? [], rootSize: c.root_size ?? '1200M', authorizedKeys: c.authorized_keys ?? [],
    sshHostKey: c.ssh_host_key ?? null,
  };
}

/** A boot server's variables, typed (undefined: none given). */
export function bootServer(vars: Readonly<Record<string, unknown>>, host: string): BootServer | undefined {
  const s = raw(vars, host).iscsi_boot_server;
  if (!s) return undefined;
  return { pvs: s.pvs, vg: s.vg ?? 'boot', tftpAddress: s.tftp_address, tftpRoot: s.tftp_root ?? '/srv/tftp', source: s.debootstrap };
}

/** The root filesystem's UUID, from the server and client names: known before it exists (root=UUID=...). */
export function rootUuid(server: string, client: string): string {
  const h = createHash('sha256').update(`sanbook rootfs ${server}/${client}`).digest('hex');
  // A version-4-shaped UUID (variant 10xx), as mkfs would make one.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((Number.parseInt(h.slice(16, 17), 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A netmask from a prefix length (24 -> 255.255.255.0). */
export function netmask(prefix: number): string {
  const n = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/**
 * The kernel's ip= for the client's boot NIC (static, no autoconfiguration), in both modes: the initramfs configures
 * the NIC with it (classic mode; in sanboot the iBFT has done so already, with the same address), and
 * systemd-network-generator turns it into a unit for that NIC alone. Not `ip=off`: the generator makes that a
 * unit for every link, with DHCP=no, and networkd flushed the boot NIC's address under the root (seen on the lab).
 */
export function ipArgument(c: BootClient): string {
  return `ip=${c.bootAddress}:::${netmask(c.bootPrefix)}:${c.host}:${c.bootInterface}:off`;
}
