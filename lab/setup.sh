#!/usr/bin/env bash
# Prepare a fresh Debian machine for this project: the Debian packages it needs, then the npm packages.
# Used by .ci/run and by the README's commands. Safe to run again (installs only what is missing).
# Arguments are more Debian packages to install the same way (bench/setup.sh passes Ansible's).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# openssh-server: the tests and the demo start their own sshd on loopback; sudo: `become` is proven for real;
# coreutils' timeout bounds every command on a host. The VM lab: QEMU (and its iPXE ROMs: diskless VMs boot with them), debootstrap (the image), sfdisk and
# mkfs.ext4 (its disk), socat (guests reach the package repository), iproute2 (the lab's network namespace);
# curl: the repository module's key download step is run on this machine by its tests (file:// URLs).
need=(openssh-server openssh-client sudo coreutils qemu-system-x86 qemu-utils ipxe-qemu debootstrap socat fdisk e2fsprogs iproute2 curl "$@")
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
