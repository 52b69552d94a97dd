/**
 * The shared block-device parsers (modules/blockdev.ts) on outputs recorded on the lab VMs (Debian 12:
 * parted 3.5, util-linux 2.38.1), and the gather script's sections on a real /bin/sh.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { sh } from '../../lib/command.ts';
import {
  SECTION_FUNCTION, describeSignature, findNode, parseBlkid, parseLsblk, parseParted, splitSections, usersOf,
} from '../../modules/blockdev.ts';
import { fixture } from '../helpers/blockdev-stubs.ts';

const parted = (name: string) => {
  const f = fixture(`parted/${name}`);
  return parseParted(f.stdout, f.exitCode, f.stderr);
};
const blkid = (name: string) => {
  const f = fixture(`blkid/${name}`);
  return parseBlkid(f.stdout, f.exitCode, f.stderr);
};

test('recorded by the very commands the gather scripts run', (t) => {
  for (const name of ['blank', 'gpt-two', 'msdos-one', 'xfs-whole-disk', 'mpath-gpt']) {
    t.regex(fixture(`parted/${name}`).command, /^parted -m -s \S+ unit B print$/);
    t.regex(fixture(`parted/${name}`).tool, /^parted 3\.5/);
  }
  for (const name of ['blank', 'empty-partition', 'ext4', 'gpt', 'raid-member', 'xfs', 'xfs-on-mpath']) {
    t.regex(fixture(`blkid/${name}`).command, /^blkid -p -o export \S+$/);
  }
});

test('parted: a blank disk (exit 1, unrecognised disk label) is a device without a label', (t) => {
  t.deepEqual(parted('blank'), {
    path: '/dev/sdb', size: 536870912, logicalSector: 512, physicalSector: 512, label: null, model: 'QEMU QEMU HARDDISK', partitions: [], warnings: '',
  });
});

test('parted: gpt with two partitions, the first named', (t) => {
  const p = parted('gpt-two');
  t.is(p.label, 'gpt');
  t.is(p.path, '/dev/sde');
  t.deepEqual(p.partitions, [
    { number: 1, start: 1048576, end: 268435455, size: 267386880, fs: '', name: 'data', flags: [] },
    { number: 2, start: 268435456, end: 535822335, size: 267386880, fs: '', name: '', flags: [] },
  ]);
});

test('parted: msdos with one partition; a whole-disk xfs is the "loop" label', (t) => {
  const m = parted('msdos-one');
  t.is(m.label, 'msdos');
  t.deepEqual(m.partitions, [{ number: 1, start: 1048576, end: 536870911, size: 535822336, fs: '', name: '', flags: [] }]);
  const x = parted('xfs-whole-disk');
  t.is(x.label, 'loop');
  t.deepEqual(x.partitions.map((p) => [p.number, p.start, p.end, p.fs]), [[1, 0, 536870911, 'xfs']]);
});

test('parted: other failures throw with its message', (t) => {
  const f = fixture('parted/blank');
  t.throws(() => parseParted(f.stdout, 2, 'Error: Could not stat device /dev/nope - No such file or directory.'), {
    message: /parted failed \(exit 2\): Error: Could not stat device/,
  });
});

test('parted: GPT on a dm-multipath map (one partition, 1MiB..100%)', (t) => {
  const p = parted('mpath-gpt');
  t.like(p, { path: '/dev/mapper/mpathb', size: 535822336, label: 'gpt', model: 'Linux device-mapper (multipath)' });
  t.deepEqual(p.partitions, [{ number: 1, start: 1048576, end: 535805439, size: 534756864, fs: '', name: 'chunk1data', flags: [] }]);
});

test('blkid: nothing (exit 2), an empty partition (only its entry) is nothing too', (t) => {
  t.is(blkid('blank'), null);
  t.is(blkid('empty-partition'), null);
});

test('blkid: filesystems, a RAID member and a partition table, described in words', (t) => {
  const xfs = blkid('xfs');
  t.like(xfs, { type: 'xfs', usage: 'filesystem', label: 'keep', uuid: 'a3f6a2e1-0c3d-4539-8475-a25746852fe3', ptType: null });
  t.is(describeSignature(xfs!), 'an xfs filesystem labelled keep');
  const ext4 = blkid('ext4');
  t.like(ext4, { type: 'ext4', label: 'other', uuid: '4276453b-86c3-4b73-a57c-086dd687320d' });
  t.is(describeSignature(ext4!), 'an ext4 filesystem labelled other');
  const raid = blkid('raid-member');
  t.like(raid, { type: 'linux_raid_member', usage: 'raid', label: 'sto1:data1' });
  t.is(describeSignature(raid!), 'a RAID member (linux_raid_member) of array sto1:data1');
  const gpt = blkid('gpt');
  t.like(gpt, { type: null, ptType: 'gpt' });
  t.is(describeSignature(gpt!), 'a gpt partition table');
});

test('blkid: exit 8 (ambivalent) is something; exit 4 throws', (t) => {
  const f = fixture('blkid/xfs');
  t.is(describeSignature(parseBlkid(f.stdout, 8)!), 'several signatures (blkid cannot tell which one is in use)');
  t.throws(() => parseBlkid('', 4, 'error: /dev/nope: No such file or directory'), { message: /blkid failed \(exit 4\): error: \/dev\/nope/ });
});

test('blkid: xfs on a multipath partition (content and the partition entry)', (t) => {
  const s = blkid('xfs-on-mpath');
  t.like(s, { type: 'xfs', label: 'chunk1data', uuid: '5527a009-353f-4693-b1d9-d1e0d960c351', partEntry: { scheme: 'gpt', number: 1, name: 'chunk1data' } });
  t.is(describeSignature(s!), 'an xfs filesystem labelled chunk1data');
});

test('lsblk: blank disks, and a mixed host with partitions and filesystems', (t) => {
  const blank = parseLsblk(fixture('lsblk/sto1-blank-disks').stdout);
  t.deepEqual(blank.map((n) => n.path), ['/dev/fd0', '/dev/sda', '/dev/sdb', '/dev/sdc', '/dev/sdd', '/dev/sde', '/dev/sdf', '/dev/sdg']);
  const sda = findNode(blank, '/dev/sda')!;
  t.deepEqual(usersOf(sda), []); // its partition is not a user of the disk
  t.deepEqual(usersOf(findNode(blank, 'sda1')!), ['mounted on /']);
  t.deepEqual(findNode(blank, '/dev/sdb')?.mountpoints, []);
  const mixed = parseLsblk(fixture('lsblk/sto1-mixed').stdout);
  const sde = findNode(mixed, '/dev/sde')!;
  t.deepEqual(sde.children.map((c) => [c.path, c.type, c.size, c.partlabel]), [
    ['/dev/sde1', 'part', 267386880, 'data'],
    ['/dev/sde2', 'part', 267386880, null],
  ]);
  t.like(findNode(mixed, '/dev/sdg'), { fstype: 'xfs', label: 'keep', size: 536870912 });
  t.like(findNode(mixed, '/dev/sdd'), { fstype: 'ext4', label: 'other' });
});

test('lsblk: a multipath map over two paths, with a partition map (NAME-part1) on it', (t) => {
  const tree = parseLsblk(fixture('lsblk/chunk1-multipath').stdout);
  const map = findNode(tree, 'dm-0')!;
  t.like(map, { name: 'mpathb', path: '/dev/mapper/mpathb', type: 'mpath', size: 535822336 });
  t.deepEqual(map.children.map((c) => [c.kname, c.path, c.type, c.size, c.partlabel]), [
    ['dm-1', '/dev/mapper/mpathb-part1', 'part', 534756864, 'chunk1data'],
  ]);
  t.deepEqual(usersOf(map), []);
  const paths = tree.filter((n) => n.children.some((c) => c.kname === 'dm-0'));
  t.deepEqual(paths.map((n) => [n.path, n.fstype]), [['/dev/sdb', 'mpath_member'], ['/dev/sdc', 'mpath_member']]);
  t.deepEqual(usersOf(paths[0]!), ['used by /dev/mapper/mpathb (mpath)']);
});

// ---------------------------------------------------------------- sections, on a real shell

const run = (script: string): string => execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });

test('sections: stdout, stderr and exit code of each tool are kept apart, byte for byte', (t) => {
  const out = run(sh`${SECTION_FUNCTION}
sanbook_run one printf 'A\\nB\\n'
sanbook_run 'two words' sh -c 'printf no-newline; echo oops >&2; echo more >&2; exit 3'
sanbook_run three true
echo trailing text`.script.toString());
  t.deepEqual(splitSections(out), [
    { tag: 'one', stdout: 'A\nB\n', stderr: '', exitCode: 0 },
    { tag: 'two words', stdout: 'no-newline', stderr: 'oops\nmore', exitCode: 3 },
    { tag: 'three', stdout: '', stderr: '', exitCode: 0 },
  ]);
});

test('sections: a recorded output travels through a section unchanged, and the function returns its code', (t) => {
  const f = fixture('parted/blank');
  const out = run(sh`${SECTION_FUNCTION}
sanbook_run parted sh -c 'printf %s "$1"; printf %s "$2" >&2; exit 1' - ${f.stdout} ${f.stderr} || echo failed-as-expected`.script.toString());
  const [s] = splitSections(out);
  t.deepEqual(s, { tag: 'parted', stdout: f.stdout, stderr: f.stderr.trimEnd(), exitCode: 1 });
  t.true(out.endsWith('failed-as-expected\n'));
});

test('sections: a script cut short leaves a section without an exit code', (t) => {
  t.deepEqual(splitSections('noise\n@@sanbook begin x\npartial'), [{ tag: 'x', stdout: 'partial', stderr: '', exitCode: Number.NaN }]);
});
