/**
 * The destructive changes of issue 9 on real hosts, each with a checksum of the data it would destroy: an array
 * over a disk holding a filesystem, mkfs over a filesystem, a partition table over a filesystem, and a target
 * removed while an initiator is logged in. Each is refused without force (exit 2, a message naming the device or
 * the initiator and what is there) with the data's checksum unchanged; with force it is done and the run reports
 * it as destructive. Runs on the full lab with the network san.ts built (`npm run test:lab:faults`; built
 * first if missing): sto1's spare disks d9 and d10 (xfsprogs and parted installed for the test), sto2's LIO and
 * chunk1's initiator; the network itself is left as it was.
 * (The fifth, MooseFS chunkserver ids of a re-created master, would wipe the lab's cluster: it is proven on
 * recorded files in test/modules/moosefs.test.ts.)
 */
import test, { type ExecutionContext } from 'ava';
import { sh, type Command } from '../../lib/command.ts';
import type { Inventory } from '../../lib/inventory.ts';
import type { Task } from '../../lib/module.ts';
import { play, playbook } from '../../lib/playbook.ts';
import { Secret } from '../../lib/secret.ts';
import type { Lab } from '../../lab/lab.ts';
import { sanLab } from './san-built.ts';
import { filesystem, iscsiadm, mdadm, partition, pkg, targetcli } from '../../modules/index.ts';
import { failedTasks, labConnections, runBook, type Outcome } from './connections.ts';

let lab: Lab;
let inventory: Inventory;
const conns = labConnections(() => lab);
const out = (host: string, script: Command, timeoutMs = 300_000): Promise<string> => conns.out(host, script, timeoutMs);

const disk = (n: number): string => `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d${n}`;
const D9 = disk(9);
const D10 = disk(10);

/** One task on one host, with or without force. */
const runOne = (host: string, task: (force: boolean) => Task, force: boolean): Promise<Outcome> =>
  runBook(playbook({ name: 'safety', plays: [play({ name: host, hosts: host, tasks: [task(force)] })] }), inventory);

/** d9 blank, then XFS labelled keep with 4 MiB of random data; its checksum. */
async function xfsWithData(): Promise<string> {
  return (
    await out('sto1', sh`for md in /dev/md/safety*; do [ -e "$md" ] && mdadm --stop "$md" >/dev/null; done
for d in ${D9} ${D10}; do mdadm --zero-superblock "$d" 2>/dev/null; wipefs -a -q "$d"; done
mkfs.xfs -q -f -L keep ${D9} && mkdir -p /mnt/keep && mount ${D9} /mnt/keep && head -c 4M /dev/urandom > /mnt/keep/data
sha256sum /mnt/keep/data | cut -d' ' -f1; umount /mnt/keep`)
  ).trim();
}
/** The checksum of the data on d9 now, and what blkid says d9 is. */
const d9Now = (): Promise<string> =>
  out('sto1', sh`echo "$(blkid -p -o value -s TYPE ${D9} 2>/dev/null)"; mount -o ro ${D9} /mnt/keep 2>/dev/null && { sha256sum /mnt/keep/data | cut -d' ' -f1; umount /mnt/keep; }; :`);

async function refusedThenForced(t: ExecutionContext, host: string, task: (force: boolean) => Task, names: RegExp[]): Promise<Outcome> {
  const refused = await runOne(host, task, false);
  t.is(refused.exitCode, 2, failedTasks(refused.ended));
  const message = refused.ended.find((e) => e.status === 'failed')?.message ?? '';
  t.log(`refused: ${message}`);
  t.regex(message, /^refused destructive change \(set force: true on the task to allow it\)/);
  for (const n of names) t.regex(message, n);
  t.deepEqual(refused.destructive, []);
  return refused;
}

async function forced(t: ExecutionContext, host: string, task: (force: boolean) => Task, names: RegExp[]): Promise<void> {
  const done = await runOne(host, task, true);
  t.is(done.exitCode, 0, failedTasks(done.ended));
  t.log(`forced: ${done.destructive.join(' | ')}`);
  t.is(done.destructive.length, 1, 'the run did not report the destructive change it made');
  for (const n of names) t.regex(done.destructive[0] ?? '', n);
}

test.before(async (t) => {
  ({ lab, inventory } = await sanLab((l) => t.log(l)));
  // san.ts puts no xfsprogs or parted on the storage hosts; the tests make filesystems and tables there.
  const tools = await runBook(playbook({ name: 'tools', plays: [play({ name: 'sto1', hosts: 'sto1', tasks: [pkg.task('test tools', { name: ['xfsprogs', 'parted'] }) as Task] })] }), inventory);
  if (tools.exitCode !== 0) throw new Error(`installing xfsprogs and parted on sto1 failed: ${failedTasks(tools.ended)}`);
});

test.after.always(async () => {
  await out('sto1', sh`for md in /dev/md/safety*; do [ -e "$md" ] && mdadm --stop "$md" >/dev/null; done
for d in ${D9} ${D10}; do mdadm --zero-superblock "$d" 2>/dev/null; wipefs -a -q "$d"; done; :`).catch(() => undefined);
  await conns.closeAll();
});

test.serial('an array over a disk holding XFS and data: refused, the data intact; with force, created and reported', async (t) => {
  const sum = await xfsWithData();
  const array = (force: boolean): Task => mdadm.task('RAID 1 safety', { name: 'safety', level: 1, devices: [D9, D10], updateInitramfs: false }, { force }) as Task;
  await refusedThenForced(t, 'sto1', array, [/sto1-d9/, /xfs/]);
  t.is(await d9Now(), `xfs\n${sum}\n`);
  t.is((await out('sto1', sh`ls /dev/md/ | grep -c '^safety' || :`)).trim(), '0', 'an array was made');
  await forced(t, 'sto1', array, [/sto1-d9/, /xfs/]);
  t.regex(await out('sto1', sh`mdadm --detail /dev/md/safety`), /Raid Level : raid1/);
  await out('sto1', sh`mdadm --stop /dev/md/safety >/dev/null; sed -i '/^ARRAY .*safety/d' /etc/mdadm/mdadm.conf`);
});

test.serial('ext4 over XFS holding data: refused, the data intact; with force, made and reported', async (t) => {
  const sum = await xfsWithData();
  const mkfs = (force: boolean): Task => filesystem.task('ext4 on d9', { device: D9, fstype: 'ext4', label: 'other' }, { force }) as Task;
  await refusedThenForced(t, 'sto1', mkfs, [/sto1-d9/, /xfs/, /keep/]);
  t.is(await d9Now(), `xfs\n${sum}\n`);
  await forced(t, 'sto1', mkfs, [/xfs/]);
  t.is((await d9Now()).split('\n')[0], 'ext4');
});

test.serial('a partition table over XFS holding data: refused, the data intact; with force, written and reported', async (t) => {
  const sum = await xfsWithData();
  const gpt = (force: boolean): Task => partition.task('GPT on d9', { device: D9, partitions: [{ number: 1, name: 'one', start: '1MiB', end: '100%' }] }, { force }) as Task;
  await refusedThenForced(t, 'sto1', gpt, [/sto1-d9/, /xfs/]);
  t.is(await d9Now(), `xfs\n${sum}\n`);
  await forced(t, 'sto1', gpt, [/xfs/]);
  t.regex(await out('sto1', sh`blkid -p -o value -s PTTYPE ${D9}`), /^gpt$/m);
});

test.serial('a target removed while chunk1 is logged in: refused naming the initiator, the session and the data intact; with force, removed and reported', async (t) => {
  const iqn = 'iqn.2024-12.tp2.b3:safety';
  const initiator = 'iqn.2024-12.tp2.b3:chunk1'; // chunk1's name, as san.ts sets it
  const image = '/var/lib/sanbook-safety.img';
  const secret = new Secret('safety-secret-12');
  const present = targetcli.task('the safety target', {
    backstores: [{ name: 'safety', type: 'fileio', path: image, size: '32M' }],
    targets: [{ iqn, portals: [{ ip: '10.3.1.2' }], luns: [{ backstore: 'safety' }], acls: [{ initiator, chap: { user: 'chunk1', password: secret } }] }],
  }) as Task;
  const made = await runOne('sto2', () => present, false);
  t.is(made.exitCode, 0, failedTasks(made.ended));
  const login = (state: 'loggedin' | 'absent'): Task =>
    iscsiadm.task('the safety target', { targets: [state === 'loggedin' ? { iqn, portals: ['10.3.1.2:3260'], chap: { user: 'chunk1', password: secret } } : { iqn, state }] }, { force: true }) as Task;
  const logged = await runOne('chunk1', () => login('loggedin'), false);
  t.is(logged.exitCode, 0, failedTasks(logged.ended));
  // Data written by the initiator through the session, and its checksum as the target's file holds it.
  const dev = (await out('chunk1', sh`for i in $(seq 30); do d=$(ls /dev/disk/by-path/ | grep -m1 ${`${iqn}-lun-0$`}) && [ -n "$d" ] && break; sleep 1; done; readlink -f /dev/disk/by-path/$d`)).trim();
  t.regex(dev, /^\/dev\/sd[a-z]+$/);
  const written = (await out('chunk1', sh`head -c 8M /dev/urandom > /root/safety.data && dd if=/root/safety.data of=${dev} bs=1M oflag=direct status=none && sha256sum /root/safety.data | cut -d' ' -f1`)).trim();
  const onTarget = async (): Promise<string> => (await out('sto2', sh`head -c 8M ${image} | sha256sum | cut -d' ' -f1`)).trim();
  t.is(await onTarget(), written);

  const removal = (force: boolean): Task => targetcli.task('remove the safety target', { state: 'absent', targets: [{ iqn }], backstores: [{ name: 'safety', type: 'fileio', path: image }] }, { force }) as Task;
  await refusedThenForced(t, 'sto2', removal, [new RegExp(iqn.replace(/\./g, '\\.')), /chunk1/, /logged in/]);
  t.is(await onTarget(), written);
  t.regex(await out('chunk1', sh`iscsiadm -m session`), new RegExp(`10\\.3\\.1\\.2:3260,1 ${iqn.replace(/\./g, '\\.')}`));
  t.is((await out('chunk1', sh`dd if=${dev} bs=1M count=8 iflag=direct status=none | sha256sum | cut -d' ' -f1`)).trim(), written, 'chunk1 reads back what it wrote');
  await forced(t, 'sto2', removal, [/chunk1/]);
  t.false((await out('sto2', sh`ls /sys/kernel/config/target/iscsi/`)).includes(iqn));
  const gone = await runOne('chunk1', () => login('absent'), true);
  t.is(gone.exitCode, 0, failedTasks(gone.ended));
  await out('sto2', sh`rm -f ${image}`);
});
