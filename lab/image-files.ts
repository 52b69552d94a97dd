/**
 * What the lab's base image carries besides its packages: the guest files (fstab, GRUB and sshd settings,
 * initramfs and apt configuration), the fw_cfg identity service and script, and the one-shot that installs
 * GRUB during the build boot. Their content is part of the image recipe's hash.
 */

export const ROOT_LABEL = 'sanbook-root';
export const ROOT_DISK_SERIAL = 'sanbook-root';
export const IDENTITY_PATH = '/usr/local/sbin/sanbook-identity';
export const GRUB_SETUP_PATH = '/usr/local/sbin/sanbook-grub-setup';
export const GRUB_SETUP_OK = 'SANBOOK-GRUB-SETUP: OK';

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

export const GUEST_FILES: readonly GuestFile[] = [
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
