/**
 * playbooks/san.ts without any host: built from inventory/tp2.yaml (seed 000's own addresses, parsed and
 * type-checked here, never contacted) and from broken inventories, which must be refused before anything runs
 * with a message naming the host and the field.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HostContexts } from '../../lib/context.ts';
import { loadInventory, limitHosts, type Inventory } from '../../lib/inventory.ts';
import type { Playbook } from '../../lib/playbook.ts';
import { preflight } from '../../lib/preflight.ts';
import { inventoryWith } from '../helpers/inventory-file.ts';
import { exportsOf, san } from '../../playbooks/san.ts';

const run = promisify(execFile);

function check(book: Playbook, inv: Inventory): void {
  preflight(book, inv, book.plays.map((p) => limitHosts(inv, inv.select(p.hosts), undefined)), new HostContexts(inv));
}

test('tp2.yaml: the seed network, typed; every export computed from it', async (t) => {
  const inv = await loadInventory('inventory/tp2.yaml');
  const book = san.build(inv);
  t.notThrows(() => check(book, inv));
  t.deepEqual(book.plays.map((p) => p.hosts), ['storage', 'chunks', 'master', 'chunks', 'master', 'chunks:master']);
  // One RAID 1 array per chunk host on each storage host, before the targets.
  t.deepEqual(book.plays[0]?.tasks.map((x) => x.module.name), ['package', 'firewalld', 'mdadm', 'mdadm', 'mdadm', 'targetcli']);
  const all = exportsOf(inv);
  t.is(all.length, 6);
  const chunk1 = all.filter((e) => e.chunkHost === 'chunk1');
  t.deepEqual(chunk1.map((e) => [e.storageHost, e.target, e.alias, e.mountPoint, e.portals.join(' '), e.devices.join(' ')]), [
    ['sto1', 'iqn.2024-12.tp2.b3:data-chunk1', 'data_chunk1', '/mnt/data_chunk1', '10.3.1.1:3260 10.3.2.1:3260', '/dev/sdb /dev/sdc'],
    ['sto2', 'iqn.2024-12.tp2.b3:data-chunk1', 'data_chunk2', '/mnt/data_chunk2', '10.3.1.2:3260 10.3.2.2:3260', '/dev/sdb /dev/sdc'],
  ]);
  t.deepEqual(all.filter((e) => e.chunkHost === 'chunk3').map((e) => e.devices.join(' ')), ['/dev/sdf /dev/sdg', '/dev/sdf /dev/sdg']);
  t.is(new Set(all.map((e) => e.wwid)).size, 6, 'every LUN has its own WWID');
  for (const e of all) t.regex(e.wwid, /^36001405[0-9a-f]{25}$/);
});

const GOOD = `all:
  vars: { san_chap_secret: !secret abcdefghijkl12 }
  children:
    storage: { hosts: { s1: { storage_ips: [10.9.1.1], data_disks: [/dev/sdb, /dev/sdc] } } }
    chunks: { hosts: { c1: { storage_ips: [10.9.1.101] } } }
    master: { hosts: { m: { storage_ips: [10.9.1.100] } } }
`;

test('bad inventories are refused before anything runs, naming host and field', async (t) => {
  const good = await inventoryWith(t, GOOD);
  t.notThrows(() => check(san.build(good), good));
  const fewDisks = await inventoryWith(t, GOOD.replace('data_disks: [/dev/sdb, /dev/sdc]', 'data_disks: [/dev/sdb]'));
  t.throws(() => san.build(fewDisks), { message: /^host s1, field data_disks: lists 1 disks; the 1 chunk hosts need 2/ });
  const badIp = await inventoryWith(t, GOOD.replace('10.9.1.101', '10.9.1.300'));
  t.throws(() => check(san.build(badIp), badIp), { message: /host c1.*storage_ips/ });
  const shortSecret = await inventoryWith(t, GOOD.replace('abcdefghijkl12', 'short'));
  const e = t.throws(() => san.build(shortSecret), { message: /san_chap_secret/ });
  t.false(e?.message.includes('short'), 'the secret is in the message');
  const noMaster = await inventoryWith(t, GOOD.replace("    master: { hosts: { m: { storage_ips: [10.9.1.100] } } }\n", ''));
  t.throws(() => san.build(noMaster), { message: /no host or group named 'master'/ });
});

test('the command line: --help names the playbook; a bad inventory exits 1 with one line and no stack', async (t) => {
  const help = await run('npx', ['tsx', 'playbooks/san.ts', '--help']);
  t.regex(help.stdout, /^san: seed 000's storage network/);
  t.regex(help.stdout, /default inventory\/lab\.yaml/);
  const inv = await inventoryWith(t, GOOD.replace('data_disks: [/dev/sdb, /dev/sdc]', 'data_disks: [/dev/sdb]'));
  const bad = await run('npx', ['tsx', 'playbooks/san.ts', '-i', inv.source, '--check']).catch((e: { code: number; stderr: string }) => e);
  t.is((bad as { code: number }).code, 1);
  t.regex((bad as { stderr: string }).stderr, /^error: \S*inv\.yaml, host s1, field data_disks: lists 1 disks/m);
  t.false((bad as { stderr: string }).stderr.includes('    at '), 'a stack trace');
});
