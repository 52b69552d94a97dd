/**
 * rootfs, the build: one script that makes a whole disk image on the device (an msdos label, one partition from
 * 1 MiB to the end (parted), ext4 with a given UUID and label), debootstraps Debian into it, writes the machine's identity, keeps a
 * copy of its kernel and initramfs on the host, and records what it built. Every step that can fail is checked
 * (set -e); a trap unmounts and detaches whatever the script set up, so a failed build leaves no mount and no
 * loop device behind, and its marker says "building": the next run rebuilds without asking for force.
 */
import { raw, sh, type Command } from '../../lib/command.ts';
import type { Secret } from '../../lib/secret.ts';

/** Where partition 1 starts (bytes): 1 MiB, where parted puts it. */
export const PARTITION_OFFSET = 1024 * 1024;

export interface BuildSpec {
  readonly device: string;
  /** The module's directory for this device on the host: marker.json, mnt/, vmlinuz, initrd.img. */
  readonly stateDir: string;
  readonly suite: string;
  readonly variant: string;
  readonly include: readonly string[];
  readonly source: { readonly mirror: string } | { readonly tarball: string; readonly sha256: string };
  readonly uuid: string;
  readonly label: string;
  readonly hostname: string;
  readonly initiatorName: string | null;
  readonly initramfsModules: string;
  /** GRUB in the device's MBR, booting the kernel with these arguments (null: no boot loader on the device). */
  readonly grubArgs: readonly string[] | null;
  readonly dhcp: readonly string[];
  /** Interfaces with a fixed address, kept by systemd-networkd from the moment it starts (the boot NIC). */
  readonly addresses: readonly StaticAddress[];
  readonly authorizedKeys: readonly string[];
  readonly sshHostKey: Secret | null;
  /** The marker's two states, as JSON lines: written first ("building") and last ("built", KERNEL replaced). */
  readonly markerBuilding: string;
  readonly markerBuilt: string;
}

/** An interface (its name, or its MAC address) with a fixed IPv4 address (CIDR), and a gateway if any. */
export interface StaticAddress {
  readonly interface: string;
  readonly address: string;
  readonly gateway?: string;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

const matchOf = (iface: string): string => (MAC.test(iface) ? `MACAddress=${iface.toLowerCase()}` : `Name=${iface}`);

/** A systemd-networkd unit that runs DHCP on one interface (by name, or by MAC address). */
export function networkUnit(match: string): string {
  return `[Match]\n${matchOf(match)}\n\n[Network]\nDHCP=ipv4\n`;
}

/**
 * A systemd-networkd unit for an interface with a fixed address, which networkd must never take down: the one the
 * root filesystem is reached through. Without it, a link networkd manages by another unit loses the address the
 * initramfs gave it when networkd starts (seen on the lab: `ip=off` on the kernel command line makes
 * systemd-network-generator write a unit for every link with DHCP=no, and networkd flushed the boot NIC's address
 * under the root; its I/O timed out and the session died). KeepConfiguration=yes keeps what is there when networkd
 * starts and when it stops; this unit's name sorts before the generated ones (70-*, 71-default), so it wins.
 */
export function staticNetworkUnit(a: StaticAddress): string {
  return [
    '# Written by sanbook (rootfs): the root filesystem is reached through this link.',
    '[Match]',
    matchOf(a.interface),
    '',
    '[Network]',
    `Address=${a.address}`,
    ...(a.gateway !== undefined ? [`Gateway=${a.gateway}`] : []),
    'KeepConfiguration=yes',
    'LinkLocalAddressing=no',
    'IPv6AcceptRA=no',
    '',
  ].join('\n');
}

/** The initramfs hook that adds what a root on an iSCSI disk needs besides open-iscsi's own: the SCSI disk driver. */
export const INITRAMFS_HOOK = `#!/bin/sh
# Written by sanbook (rootfs): a root filesystem on an iSCSI LUN is a SCSI disk.
case "$1" in prereqs) exit 0;; esac
. /usr/share/initramfs-tools/hook-functions
manual_add_modules sd_mod
`;

/** GRUB's configuration on the device: the kernel and initramfs of the root filesystem, by its UUID. */
export function grubConfig(uuid: string, args: readonly string[]): string {
  // A menu entry, not bare commands: a grub.cfg that only loads the kernel leaves GRUB at its prompt (seen on the lab).
  return [
    '# Written by sanbook (rootfs): this disk boots itself (iPXE sanboot hands it to its MBR).',
    'set default=0',
    'set timeout=1',
    "menuentry 'Debian (root on iSCSI)' {",
    '  insmod part_msdos',
    '  insmod ext2',
    `  search --no-floppy --fs-uuid --set=root ${uuid}`,
    `  linux /vmlinuz root=UUID=${uuid} ro ${args.join(' ')}`.trimEnd(),
    '  initrd /initrd.img',
    '}',
    '',
  ].join('\n');
}

/** Write `content` to a file under the mounted root (made unreadable to others first, then given its mode). */
function file(path: string, content: string | Secret, mode: string): Command {
  return sh`(umask 077; printf '%s' ${content} > "$mnt"${path}) && chmod ${mode} "$mnt"${path}\n`;
}

function debootstrap(s: BuildSpec): Command {
  const common = sh`--variant=${s.variant} ${s.include.length > 0 ? `--include=${s.include.join(',')}` : []}`;
  if ('mirror' in s.source) return sh`debootstrap ${common} ${s.suite} "$mnt" ${s.source.mirror}\n`;
  const { tarball, sha256 } = s.source;
  return sh`cache="\${state%/*}/debootstrap-cache"; mkdir -p "$cache"; t="$cache/"${sha256}.tgz
if ! printf '%s  %s\\n' ${sha256} "$t" | sha256sum -c --status 2>/dev/null; then
  wget -q -O "$t.part" ${tarball} || { echo ${`cannot download ${tarball}`} >&2; exit 1; }
  printf '%s  %s\\n' ${sha256} "$t.part" | sha256sum -c --status || { rm -f "$t.part"; echo ${`${tarball}: its sha256 is not ${sha256}`} >&2; exit 1; }
  mv "$t.part" "$t"
fi
debootstrap ${common} --unpack-tarball="$t" ${s.suite} "$mnt"
`;
}

/** GRUB from the root filesystem's own grub-pc into the device's MBR, its grub.cfg, and the same arguments for update-grub. */
function grub(uuid: string, args: readonly string[]): Command {
  return concat([
    sh`chroot "$mnt" grub-install --target=i386-pc --modules='part_msdos ext2' "$loop"\nmkdir -p "$mnt/boot/grub" "$mnt/etc/default/grub.d"\n`,
    file('/boot/grub/grub.cfg', grubConfig(uuid, args), '644'),
    file('/etc/default/grub.d/sanbook.cfg', `GRUB_CMDLINE_LINUX=${JSON.stringify(args.join(' '))}\nGRUB_TIMEOUT=1\n`, '644'),
  ]);
}

/** Commands one after the other, as one script. */
function concat(parts: readonly Command[]): Command {
  return parts.reduce((all, c) => sh`${all}${c}`, sh``);
}

/** The build script (run as root on the host that has the device). */
export function buildScript(s: BuildSpec): Command {
  const identity = concat([
    file('/etc/hostname', `${s.hostname}\n`, '644'),
    file('/etc/hosts', `127.0.0.1\tlocalhost\n127.0.1.1\t${s.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`, '644'),
    file('/etc/fstab', `UUID=${s.uuid}\t/\text4\terrors=remount-ro\t0\t1\n`, '644'),
    sh`mkdir -p "$mnt/etc/systemd/network"\n`,
    ...s.addresses.map((a, i) => file(`/etc/systemd/network/05-sanbook-static-${i}.network`, staticNetworkUnit(a), '644')),
    ...s.dhcp.map((m, i) => file(`/etc/systemd/network/10-sanbook-${i}.network`, networkUnit(m), '644')),
    ...(s.authorizedKeys.length > 0
      ? [sh`mkdir -p -m 700 "$mnt/root/.ssh"\n`, file('/root/.ssh/authorized_keys', `${s.authorizedKeys.join('\n')}\n`, '600')]
      : []),
    ...(s.sshHostKey
      ? [
          sh`rm -f "$mnt"/etc/ssh/ssh_host_*\n`,
          file('/etc/ssh/ssh_host_ed25519_key', s.sshHostKey, '600'),
          sh`chroot "$mnt" ssh-keygen -y -f /etc/ssh/ssh_host_ed25519_key > "$mnt/etc/ssh/ssh_host_ed25519_key.pub"\n`,
          sh`mkdir -p "$mnt/etc/ssh/sshd_config.d"\n`,
          file('/etc/ssh/sshd_config.d/sanbook-hostkey.conf', 'HostKey /etc/ssh/ssh_host_ed25519_key\n', '644'),
        ]
      : []),
  ]);
  return sh`set -eu
dev=${s.device}
state=${s.stateDir}
mnt="$state/mnt"
loop=
mkdir -p "$mnt"
cleanup() {
  rc=$?
  set +e
  for m in "$mnt/sys" "$mnt/proc" "$mnt/dev" "$mnt"; do mountpoint -q "$m" && umount -l "$m"; done
  [ -z "$loop" ] || losetup -d "$loop"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
printf '%s\\n' ${s.markerBuilding} > "$state/marker.json"
rm -f "$state/vmlinuz" "$state/initrd.img"
wipefs -a -q "$dev"
# The label is written through the loop device: parted on a device-mapper device (an LV) would add partition
# maps that hold it, and an iSCSI target could not open it afterwards.
loop=$(losetup -f --show -P "$dev")
parted -s -a optimal "$loop" mklabel msdos mkpart primary ext4 1MiB 100% set 1 boot on
part="\${loop}p1"
i=0
while ! test -b "$part"; do i=$((i + 1)); [ $i -le 100 ] || { echo "$part did not appear after losetup -P" >&2; exit 1; }; sleep 0.1; done
mkfs.ext4 -q -F -U ${s.uuid} -L ${s.label} "$part"
mount "$part" "$mnt"
# Read when the packages are installed: open-iscsi's postinst keeps an initiator name it finds, and the
# kernel's initramfs is made with these settings the first time.
mkdir -p "$mnt/etc/iscsi" "$mnt/etc/initramfs-tools/conf.d"
${s.initiatorName !== null ? file('/etc/iscsi/initiatorname.iscsi', `InitiatorName=${s.initiatorName}\n`, '644') : raw('')}${file('/etc/initramfs-tools/conf.d/sanbook', `MODULES=${s.initramfsModules}\nRESUME=none\n`, '644')}mkdir -p "$mnt/etc/initramfs-tools/hooks"
${file('/etc/initramfs-tools/hooks/sanbook', INITRAMFS_HOOK, '755')}${debootstrap(s)}${identity}mount --bind /dev "$mnt/dev"; mount -t proc proc "$mnt/proc"; mount -t sysfs sysfs "$mnt/sys"
chroot "$mnt" systemctl enable systemd-networkd.service
${s.grubArgs !== null ? grub(s.uuid, s.grubArgs) : raw('')}${s.initiatorName !== null ? raw(`chroot "$mnt" lsinitramfs /initrd.img | grep -q 'iscsistart$' || { echo "the initramfs has no iscsistart: is open-iscsi in include?" >&2; exit 1; }\n`) : raw('')}kernel=$(basename "$(readlink -f "$mnt/vmlinuz")"); kernel=\${kernel#vmlinuz-}
cp -L "$mnt/vmlinuz" "$state/vmlinuz.part" && mv "$state/vmlinuz.part" "$state/vmlinuz"
cp -L "$mnt/initrd.img" "$state/initrd.img.part" && mv "$state/initrd.img.part" "$state/initrd.img"
for m in sys proc dev; do umount "$mnt/$m"; done
umount "$mnt"
sync
losetup -d "$loop"; loop=
printf '%s\\n' ${s.markerBuilt} | sed "s/@KERNEL@/$kernel/" > "$state/marker.json.part" && mv "$state/marker.json.part" "$state/marker.json"
`;
}
