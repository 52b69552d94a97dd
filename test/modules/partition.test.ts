/**
 * partition: positions, node names, the gather script (run on /bin/sh with the storage tools replaced by
 * replays of recorded outputs and a fake sysfs) and plans on the facts it gathers.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseParted } from '../../modules/blockdev.ts';
import { LSBLK_COLUMNS, gatherCommand, parsePartitionGather, partition } from '../../modules/partition.ts';
import {
  MiB, partitionNode, partitionOutput, planPartition, resolvePosition, samePlace, wantedGeometry, type PartitionFacts, type PartitionSpec,
} from '../../modules/partition-plan.ts';
import { fakeSysfs, fixture, runStubbed, type Reply } from '../helpers/blockdev-stubs.ts';

const NOTHING: Reply = fixture('blkid/blank'); // blkid -p on a device that holds nothing: exit 2, no output

interface Scenario {
  device: string;
  parted: string;
  /** blkid of the whole device, then of partition nodes (by path). */
  blkid: string;
  parts?: Record<string, string>;
  lsblk: string;
  /** Where the device path leads; its dm holders (kname -> dm name) for a mapper device. */
  real: string;
  holders?: Record<string, string>;
  exists?: boolean;
  /** The kernel shows no partition nodes (sysfs has none). */
  unseen?: boolean;
}

/** Run the real gather script against replays of the recordings; the kernel's view (sysfs) follows parted's. */
function gather(s: Scenario): PartitionFacts {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-part-'));
  try {
    const p = fixture(`parted/${s.parted}`);
    const table = parseParted(p.stdout, p.exitCode, p.stderr);
    const k = s.real.replace(/^.*\//, '');
    const files: Record<string, string> = { [`${k}/size`]: '' };
    if (!s.holders && !s.unseen) {
      for (const x of table.partitions) files[`${k}/${k}${x.number}/partition`] = `${x.number}\n`;
    }
    for (const [kname, name] of Object.entries(s.holders ?? {})) {
      Object.assign(files, { [`${k}/holders/${kname}/dm/uuid`]: `part${name.replace(/^.*-part/, '')}-mpath-lab\n`, [`${k}/holders/${kname}/dm/name`]: `${name}\n` });
    }
    const sysfs = fakeSysfs(dir, files);
    const reply = (stdout: string): Reply => ({ stdout: `${stdout}\n`, exitCode: 0 });
    const out = runStubbed(gatherCommand(s.device, sysfs), {
      test: [['*', { stdout: '', exitCode: s.exists === false ? 1 : 0 }]],
      readlink: [['*', reply(s.real)]],
      blockdev: [['--getsize64*', reply(String(table.size))], ['--getss*', reply(String(table.logicalSector))], ['--getioopt*', reply('0')]],
      parted: [['*', p]],
      lsblk: [['*', fixture(`lsblk/${s.lsblk}`)]],
      blkid: [...Object.entries(s.parts ?? {}).map(([path, name]): [string, Reply] => [`* ${path}`, name === '' ? NOTHING : fixture(`blkid/${name}`)]), ['*', s.blkid === '' ? NOTHING : fixture(`blkid/${s.blkid}`)]],
    }, dir);
    return parsePartitionGather(out, s.device);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const D1 = '/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d1';
const D5 = '/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d5';
const MPATH = '/dev/mapper/mpathb';
const blank = () => gather({ device: D1, parted: 'blank', blkid: 'blank', lsblk: 'sto1-blank-disks', real: '/dev/sdb' });
const raidMember = () => gather({ device: D1, parted: 'blank', blkid: 'raid-member', lsblk: 'sto1-blank-disks', real: '/dev/sdb' });
const gptTwo = () => gather({ device: D5, parted: 'gpt-two', blkid: 'gpt', parts: { '/dev/sde1': 'empty-partition', '/dev/sde2': '' }, lsblk: 'sto1-mixed', real: '/dev/sde' });
// No blkid recording of sdf / mpathb themselves: with a label found, the plan reads parted's, not blkid's.
const msdosOne = () => gather({ device: '/dev/sdf', parted: 'msdos-one', blkid: '', parts: { '/dev/sdf1': '' }, lsblk: 'sto1-mixed', real: '/dev/sdf' });
const xfsDisk = () => gather({ device: '/dev/sdg', parted: 'xfs-whole-disk', blkid: 'xfs', lsblk: 'sto1-mixed', real: '/dev/sdg' });
const mpath = () =>
  gather({ device: MPATH, parted: 'mpath-gpt', blkid: 'gpt', parts: { '/dev/mapper/mpathb-part1': 'xfs-on-mpath' }, lsblk: 'chunk1-multipath', real: '/dev/dm-0', holders: { 'dm-1': 'mpathb-part1' } });

const TWO: PartitionSpec[] = [{ number: 1, name: 'data', start: '1MiB', end: '50%' }, { number: 2, start: '50%', end: '100%' }];
const plan = (raw: Record<string, unknown>, facts: PartitionFacts) => planPartition(partition.validate(raw), facts);
const summaries = (raw: Record<string, unknown>, facts: PartitionFacts) => plan(raw, facts).map((c) => c.summary);
const commands = (raw: Record<string, unknown>, facts: PartitionFacts) =>
  plan(raw, facts).flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.display : s.path)));
const destructive = (raw: Record<string, unknown>, facts: PartitionFacts) => plan(raw, facts).flatMap((c) => (c.destructive ? [c.destructive] : []));

// ---------------------------------------------------------------- positions and names

test('positions: %, MiB, B, sectors and decimal units resolve to bytes', (t) => {
  const size = 536870912;
  t.is(resolvePosition('1MiB', size, 512), 1048576);
  t.is(resolvePosition('50%', size, 512), 268435456);
  t.is(resolvePosition('0%', size, 512), 0);
  t.is(resolvePosition('1048576B', size, 512), 1048576);
  t.is(resolvePosition('2048s', size, 4096), 8388608);
  t.is(resolvePosition('1.5GiB', size, 512), 1610612736);
  t.is(resolvePosition('10MB', size, 512), 10_000_000);
  t.throws(() => resolvePosition('101%', size, 512), { message: /more than 100%/ });
  t.throws(() => resolvePosition('3cyl', size, 512), { message: /not a position/ });
});

test('geometry: ends are exclusive and kept inside the usable area; parted\'s recorded results are within one grain', (t) => {
  const gpt = fixture('parted/gpt-two');
  const table = parseParted(gpt.stdout, gpt.exitCode, gpt.stderr);
  const [p1, p2] = table.partitions;
  const w1 = wantedGeometry({ start: '1MiB', end: '50%' }, 'gpt', table.size, 512);
  t.deepEqual(w1, { start: 1048576, end: 268435455 });
  t.deepEqual([w1.start, w1.end], [p1?.start, p1?.end]);
  // 100% on GPT stops before the backup entries (33 sectors); parted then aligned the end down to 511 MiB.
  const w2 = wantedGeometry({ start: '50%', end: '100%' }, 'gpt', table.size, 512);
  t.deepEqual(w2, { start: 268435456, end: 536854015 });
  t.true(samePlace(p2?.end ?? 0, w2.end, MiB));
  t.false(samePlace(p2?.end ?? 0, w2.end, 512 * 1024));
  t.deepEqual(wantedGeometry({ start: '1MiB', end: '100%' }, 'msdos', 536870912, 512), { start: 1048576, end: 536870911 });
  t.deepEqual(wantedGeometry({ start: '0%', end: '1MiB' }, 'gpt', 536870912, 512), { start: 17408, end: 1048575 });
  const mp = parseParted(fixture('parted/mpath-gpt').stdout, 0, '');
  t.deepEqual([wantedGeometry({ start: '1MiB', end: '100%' }, 'gpt', mp.size, 512).end], mp.partitions.map((p) => p.end));
  t.throws(() => wantedGeometry({ start: '1MiB', end: '600MiB' }, 'gpt', 536870912, 512), { message: /beyond the end of the device \(512 MiB\)/ });
  t.throws(() => wantedGeometry({ start: '60%', end: '50%' }, 'gpt', 536870912, 512), { message: /start 60% is not before end 50%/ });
});

test('alignment tolerance: one grain is the same place, one grain and a bit is not', (t) => {
  t.true(samePlace(1048576, 2097152, MiB));
  t.false(samePlace(1048576, 2097153, MiB));
});

test('partition node names: sdX, nvme/mmc/md, /dev/mapper, /dev/disk links', (t) => {
  t.is(partitionNode('/dev/sdb', 1), '/dev/sdb1');
  t.is(partitionNode('/dev/vdc', 12), '/dev/vdc12');
  t.is(partitionNode('/dev/nvme0n1', 2), '/dev/nvme0n1p2');
  t.is(partitionNode('/dev/mmcblk0', 1), '/dev/mmcblk0p1');
  t.is(partitionNode('/dev/md127', 1), '/dev/md127p1');
  t.is(partitionNode('/dev/mapper/mpatha', 1), '/dev/mapper/mpatha-part1');
  t.is(partitionNode(D5, 1), `${D5}-part1`);
});

// ---------------------------------------------------------------- gather

test('gather: the recorded commands are the ones the script runs', (t) => {
  const script = gatherCommand('/dev/sdb').display;
  t.true(script.includes('parted -m -s "$d" unit B print'));
  t.true(script.includes('blkid -p -o export "$d"'));
  t.is(fixture('lsblk/sto1-mixed').command, `lsblk -J -b -o ${LSBLK_COLUMNS}`);
  t.true(script.includes(`lsblk -J -b -o ${LSBLK_COLUMNS} "$d"`));
});

test('gather: gpt with two partitions, nodes and contents found through sysfs and lsblk', (t) => {
  const f = gptTwo();
  t.like(f, { device: D5, realPath: '/dev/sde', nodeBase: '/dev/sde', size: 536870912, sectorSize: 512, grain: MiB, label: 'gpt', users: [] });
  t.is(f.signature?.ptType, 'gpt');
  t.deepEqual(f.partitions, [
    { number: 1, start: 1048576, end: 268435455, size: 267386880, fs: '', name: 'data', flags: [], path: '/dev/sde1', holds: [], users: [] },
    { number: 2, start: 268435456, end: 535822335, size: 267386880, fs: '', name: '', flags: [], path: '/dev/sde2', holds: [], users: [] },
  ]);
});

test('gather: a multipath map; its partition is a dm map (dm uuid part1-...) named NAME-part1, holding xfs', (t) => {
  const f = mpath();
  t.like(f, { realPath: '/dev/dm-0', nodeBase: MPATH, size: 535822336, label: 'gpt', users: [] });
  t.deepEqual(f.partitions.map((p) => [p.number, p.name, p.path, p.holds]), [[1, 'chunk1data', '/dev/mapper/mpathb-part1', ['an xfs filesystem labelled chunk1data']]]);
});

test('gather: a path of a multipath map is in use by the map (lsblk holders), so labelling it is refused', (t) => {
  // chunk1's lsblk (recorded) with sdc's LUN taken as blank: what matters here is the holder lsblk shows.
  const f = gather({ device: '/dev/sdc', parted: 'blank', blkid: 'blank', lsblk: 'chunk1-multipath', real: '/dev/sdc' });
  t.deepEqual(f.users, ['used by /dev/mapper/mpathb (mpath)']);
  t.deepEqual(destructive({ device: '/dev/sdc', partitions: [] }, f), ['/dev/sdc is used by /dev/mapper/mpathb (mpath)']);
});

test('gather: blank disk, whole-disk xfs, and a device that does not exist', (t) => {
  t.like(blank(), { label: null, signature: null, partitions: [] });
  t.like(xfsDisk(), { label: 'loop', partitions: [], signature: { type: 'xfs', label: 'keep' } });
  t.throws(() => gather({ device: '/dev/sdz', parted: 'blank', blkid: 'blank', lsblk: 'sto1-blank-disks', real: '/dev/sdz', exists: false }), {
    message: '/dev/sdz does not exist (not a block device)',
  });
});

// ---------------------------------------------------------------- plan

test('plan: a blank disk gets a label and its partitions, nothing destructive', (t) => {
  const f = blank();
  const raw = { device: D1, partitions: TWO };
  t.deepEqual(summaries(raw, f), [`create a gpt partition table on ${D1}`, `create partition 1 (data) on ${D1}: 1MiB..50%`, `create partition 2 on ${D1}: 50%..100%`]);
  t.deepEqual(destructive(raw, f), []);
  t.deepEqual(commands(raw, f), [
    `parted -s -a optimal ${D1} mklabel gpt`, 'udevadm settle',
    `parted -s -a optimal ${D1} mkpart '"data"' 1MiB 50%`, 'udevadm settle',
    `parted -s -a optimal ${D1} mkpart '""' 50% 100%`, 'udevadm settle',
  ]);
  t.deepEqual(commands({ device: D1, partitions: [{ number: 1, start: '1MiB', end: '100%', flags: ['lvm'] }] }, f).slice(2), [
    `parted -s -a optimal ${D1} mkpart '""' 1MiB 100% set 1 lvm on`, 'udevadm settle',
  ]);
});

test('plan: converged on what parted made of the recorded commands (gpt, msdos, multipath)', (t) => {
  t.deepEqual(plan({ device: D5, partitions: TWO }, gptTwo()), []);
  t.deepEqual(plan({ device: '/dev/sdf', label: 'msdos', partitions: [{ number: 1, start: '1MiB', end: '100%' }] }, msdosOne()), []);
  t.deepEqual(plan({ device: MPATH, partitions: [{ number: 1, name: 'chunk1data', start: '1MiB', end: '100%' }] }, mpath()), []);
  // Unnamed in the params: the name is left as it is.
  t.deepEqual(plan({ device: D5, partitions: [{ number: 1, start: '1MiB', end: '50%' }] }, gptTwo()), []);
});

test('plan: a name or flags differ: changed in place (safe); on a mapper device kpartx updates the maps', (t) => {
  const raw = { device: D5, partitions: [TWO[0], { ...TWO[1], name: 'logs' }] };
  t.deepEqual(summaries(raw, gptTwo()), [`partition 2 of ${D5}: name "" -> "logs"`]);
  t.deepEqual(commands(raw, gptTwo()), [`parted -s -a optimal ${D5} name 2 '"logs"'`, 'udevadm settle']);
  t.deepEqual(destructive(raw, gptTwo()), []);
  t.deepEqual(commands({ device: D5, partitions: [{ ...TWO[0], flags: ['raid'] }] }, gptTwo()), [`parted -s -a optimal ${D5} set 1 raid on`, 'udevadm settle']);
  const flagged = gptTwo();
  const raid = { ...flagged, partitions: flagged.partitions.map((x) => ({ ...x, flags: ['raid'] })) };
  t.deepEqual(summaries({ device: D5, partitions: [{ ...TWO[0], flags: ['lvm'] }] }, raid), [`partition 1 of ${D5}: flags [raid] -> [lvm]`]);
  t.deepEqual(commands({ device: D5, partitions: [{ ...TWO[0], flags: [] }] }, raid), [`parted -s -a optimal ${D5} set 1 raid off`, 'udevadm settle']);
  t.deepEqual(plan({ device: D5, partitions: [TWO[0]] }, raid), []);
  t.deepEqual(commands({ device: MPATH, partitions: [{ number: 1, name: 'data', start: '1MiB', end: '100%' }] }, mpath()), [
    `parted -s -a optimal ${MPATH} name 1 '"data"'`, 'udevadm settle', `kpartx -u -p -part ${MPATH}`, 'udevadm settle',
  ]);
});

test('plan: within one alignment grain is the same partition; beyond it, re-creating is destructive', (t) => {
  t.deepEqual(plan({ device: D5, partitions: [{ ...TWO[0], start: '2MiB' }] }, gptTwo()), []);
  const moved = { device: D5, partitions: [{ ...TWO[0], start: '2049KiB' }] };
  t.deepEqual(destructive(moved, gptTwo()), [
    `partition 1 of ${D5} (/dev/sde1) is at 1 MiB..256 MiB, not 2049KiB..50% as asked: re-creating it loses its content (blkid finds no signature in it)`,
  ]);
  t.deepEqual(commands(moved, gptTwo()), [`parted -s -a optimal ${D5} rm 1`, `parted -s -a optimal ${D5} mkpart '"data"' 2049KiB 50%`, 'udevadm settle']);
  // A device whose optimal I/O size is 4 MiB: parted aligns to 4 MiB, so 4 MiB off is still the same place.
  t.deepEqual(plan({ device: D5, partitions: [{ ...TWO[0], start: '5MiB' }] }, { ...gptTwo(), grain: 4 * MiB }), []);
  t.deepEqual(destructive({ device: MPATH, partitions: [{ number: 1, start: '1MiB', end: '50%' }] }, mpath()), [
    `partition 1 of ${MPATH} (/dev/mapper/mpathb-part1) is at 1 MiB..510.98 MiB, not 1MiB..50% as asked: re-creating it loses its content (it holds an xfs filesystem labelled chunk1data)`,
  ]);
});

test('plan: a label over content is destructive and names what is there', (t) => {
  const raw = (device: string, label = 'gpt') => ({ device, label, partitions: [{ number: 1, start: '1MiB', end: '100%' }] });
  t.deepEqual(destructive(raw('/dev/sdg'), xfsDisk()), ['/dev/sdg holds an xfs filesystem labelled keep']);
  t.deepEqual(commands(raw('/dev/sdg'), xfsDisk()).slice(0, 2), ['wipefs -a /dev/sdg', 'parted -s -a optimal /dev/sdg mklabel gpt']);
  t.deepEqual(destructive(raw(D1), raidMember()), [`${D1} holds a RAID member (linux_raid_member) of array sto1:data1`]);
  t.deepEqual(destructive(raw('/dev/sdf'), msdosOne()), ['/dev/sdf holds an msdos partition table with 1 partition']);
  t.deepEqual(destructive(raw(D5, 'msdos'), gptTwo()), [`${D5} holds a gpt partition table with 2 partitions`]);
  t.deepEqual(destructive(raw(MPATH, 'msdos'), mpath()), [`${MPATH} holds a gpt partition table with 1 partition; partition 1 holds an xfs filesystem labelled chunk1data`]);
  const inUse = { ...blank(), users: ['used by /dev/mapper/mpathb (mpath)'] };
  t.deepEqual(destructive(raw(D1), inUse), [`${D1} is used by /dev/mapper/mpathb (mpath)`]);
  const mounted = mpath();
  const busy = { ...mounted, partitions: mounted.partitions.map((x) => ({ ...x, users: ['mounted on /mnt/chunk1'] })) };
  t.deepEqual(destructive({ device: MPATH, state: 'absent', partitions: [{ number: 1 }] }, busy), [
    `partition 1 of ${MPATH} (/dev/mapper/mpathb-part1) holds an xfs filesystem labelled chunk1data and is mounted on /mnt/chunk1`,
  ]);
});

test('plan: absent removes the listed partitions; one that holds something is destructive', (t) => {
  const gone = { device: D5, state: 'absent', partitions: [{ number: 2 }, { number: 7 }] };
  t.deepEqual(summaries(gone, gptTwo()), [`remove partition 2 from ${D5}`]);
  t.deepEqual(destructive(gone, gptTwo()), []);
  t.deepEqual(commands(gone, gptTwo()), [`parted -s -a optimal ${D5} rm 2`, 'udevadm settle']);
  t.deepEqual(destructive({ device: MPATH, state: 'absent', partitions: [{ number: 1 }] }, mpath()), [
    `partition 1 of ${MPATH} (/dev/mapper/mpathb-part1) holds an xfs filesystem labelled chunk1data`,
  ]);
  t.deepEqual(plan({ device: '/dev/sdg', state: 'absent', partitions: [{ number: 1 }] }, xfsDisk()), []);
  t.deepEqual(plan({ device: D1, state: 'absent', partitions: [{ number: 1 }] }, blank()), []);
});

test('a partition without a node to probe is never taken for empty', (t) => {
  const f = gather({ device: D5, parted: 'gpt-two', blkid: 'gpt', lsblk: 'sto1-mixed', real: '/dev/sde', unseen: true });
  t.deepEqual(f.partitions.map((x) => [x.path, x.holds]), [[null, ['content that could not be probed (no node)']], [null, ['content that could not be probed (no node)']]]);
  t.deepEqual(destructive({ device: D5, state: 'absent', partitions: [{ number: 2 }] }, f), [`partition 2 of ${D5} holds content that could not be probed (no node)`]);
  t.deepEqual(partitionOutput(partition.validate({ device: D5, partitions: [] }), f).partitions.map((x) => x.path), ['/dev/sde1', '/dev/sde2']);
});

test('plan: what parted cannot do as asked is an error, before anything runs', (t) => {
  const err = (raw: Record<string, unknown>, f: PartitionFacts, message: RegExp) => t.throws(() => plan(raw, f), { message });
  err({ device: D1, partitions: [{ number: 2, start: '1MiB', end: '100%' }] }, blank(), /lowest free number \(1\): list partition 1 too/);
  err({ device: D5, partitions: [...TWO, { number: 3, start: '40%', end: '60%' }] }, gptTwo(), /partition 3 of .* \(40%\.\.60%\) overlaps partition 1 of .* \(\/dev\/sde1\) at 1 MiB\.\.256 MiB/);
  err({ device: D1, partitions: [TWO[0], TWO[0]] }, blank(), /listed twice/);
  err({ device: D1, partitions: [{ number: 1 }] }, blank(), /start and end are required/);
  err({ device: D1, label: 'msdos', partitions: [{ number: 1, name: 'x', start: '1MiB', end: '100%' }] }, blank(), /msdos partitions have no names/);
  err({ device: D1, label: 'msdos', partitions: [{ number: 5, start: '1MiB', end: '100%' }] }, blank(), /only primary msdos partitions/);
  err({ device: D1, partitions: [{ number: 1, start: '1MiB', end: '2GiB' }] }, blank(), /partition 1 of .*: end 2GiB is beyond the end of the device/);
});

test('schema: positions with units, names parted can read back, known flags', (t) => {
  const bad = (p: Record<string, unknown>) => t.throws(() => partition.validate({ device: D1, partitions: [{ number: 1, start: '1MiB', end: '100%', ...p }] }));
  bad({ start: '1 MiB' });
  bad({ end: '100' });
  bad({ name: 'a"b' });
  bad({ name: 'a:b' });
  bad({ number: 0 });
  bad({ number: 129 });
  bad({ flags: ['rayd'] });
  t.throws(() => partition.validate({ device: 'sdb', partitions: [] }));
  t.like(partition.validate({ device: D1, partitions: [] }), { label: 'gpt', state: 'present' });
});

test('output: each partition with its node as found, or by the naming rule when the host has not shown it', (t) => {
  const p = partition.validate({ device: D5, partitions: TWO });
  t.deepEqual(partitionOutput(p, gptTwo()), {
    device: D5,
    label: 'gpt',
    partitions: [
      { number: 1, start: 1048576, end: 268435455, size: 267386880, name: 'data', path: '/dev/sde1' },
      { number: 2, start: 268435456, end: 535822335, size: 267386880, name: '', path: '/dev/sde2' },
    ],
  });
  const unseen = mpath();
  const noPaths = { ...unseen, partitions: unseen.partitions.map((x) => ({ ...x, path: null })) };
  t.is(partitionOutput(partition.validate({ device: MPATH, partitions: [] }), noPaths).partitions[0]?.path, '/dev/mapper/mpathb-part1');
});
