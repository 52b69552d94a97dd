/**
 * The benchmark's hosts: N OpenSSH servers on 127.0.0.1 (lab/loopback), and an inventory for each side. Each
 * side works under its own directory of a host's root (ROOT/sanbook, ROOT/ansible), so the two never see each
 * other's files, and each side's state is wiped before its first (converge) run.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startLoopbackHosts, type LoopbackHosts } from '../lab/loopback/hosts.ts';

export type Side = 'sanbook' | 'ansible';

export interface BenchHosts {
  readonly names: readonly string[];
  readonly loopback: LoopbackHosts;
  readonly user: string;
  readonly keyFile: string;
  readonly knownHostsFile: string;
  /** Inventory of each side (YAML; the same Ansible layout, with `root` pointing at the side's directory). */
  readonly inventory: Record<Side, string>;
  /** Where a side keeps a host's files. */
  rootOf(side: Side, host: string): string;
  /** Remove a side's files on every host (before a converge run). */
  reset(side: Side): Promise<void>;
  stop(): Promise<void>;
}

export function hostNames(n: number): string[] {
  const width = String(n).length;
  return Array.from({ length: n }, (_, i) => `h${String(i + 1).padStart(width, '0')}`);
}

function inventoryText(hosts: LoopbackHosts, side: Side, knownHostsFile: string): string {
  const first = hosts.servers[0];
  if (first === undefined) throw new Error('no host');
  const lines = hosts.names.map((n, i) => {
    const root = join(hosts.rootOf(n), side);
    return `    ${n}: { ansible_host: 127.0.0.1, ansible_port: ${hosts.servers[i]?.port}, root: ${JSON.stringify(root)} }`;
  });
  const vars =
    side === 'sanbook'
      ? [`    known_hosts_file: ${JSON.stringify(knownHostsFile)}`, '    host_key_checking: strict']
      : [`    ansible_ssh_common_args: ${JSON.stringify(`-o UserKnownHostsFile=${knownHostsFile}`)}`];
  return [
    `# Written by bench/hosts.ts for the ${side} side: OpenSSH servers on loopback, one per host.`,
    'all:',
    '  vars:',
    `    ansible_user: ${first.user}`,
    `    ansible_ssh_private_key_file: ${JSON.stringify(first.clientKeyFile)}`,
    ...vars,
    '  hosts:',
    ...lines,
    '',
  ].join('\n');
}

export async function startBenchHosts(n: number): Promise<BenchHosts> {
  const names = hostNames(n);
  const loopback = await startLoopbackHosts(names, 'nodes');
  try {
    const first = loopback.servers[0];
    if (first === undefined) throw new Error('no host started');
    const knownHostsFile = join(loopback.dir, 'known_hosts');
    const inventory: Record<Side, string> = {
      sanbook: join(loopback.dir, 'sanbook.yaml'),
      ansible: join(loopback.dir, 'ansible.yaml'),
    };
    await writeFile(inventory.sanbook, inventoryText(loopback, 'sanbook', knownHostsFile));
    await writeFile(inventory.ansible, inventoryText(loopback, 'ansible', knownHostsFile));
    const rootOf = (side: Side, host: string): string => join(loopback.rootOf(host), side);
    return {
      names,
      loopback,
      user: first.user,
      keyFile: first.clientKeyFile,
      knownHostsFile,
      inventory,
      rootOf,
      reset: async (side) => {
        await Promise.all(names.map((h) => rm(rootOf(side, h), { recursive: true, force: true })));
      },
      stop: () => loopback.stop(),
    };
  } catch (e) {
    await loopback.stop();
    throw e;
  }
}
