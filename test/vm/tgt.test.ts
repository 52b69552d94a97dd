/**
 * tgt on a lab VM (master serves, chunk1 is the initiator through libiscsi's userspace tools): a target with
 * CHAP restricted to one initiator name is reachable by that initiator with the right secret, and refused with a
 * wrong secret or another initiator name; ALL is never bound; a re-run changes nothing; a new secret replaces
 * the old one.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { sh } from '../../lib/command.ts';
import { loadInventory, type Inventory } from '../../lib/inventory.ts';
import type { Task } from '../../lib/module.ts';
import { play, playbook } from '../../lib/playbook.ts';
import { runPlaybook } from '../../lib/runner.ts';
import { Secret } from '../../lib/secret.ts';
import { labUp, type Lab } from '../../lab/lab.ts';
import { pkg, tgt } from '../../modules/index.ts';
import { labConnections } from './connections.ts';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVER = 'master';
const CLIENT = 'chunk1';
const IQN = 'iqn.2024-12.tp2.b3:tgt-lab';
const ALLOWED = 'iqn.2024-12.tp2.b3:chunk1';
const OTHER = 'iqn.2024-12.tp2.b3:intruder';
const STORE = '/var/lib/tgt-lab.img';
let lab: Lab;
let inventory: Inventory;
const conns = labConnections(() => lab);
const conn = (name: string) => conns.get(name);

const target = (password: string): Task =>
  tgt.task('tgt target', {
    name: 'lab',
    targets: [{ iqn: IQN, backingStores: [STORE], initiatorNames: [ALLOWED], incomingUsers: [{ user: 'labuser', password: new Secret(password) }] }],
  }) as Task;

async function apply(password: string): Promise<{ exitCode: number; changed: number }> {
  const book = playbook({ name: 'tgt', plays: [play({ name: 'tgt', hosts: SERVER, tasks: [target(password)] })] });
  const r = await runPlaybook(book, { inventory });
  return { exitCode: r.exitCode, changed: r.recap[SERVER]?.changed ?? -1 };
}

/** An inquiry of LUN 1 through libiscsi as `initiator` with `password`: exit 0 only if the login succeeded. */
async function inquiry(initiator: string, password: string): Promise<{ exitCode: number; out: string }> {
  const c = await conn(CLIENT);
  const url = `iscsi://labuser%${password}@10.3.1.100/${IQN}/1`;
  const r = await c.exec(sh`timeout 60 iscsi-inq -i ${initiator} ${url}`);
  return { exitCode: r.exitCode, out: `${r.stdout}${r.stderr}` };
}

test.before(async (t) => {
  lab = await labUp({ projectRoot, topology: process.env['SANBOOK_LAB_TOPOLOGY'] ?? 'small', log: (l) => t.log(l) });
  inventory = await loadInventory(lab.inventoryFile);
  const tools = playbook({
    name: 'tools',
    plays: [
      play({ name: 'server', hosts: SERVER, tasks: [pkg.task('tgt', { name: 'tgt', updateCache: true })] }),
      play({ name: 'client', hosts: CLIENT, tasks: [pkg.task('libiscsi tools', { name: 'libiscsi-bin', updateCache: true })] }),
    ],
  });
  const r = await runPlaybook(tools, { inventory });
  if (r.exitCode !== 0) throw new Error(`installing tgt and libiscsi-bin failed: ${JSON.stringify(r.recap)}`);
  // The backing file, and port 3260 open if this VM runs firewalld (the firewalld module is not what is tested).
  const server = await conn(SERVER);
  await server.exec(sh`truncate -s 64M ${STORE}; if systemctl -q is-active firewalld; then firewall-cmd -q --add-port=3260/tcp; fi`);
});

test.after.always(async () => {
  await conns.closeAll();
});

test.serial('a CHAP target for one initiator name: the right one gets in, a wrong secret or name does not', async (t) => {
  const first = await apply('lab-tgt-secret-1');
  t.is(first.exitCode, 0);
  t.true(first.changed > 0);
  const acl = (await (await conn(SERVER)).exec(sh`tgtadm --lld iscsi --op show --mode target | sed -n '/ACL information:/,$p'`)).stdout;
  t.notRegex(acl, /^\s+ALL$/m, 'ALL is bound: any initiator would get in');
  t.regex(acl, new RegExp(ALLOWED.replace(/\./g, '\\.')));
  // The conf file holds the CHAP secret: root's, no access for anyone else.
  t.is((await conns.out(SERVER, sh`stat -c '%a %U' /etc/tgt/conf.d/lab.conf`)).trim(), '600 root');
  const ok = await inquiry(ALLOWED, 'lab-tgt-secret-1');
  t.is(ok.exitCode, 0, ok.out);
  t.regex(ok.out, /Peripheral Device Type:DIRECT_ACCESS/);
  const wrongSecret = await inquiry(ALLOWED, 'not-the-secret-9');
  t.not(wrongSecret.exitCode, 0, wrongSecret.out);
  t.regex(wrongSecret.out, /Authentication failure/);
  const wrongName = await inquiry(OTHER, 'lab-tgt-secret-1');
  t.not(wrongName.exitCode, 0, wrongName.out);
  t.regex(wrongName.out, /Target not found|Authorization failure/, 'tgt does not even show the target to another initiator');
  const again = await apply('lab-tgt-secret-1');
  t.deepEqual(again, { exitCode: 0, changed: 0 });
});

test.serial('a new CHAP secret replaces the old one', async (t) => {
  const r = await apply('lab-tgt-secret-2');
  t.is(r.exitCode, 0);
  t.true(r.changed > 0);
  t.is((await inquiry(ALLOWED, 'lab-tgt-secret-2')).exitCode, 0);
  t.not((await inquiry(ALLOWED, 'lab-tgt-secret-1')).exitCode, 0);
  t.deepEqual(await apply('lab-tgt-secret-2'), { exitCode: 0, changed: 0 });
});
