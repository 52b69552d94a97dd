/** inventory/lab.yaml for the running lab: hosts on loopback ports, groups of seed 000, addresses and disks. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { VmRuntime, LabPaths } from './vm.ts';
import { storageAddresses } from './topology.ts';

/** 16 characters from the lab's private key: CHAP wants 12 to 16. */
function labSecret(keyFile: string): string {
  return createHash('sha256').update(readFileSync(keyFile)).digest('base64url').replace(/[^A-Za-z0-9]/g, '').slice(0, 16);
}

const list = (items: readonly string[]): string => `[${items.map((i) => JSON.stringify(i)).join(', ')}]`;

export function labInventory(vms: readonly VmRuntime[], paths: LabPaths): string {
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
    }
  }
  return `${lines.join('\n')}\n`;
}
