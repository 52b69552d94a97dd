/**
 * `npm run demo`: start three OpenSSH servers on loopback, run playbooks/demo.ts against them (the changes
 * are made), run it again (nothing changes), then stop the servers. Extra arguments go to both runs
 * (e.g. `npm run demo -- --diff`).
 */
import { main } from '../lib/cli.ts';
import { demo } from '../playbooks/demo.ts';
import { startLoopbackHosts } from './loopback/hosts.ts';

const hosts = await startLoopbackHosts(['node1', 'node2', 'node3']);
let code = 0;
try {
  process.stdout.write(`three OpenSSH servers on 127.0.0.1 (ports ${hosts.servers.map((s) => s.port).join(', ')}); inventory ${hosts.inventoryFile}\n\n`);
  const args = ['-i', hosts.inventoryFile, ...process.argv.slice(2)];
  code = await main(demo, args, 'playbooks/demo.ts');
  const check = args.includes('--check') || args.includes('-C');
  if (code === 0 && !check) {
    process.stdout.write('\nsecond run: nothing should change\n\n');
    code = await main(demo, args, 'playbooks/demo.ts');
  }
} finally {
  await hosts.stop();
}
process.exitCode = code;
