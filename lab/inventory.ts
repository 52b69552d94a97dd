/** inventory/lab.yaml for the running lab: hosts on loopback ports, groups of seed 000, addresses and disks. */
import type { VmRuntime, LabPaths } from './vm.ts';
import { storageAddresses } from './topology.ts';

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
      if (vm.dataDiskIds.length > 0) lines.push(`          data_disk_ids: ${list(vm.dataDiskIds)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
