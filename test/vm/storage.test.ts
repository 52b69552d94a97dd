/**
 * The storage-side modules on a real storage host (sto1 of the lab): RAID arrays from blank disks, exported
 * as the seed's targets, then the properties that matter to people who run storage: the check run plans
 * exactly what the real run does, a re-run changes nothing, arrays keep their names across a reboot and the
 * targets come back, drift is corrected, and a disk holding data is never taken.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { sh } from '../../lib/command.ts';
import type { RunEvent } from '../../lib/events.ts';
import { loadInventory, type Inventory } from '../../lib/inventory.ts';
import type { Task } from '../../lib/module.ts';
import { play, playbook } from '../../lib/playbook.ts';
import { runPlaybook } from '../../lib/runner.ts';
import { Secret } from '../../lib/secret.ts';
import { labUp, rebootVm, type Lab } from '../../lab/lab.ts';
import { filesystem, mdadm, partition, pkg, targetcli, type PartitionOutput } from '../../modules/index.ts';
import { configfsDumpCommand } from '../../modules/targetcli/dump.ts';
import { parseConfigfs } from '../../modules/targetcli/model.ts';
import { labConnections } from './connections.ts';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HOST = 'sto1';
let lab: Lab;
let inventory: Inventory;
const conns = labConnections(() => lab);

const disk = (n: number): string => `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_${HOST}-d${n}`;
const ARRAYS = [
  { name: 'data-chunk1', disks: [1, 2] },
  { name: 'data-chunk2', disks: [3, 4] },
  { name: 'data-chunk3', disks: [5, 6] },
];
const iqn = (name: string): string => `iqn.2024-12.tp2.b3:${name}`;
const chap = (n: number) => ({ user: `chunk${n}`, password: new Secret(`lab-chap-secret-${n}`) });

// update-initramfs takes minutes on an emulated host: only the last array task runs it (its plan sees any
// mdadm.conf newer than the initramfs, whichever task wrote it).
const storageTasks: Task[] = [
  ...ARRAYS.map((a) => mdadm.task(`RAID1 ${a.name}`, { name: a.name, level: 1, devices: a.disks.map(disk), updateInitramfs: false }) as Task),
  mdadm.task('RAID5 r5', { name: 'r5', level: 5, devices: [7, 8, 9].map(disk), chunkKiB: 64 }) as Task,
  targetcli.task('iSCSI targets', {
    backstores: ARRAYS.map((a) => ({ name: a.name, path: `/dev/md/${a.name}` })),
    targets: ARRAYS.map((a, i) => ({
      iqn: iqn(a.name),
      portals: [{ ip: '10.3.1.1' }, { ip: '10.3.2.1' }],
      luns: [{ backstore: a.name }],
      acls: [{ initiator: iqn(`chunk${i + 1}`), chap: chap(i + 1) }],
    })),
  }) as Task,
];
const storage = playbook({ name: 'sto1 storage', plays: [play({ name: 'arrays and targets', hosts: HOST, tasks: storageTasks })] });

interface Ended {
  task: string;
  status: string;
  changes: string[];
  message?: string;
}

async function run(book = storage, check = false): Promise<{ exitCode: number; ended: Ended[]; changed: number }> {
  const ended: Ended[] = [];
  const reporter = {
    onEvent(e: RunEvent) {
      if (e.type === 'host:end') ended.push({ task: e.task, status: e.status, changes: e.changes.map((c) => c.summary), ...(e.message ? { message: e.message } : {}) });
    },
    done: async () => undefined,
  };
  const r = await runPlaybook(book, { inventory, check, reporters: [reporter] });
  return { exitCode: r.exitCode, ended, changed: r.recap[HOST]?.changed ?? -1 };
}

const conn = () => conns.get(HOST);
const out = async (script: ReturnType<typeof sh>): Promise<string> => (await (await conn()).exec(script)).stdout;

test.before(async (t) => {
  lab = await labUp({ projectRoot, topology: process.env['SANBOOK_LAB_TOPOLOGY'] ?? 'small', log: (l) => t.log(l) });
  inventory = await loadInventory(lab.inventoryFile);
  const tools = playbook({ name: 'tools', plays: [play({ name: 'tools', hosts: HOST, tasks: [pkg.task('storage tools', { name: ['mdadm', 'targetcli-fb', 'parted', 'xfsprogs'], updateCache: true })] })] });
  const r = await runPlaybook(tools, { inventory });
  if (r.exitCode !== 0) throw new Error(`installing the storage tools failed: ${JSON.stringify(r.recap)}`);
  // A lab that ran this suite before: back to blank disks, no arrays, no targets (a fresh VM is already so).
  const disks = Array.from({ length: 10 }, (_, i) => disk(i + 1));
  await out(sh`targetcli clearconfig confirm=True >/dev/null 2>&1; rm -f /etc/rtslib-fb-target/saveconfig.json
for md in /dev/md/*; do [ -e "$md" ] && mdadm --stop "$md" >/dev/null 2>&1; done
for d in ${disks}; do wipefs -a -q "$d"; done; sed -i '/^ARRAY /d' /etc/mdadm/mdadm.conf; :`);
});

test.after.always(async () => {
  await conns.closeAll();
});

test.serial('a disk holding an XFS filesystem is refused for a new array, and its data is intact', async (t) => {
  const d = disk(10);
  await out(sh`mkfs.xfs -q -f -L keep ${d} && mkdir -p /mnt/keep && mount ${d} /mnt/keep && head -c 4M /dev/urandom > /mnt/keep/data && sync`);
  const before = await out(sh`sha256sum /mnt/keep/data && umount /mnt/keep`);
  const book = playbook({ name: 'refused', plays: [play({ name: 'refused', hosts: HOST, tasks: [mdadm.task('array over data', { name: 'taken', level: 1, devices: [d, disk(9)] }) as Task] })] });
  const r = await run(book);
  t.is(r.exitCode, 2);
  const failed = r.ended.find((e) => e.status === 'failed');
  t.regex(failed?.message ?? '', /sto1-d10/);
  t.regex(failed?.message ?? '', /xfs/);
  t.regex(failed?.message ?? '', /force/);
  t.is((await out(sh`mdadm --examine ${d} >/dev/null 2>&1 && echo superblock; blkid -p -o value -s TYPE ${d}`)).trim(), 'xfs');
  const after = await out(sh`mount ${d} /mnt/keep && sha256sum /mnt/keep/data; umount /mnt/keep`);
  t.is(after, before.split('\n')[0] + '\n');
});

test.serial('check mode plans exactly what the real run then does; a re-run changes nothing', async (t) => {
  const check = await run(storage, true);
  t.is(check.exitCode, 0, JSON.stringify(check.ended));
  t.is((await out(sh`cat /proc/mdstat`)).includes('active'), false, 'check mode created an array');
  const real = await run(storage);
  t.is(real.exitCode, 0, JSON.stringify(real.ended));
  const planned = check.ended.map((e) => [e.task, e.changes]);
  const done = real.ended.map((e) => [e.task, e.changes]);
  t.deepEqual(planned, done);
  t.true(real.changed >= 5);
  const again = await run(storage);
  t.is(again.exitCode, 0);
  t.deepEqual(again.ended.filter((e) => e.changes.length > 0), [], 'the second run changed something');
  const lio = parseConfigfs(await out(configfsDumpCommand()));
  t.deepEqual([...lio.targets.keys()].sort(), ARRAYS.map((a) => iqn(a.name)));
  t.is(lio.targets.get(iqn('data-chunk1'))?.get(1)?.acls.get(iqn('chunk1'))?.userid, 'chunk1');
});

test.serial('a CHAP secret changed by hand is corrected by the next run', async (t) => {
  const auth = `/sys/kernel/config/target/iscsi/${iqn('data-chunk2')}/tpgt_1/acls/${iqn('chunk2')}/auth/password`;
  await out(sh`echo changed-by-hand-1 > ${auth}`);
  const r = await run();
  t.is(r.exitCode, 0);
  t.deepEqual(r.ended.filter((e) => e.changes.length > 0).map((e) => e.changes), [[`${iqn('data-chunk2')}: ${iqn('chunk2')}: set CHAP (password changed)`]]);
  t.is((await out(sh`cat ${auth}`)).trim(), 'lab-chap-secret-2');
});

test.serial('after a reboot the arrays keep their names and the targets come back', async (t) => {
  await conns.drop(HOST);
  const ms = await rebootVm(lab, HOST);
  t.log(`${HOST} rebooted in ${Math.round(ms / 1000)} s`);
  const names = (await out(sh`ls /dev/md/`)).split('\n').filter(Boolean).sort();
  t.deepEqual(names, [...ARRAYS.map((a) => a.name), 'r5'].sort());
  for (const a of ARRAYS) t.regex(await out(sh`mdadm --detail --export ${`/dev/md/${a.name}`}`), new RegExp(`MD_DEVNAME=${a.name}\\n`));
  const lio = parseConfigfs(await out(configfsDumpCommand()));
  t.deepEqual([...lio.targets.keys()].sort(), ARRAYS.map((a) => iqn(a.name)));
  for (const a of ARRAYS) t.is(lio.backstores.get(`block/${a.name}`)?.dev, `/dev/md/${a.name}`);
  const again = await run();
  t.is(again.exitCode, 0);
  t.deepEqual(again.ended.filter((e) => e.changes.length > 0), [], 'a run after the reboot changed something');
});

test.serial('a GPT partition and XFS on an array converge, and ext4 over it is refused with the data intact', async (t) => {
  const gpt = partition.task('GPT on r5', { device: '/dev/md/r5', partitions: [{ number: 1, name: 'r5data', start: '1MiB', end: '100%' }] });
  const node = (ctx: { result<R>(task: Task<unknown, R>): R | undefined }): string => {
    const path = ctx.result<PartitionOutput>(gpt as Task<unknown, PartitionOutput>)?.partitions[0]?.path;
    if (!path) throw new Error('the partition task gave no partition path');
    return path;
  };
  const fs = (fstype: 'xfs' | 'ext4') => filesystem.task(`${fstype} on r5p1`, (ctx) => ({ device: node(ctx), fstype, label: 'r5data' }));
  const book = (fstype: 'xfs' | 'ext4') => playbook({ name: 'fs', plays: [play({ name: 'fs', hosts: HOST, tasks: [gpt as Task, fs(fstype) as Task] })] });
  const first = await run(book('xfs'));
  t.is(first.exitCode, 0, JSON.stringify(first.ended));
  t.deepEqual(first.ended.map((e) => e.changes.length > 0), [true, true]);
  const dev = (await out(sh`readlink -f /dev/disk/by-label/r5data`)).trim();
  t.regex(dev, /^\/dev\/md\d+p1$/);
  await out(sh`mkdir -p /mnt/r5 && mount ${dev} /mnt/r5 && head -c 2M /dev/urandom > /mnt/r5/data && sha256sum /mnt/r5/data > /root/r5.sum && umount /mnt/r5`);
  const again = await run(book('xfs'));
  t.deepEqual(again.ended.filter((e) => e.changes.length > 0), [], 'the second run changed something');
  const refused = await run(book('ext4'));
  t.is(refused.exitCode, 2);
  t.regex(refused.ended.find((e) => e.status === 'failed')?.message ?? '', /xfs filesystem labelled r5data/);
  t.is((await out(sh`mount ${dev} /mnt/r5 && sha256sum -c /root/r5.sum; umount /mnt/r5`)).trim(), '/mnt/r5/data: OK');
});
