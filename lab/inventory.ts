/** inventory/lab.yaml for the running lab: hosts on loopback ports, groups of seed 000, addresses and disks. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DebootstrapTarball } from './netboot.ts';
import { BOOT_SERVER, type VmRuntime, type LabPaths } from './vm.ts';
import { STORAGE_NETWORKS, macOf, storageAddresses } from './topology.ts';

/** 16 characters from the lab's private key (and what the secret is for): CHAP wants 12 to 16. */
function labSecret(keyFile: string, purpose = ''): string {
  return createHash('sha256').update(readFileSync(keyFile)).update(purpose).digest('base64url').replace(/[^A-Za-z0-9]/g, '').slice(0, 16);
}

/** A YAML block scalar, indented under a key at `indent` spaces. */
const block = (text: string, indent: number): string => text.trimEnd().split('\n').map((l) => `${' '.repeat(indent + 2)}${l}`).join('\n');

/**
 * playbooks/iscsi-boot.ts's variables: a diskless VM is a client of sto1 (the lab's boot server: the address its
 * boot script chains to), its boot NIC the first storage network's; sto1 keeps its first six disks for san.ts.
 */
function bootLines(vm: VmRuntime, vms: readonly VmRuntime[], paths: LabPaths, tarball: DebootstrapTarball | undefined): string[] {
  if (vm.spec.diskless) {
    const server = vms.find((v) => storageAddresses(v.spec)[0] === BOOT_SERVER);
    if (!server) return [];
    const key = readFileSync(join(vm.dir, 'ssh_host_ed25519_key'), 'utf8');
    return [
      '          iscsi_boot:',
      `            server: ${server.spec.name}`,
      `            initiator: iqn.2024-12.tp2.b3:${vm.spec.name}`,
      `            target: iqn.2024-12.tp2.b3:boot-${vm.spec.name}`,
      `            portal: ${BOOT_SERVER}`,
      `            chap_user: ${vm.spec.name}`,
      `            chap_secret: !secret ${labSecret(paths.clientKey, `boot ${vm.spec.name}`)}`,
      `            boot_mac: "${macOf(vm.spec, 1)}"`,
      `            boot_address: ${storageAddresses(vm.spec)[0]}/${STORAGE_NETWORKS[0].mask}`,
      '            boot_interface: eth1',
      '            dhcp: [eth0]',
      `            authorized_keys: [${JSON.stringify(readFileSync(`${paths.clientKey}.pub`, 'utf8').trim())}]`,
      '            ssh_host_key: !secret |',
      block(key, 12),
      // The serial console (the lab's console.log); panic: a failed boot reboots and tries again after 60 s.
      '          iscsi_boot_kernel_args: ["console=ttyS0,115200", "panic=60"]',
    ];
  }
  if (tarball && storageAddresses(vm.spec)[0] === BOOT_SERVER && vms.some((v) => v.spec.diskless)) {
    return [
      '          iscsi_boot_server:',
      `            pvs: ${list(vm.dataDiskIds.slice(6))}`,
      `            tftp_address: ${BOOT_SERVER}`,
      '            debootstrap:',
      `              tarball: ${tarball.url}`,
      `              sha256: ${tarball.sha256}`,
    ];
  }
  return [];
}

const list = (items: readonly string[]): string => `[${items.map((i) => JSON.stringify(i)).join(', ')}]`;

export function labInventory(vms: readonly VmRuntime[], paths: LabPaths, tarball?: DebootstrapTarball): string {
  const groups = [...new Set(vms.flatMap((v) => v.spec.groups))];
  const lines = [
    '# Written by `npm run lab -- up` (lab/lab.ts) for the VM lab of this machine; rewritten at every `up`.',
    '# Log in to a VM: npm run lab -- ssh NAME',
    'all:',
    '  vars:',
    '    ansible_user: root',
    `    ansible_ssh_private_key_file: ${JSON.stringify(paths.clientKey)}`,
    `    known_hosts_file: ${JSON.stringify(paths.knownHosts)}`,
    '    host_key_checking: strict',
    '    connect_timeout: 30',
    // playbooks/san.ts: the chunk hosts' CHAP secret, derived from the lab's own SSH key (stable while the lab
    // exists, different on every machine), and a small free-space reserve for the lab's 512 MiB LUNs.
    `    san_chap_secret: !secret ${labSecret(paths.clientKey)}`,
    '    moosefs_leave_space: 32MiB',
    '  children:',
  ];
  for (const group of groups) {
    lines.push(`    ${group}:`, '      hosts:');
    for (const vm of vms.filter((v) => v.spec.groups.includes(group))) {
      lines.push(`        ${vm.spec.name}:`);
      lines.push('          ansible_host: 127.0.0.1');
      lines.push(`          ansible_port: ${vm.sshPort}`);
      lines.push(`          storage_ips: ${list(storageAddresses(vm.spec))}`);
      // By serial only: the kernel's sdX names change order from boot to boot.
      if (vm.dataDiskIds.length > 0) lines.push(`          data_disks: ${list(vm.dataDiskIds)}`);
      // playbooks/failover.ts cuts the second storage network (eth1 is 10.3.1.X, eth2 10.3.2.X).
      if (vm.spec.groups.includes('chunks')) lines.push('          failover_interface: eth2');
      lines.push(...bootLines(vm, vms, paths, tarball));
    }
  }
  return `${lines.join('\n')}\n`;
}
