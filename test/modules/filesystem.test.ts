/**
 * filesystem: the gather script (on /bin/sh, blkid replaced by replays of recorded outputs) and plans on what
 * blkid recorded on the lab VMs: nothing, xfs, ext4, a RAID member, a GPT, an empty partition, xfs on a
 * multipath partition.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LABEL_MAX, filesystem, filesystemOutput, gatherCommand, parseFilesystemGather, planFilesystem, type FilesystemFacts,
} from '../../modules/filesystem.ts';
import { fixture, runStubbed } from '../helpers/blockdev-stubs.ts';

/** The real gather script, with `test -b` answering `exists` and blkid replaying a recording. */
function gather(device: string, blkid: string, exists = true): FilesystemFacts {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-fs-'));
  try {
    const out = runStubbed(gatherCommand(device), {
      test: [['-b *', { stdout: '', exitCode: exists ? 0 : 1 }]],
      blkid: [[`-p -o export ${device}`, fixture(`blkid/${blkid}`)]],
    }, dir);
    return parseFilesystemGather(out, device);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The devices the recordings were made on.
const d = (n: number) => `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d${n}`;
const facts = {
  blank: () => gather(d(1), 'blank'),
  raid: () => gather(d(1), 'raid-member'),
  xfs: () => gather(d(3), 'xfs'),
  ext4: () => gather(d(4), 'ext4'),
  gpt: () => gather(d(5), 'gpt'),
  emptyPart: () => gather(`${d(5)}-part1`, 'empty-partition'),
  mpath: () => gather('/dev/disk/by-label/chunk1data', 'xfs-on-mpath'),
};

const plan = (raw: Record<string, unknown>, f: FilesystemFacts) => planFilesystem(filesystem.validate(raw), f);
const commands = (raw: Record<string, unknown>, f: FilesystemFacts) =>
  plan(raw, f).flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.display : s.path)));

test('recorded by the command the gather script runs', (t) => {
  t.is(fixture('blkid/xfs').command, `blkid -p -o export ${d(3)}`);
  t.true(gatherCommand(d(3)).display.includes('sanbook_run blkid blkid -p -o export "$d"'));
});

test('gather: what blkid found, through the real script', (t) => {
  t.deepEqual(facts.blank(), { device: d(1), signature: null });
  t.like(facts.xfs().signature, { type: 'xfs', label: 'keep', uuid: 'a3f6a2e1-0c3d-4539-8475-a25746852fe3' });
  t.like(facts.raid().signature, { type: 'linux_raid_member', usage: 'raid' });
  t.like(facts.gpt().signature, { type: null, ptType: 'gpt' });
  t.is(facts.emptyPart().signature, null);
  t.like(facts.mpath().signature, { type: 'xfs', label: 'chunk1data', partEntry: { number: 1 } });
});

test('gather: a device that does not exist is a clear error naming it', (t) => {
  t.throws(() => gather('/dev/disk/by-id/nope', 'blank', false), { message: '/dev/disk/by-id/nope does not exist (not a block device)' });
});

test('plan: nothing on the device (or only its partition entry) -> mkfs, safe', (t) => {
  t.deepEqual(commands({ device: d(1), fstype: 'xfs', label: 'data' }, facts.blank()), [`mkfs.xfs -L data ${d(1)}`]);
  const part = `${d(5)}-part1`;
  const changes = plan({ device: part, fstype: 'ext4', label: 'logs', options: ['-E', 'lazy_itable_init=0'] }, facts.emptyPart());
  t.deepEqual(changes.map((c) => [c.summary, c.destructive]), [[`create an ext4 filesystem labelled logs on ${part}`, undefined]]);
  t.deepEqual(commands({ device: part, fstype: 'ext4', label: 'logs', options: ['-E', 'lazy_itable_init=0'] }, facts.emptyPart()), [
    `mkfs.ext4 -L logs -E lazy_itable_init=0 ${part}`,
  ]);
  t.deepEqual(commands({ device: d(1), fstype: 'xfs' }, facts.blank()), [`mkfs.xfs ${d(1)}`]);
});

test('plan: converged when the type matches and the label matches or none is asked', (t) => {
  t.deepEqual(plan({ device: d(3), fstype: 'xfs', label: 'keep' }, facts.xfs()), []);
  t.deepEqual(plan({ device: d(3), fstype: 'xfs' }, facts.xfs()), []);
  t.deepEqual(plan({ device: d(4), fstype: 'ext4', label: 'other' }, facts.ext4()), []);
  t.deepEqual(plan({ device: '/dev/disk/by-label/chunk1data', fstype: 'xfs', label: 'chunk1data' }, facts.mpath()), []);
});

test('plan: anything else is a forced mkfs, refused unless force, naming device, content and label', (t) => {
  const refused = (raw: Record<string, unknown>, f: FilesystemFacts) => plan(raw, f).map((c) => c.destructive);
  t.deepEqual(refused({ device: d(3), fstype: 'xfs', label: 'fresh' }, facts.xfs()), [
    `${d(3)} holds an xfs filesystem labelled keep: its label is "keep", not "fresh"`,
  ]);
  t.deepEqual(refused({ device: d(3), fstype: 'ext4', label: 'keep' }, facts.xfs()), [`${d(3)} holds an xfs filesystem labelled keep: mkfs.ext4 erases it`]);
  t.deepEqual(refused({ device: d(4), fstype: 'xfs' }, facts.ext4()), [`${d(4)} holds an ext4 filesystem labelled other: mkfs.xfs erases it`]);
  t.deepEqual(refused({ device: d(1), fstype: 'xfs', label: 'data' }, facts.raid()), [
    `${d(1)} holds a RAID member (linux_raid_member) of array sto1:data1: mkfs.xfs erases it`,
  ]);
  t.deepEqual(refused({ device: d(5), fstype: 'xfs' }, facts.gpt()), [`${d(5)} holds a gpt partition table: mkfs.xfs erases it`]);
  t.deepEqual(commands({ device: d(3), fstype: 'ext4', label: 'keep' }, facts.xfs()), [`mkfs.ext4 -F -L keep ${d(3)}`]);
  t.deepEqual(commands({ device: d(4), fstype: 'xfs', label: 'x', options: ['-m', 'reflink=1'] }, facts.ext4()), [`mkfs.xfs -f -L x -m reflink=1 ${d(4)}`]);
  // Several signatures (blkid -p exit 8), or a partition table beside the filesystem: never "converged".
  const xfs = facts.xfs();
  const several = { ...xfs, signature: xfs.signature && { ...xfs.signature, ambivalent: true } };
  t.deepEqual(refused({ device: d(3), fstype: 'xfs', label: 'keep' }, several), [
    `${d(3)} holds several signatures (blkid cannot tell which one is in use): mkfs.xfs erases it`,
  ]);
  const withTable = { ...xfs, signature: xfs.signature && { ...xfs.signature, ptType: 'gpt' } };
  t.deepEqual(refused({ device: d(3), fstype: 'xfs', label: 'keep' }, withTable), [
    `${d(3)} holds an xfs filesystem labelled keep and a gpt partition table: mkfs.xfs erases it`,
  ]);
  const [change] = plan({ device: d(4), fstype: 'xfs', label: 'x' }, facts.ext4());
  t.deepEqual(change?.diff, { label: d(4), before: 'an ext4 filesystem labelled other', after: 'an xfs filesystem labelled x' });
});

test('labels: xfs at most 12 bytes, ext4 at most 16; force and -L are not options', (t) => {
  t.deepEqual(LABEL_MAX, { xfs: 12, ext4: 16 });
  t.deepEqual(plan({ device: d(1), fstype: 'xfs', label: 'twelve-chars' }, facts.blank()).length, 1);
  t.throws(() => plan({ device: d(1), fstype: 'xfs', label: 'thirteen-char' }, facts.blank()), {
    message: `filesystem ${d(1)}: an xfs label is at most 12 bytes: "thirteen-char" has 13`,
  });
  t.deepEqual(commands({ device: d(1), fstype: 'ext4', label: 'sixteen-chars-ok' }, facts.blank()), [`mkfs.ext4 -L sixteen-chars-ok ${d(1)}`]);
  t.throws(() => filesystem.validate({ device: d(1), fstype: 'ext4', label: 'seventeen-chars-x' }));
  t.throws(() => filesystem.validate({ device: d(1), fstype: 'btrfs' }));
  t.throws(() => filesystem.validate({ device: d(1), fstype: 'xfs', force: true }));
  t.throws(() => plan({ device: d(1), fstype: 'xfs', options: ['-f'] }, facts.blank()), { message: /-f is not an option here \(force is the task's force: true/ });
  t.throws(() => plan({ device: d(1), fstype: 'ext4', options: ['-F'] }, facts.blank()), { message: /-F is not an option here/ });
  t.throws(() => plan({ device: d(1), fstype: 'ext4', options: ['-Lx'] }, facts.blank()), { message: /-Lx is not an option here/ });
});

test('output: device, type, label and uuid of what is there', (t) => {
  t.deepEqual(filesystemOutput(filesystem.validate({ device: d(3), fstype: 'xfs' }), facts.xfs()), {
    device: d(3), fstype: 'xfs', label: 'keep', uuid: 'a3f6a2e1-0c3d-4539-8475-a25746852fe3',
  });
  t.deepEqual(filesystemOutput(filesystem.validate({ device: d(1), fstype: 'xfs' }), facts.blank()), { device: d(1), fstype: null, label: null, uuid: null });
});
