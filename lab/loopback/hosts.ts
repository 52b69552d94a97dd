/**
 * Loopback hosts: N real OpenSSH servers on 127.0.0.1 sharing one client key and one known_hosts file, with
 * an inventory for them. Each host gets a `root` directory of its own, since they all share this machine's
 * file system. Used by the demo (`npm run demo`) and the end-to-end tests.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshdHosts, type TestSshd } from './sshd.ts';

export interface LoopbackHosts {
  readonly names: readonly string[];
  readonly servers: readonly TestSshd[];
  /** Holds the inventory, known_hosts and every host's root. */
  readonly dir: string;
  readonly inventoryFile: string;
  rootOf(name: string): string;
  stop(): Promise<void>;
}

export async function startLoopbackHosts(names: readonly string[], group = 'nodes'): Promise<LoopbackHosts> {
  const dir = await mkdtemp(join(tmpdir(), 'sanbook-loopback-'));
  const servers = await startSshdHosts(names.length);
  const first = servers[0] as TestSshd;
  // One client key for all: the first server's, authorized on every server.
  const { readFile } = await import('node:fs/promises');
  const publicKey = (await readFile(`${first.clientKeyFile}.pub`, 'utf8')).trim();
  await Promise.all(servers.slice(1).map((s) => s.authorizeKey(publicKey)));
  const knownHostsFile = join(dir, 'known_hosts');
  await writeFile(knownHostsFile, servers.map((s) => `${s.hostKeyLine}\n`).join(''), { mode: 0o600 });
  const rootOf = (name: string): string => join(dir, 'hosts', name);
  const hostLines = names.map(
    (n, i) => `        ${n}: { ansible_host: 127.0.0.1, ansible_port: ${servers[i]?.port}, root: ${JSON.stringify(rootOf(n))} }`,
  );
  const inventory = [
    '# Written by lab/loopback/hosts.ts: OpenSSH servers on loopback, one per host.',
    'all:',
    '  vars:',
    `    ansible_user: ${first.user}`,
    `    ansible_ssh_private_key_file: ${JSON.stringify(first.clientKeyFile)}`,
    `    known_hosts_file: ${JSON.stringify(knownHostsFile)}`,
    '    host_key_checking: strict',
    '  children:',
    `    ${group}:`,
    '      hosts:',
    ...hostLines,
    '',
  ].join('\n');
  const inventoryFile = join(dir, 'inventory.yaml');
  await writeFile(inventoryFile, inventory);
  const { mkdir } = await import('node:fs/promises');
  for (const n of names) await mkdir(rootOf(n), { recursive: true });
  return {
    names,
    servers,
    dir,
    inventoryFile,
    rootOf,
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
