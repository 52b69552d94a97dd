/**
 * lvm: the real gather script under /bin/sh with pvs, vgs, lvs, blkid and lsblk replaying what they printed on
 * sto1 of the lab (lab/record-lvm.ts: nothing, an orphan PV, VG rec on d4+d5 with a 400 MiB LV, the LV open and
 * inactive), and the plans made from those facts: created in extents, converged, grown, shrunk only with force,
 * refused when in use, and every destructive change named.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lvm, lvmOutput, planLvm, wantedExtents, type LvmFacts } from '../../modules/lvm.ts';
import { gatherCommand, parseLvmGather } from '../../modules/lvm/facts.ts';
import { fixture, runStubbed, type Reply, type Stubs } from '../helpers/blockdev-stubs.ts';

const disk = (n: number) => `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d${n}`;
const [D4, D5, D6] = [disk(4), disk(5), disk(6)];
/** The kernel's names of the recorded disks (pvs names them so). */
const KERNEL: Record<string, string> = { [D4]: '/dev/sde', [D5]: '/dev/sdf', [D6]: '/dev/sdg' };
const reply = (name: string): Reply => {
  const f = fixture(name);
  return { stdout: f.stdout, stderr: f.stderr, exitCode: f.exitCode };
};

interface State {
  pvs: string;
  vgs: string;
  lvs: string;
  /** blkid and lsblk recordings per device (default: blank). */
  devices?: Record<string, { blkid: string; lsblk: string }>;
  uid?: string;
  noLvm?: boolean;
}

function gather(devices: readonly string[], s: State): LvmFacts {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-lvm-'));
  try {
    const dev = (d: string) => s.devices?.[d] ?? { blkid: 'blkid/blank', lsblk: 'lsblk/lvm-blank-disk' };
    const stubs: Stubs = {
      pvs: [['*', reply(s.pvs)]],
      vgs: [['*', reply(s.vgs)]],
      lvs: [['*', reply(s.lvs)]],
      id: [['-u', { stdout: `${s.uid ?? '0'}\n`, exitCode: 0 }]],
      test: [['-b *', { stdout: '', exitCode: 0 }]],
      readlink: devices.map((d) => [`-f -- ${d}`, { stdout: `${KERNEL[d] ?? d}\n`, exitCode: 0 }] as [string, Reply]),
      blkid: devices.map((d) => [`-p -o export ${d}`, reply(dev(d).blkid)] as [string, Reply]),
      lsblk: devices.map((d) => [`* ${d}`, reply(dev(d).lsblk)] as [string, Reply]),
      ...(s.noLvm ? {} : { lvm: [['*', { stdout: '', exitCode: 0 }]] as [string, Reply][] }),
    };
    // Without the lvm stub, `command -v lvm` must fail: PATH has no lvm (this machine has none).
    return parseLvmGather(runStubbed(gatherCommand(devices), stubs, dir, 'PATH=/nonexistent:$PATH'), devices, 'sto1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BLANK: State = { pvs: 'lvm/pvs-none', vgs: 'lvm/vgs-none', lvs: 'lvm/lvs-none' };
const PV = { blkid: 'blkid/lvm-pv', lsblk: 'lsblk/lvm-pv-in-use' };
const BUILT: State = { pvs: 'lvm/pvs-vg', vgs: 'lvm/vgs-vg', lvs: 'lvm/lvs-vg', devices: { [D4]: PV, [D5]: PV, [D6]: PV } };

const plan = (raw: Record<string, unknown>, s: State) => {
  const p = lvm.validate(raw);
  return planLvm(p, gather(p.state === 'absent' ? [] : (p.pvs ?? []), s));
};
const commands = (raw: Record<string, unknown>, s: State) => plan(raw, s).flatMap((c) => c.steps.map((x) => (x.kind === 'exec' ? x.command.display : x.path)));
const REC = { vg: 'rec', pvs: [D4, D5], lvs: [{ name: 'root', size: '400M' }] };

test('recorded by the commands the gather script runs', (t) => {
  const script = gatherCommand([D4]).display;
  for (const name of ['pvs-none', 'vgs-vg', 'lvs-open']) t.true(script.includes(fixture(`lvm/${name}`).command), name);
});

test('gather: the reports in bytes, the PV of each listed device, an LV open', (t) => {
  const f = gather([D4, D5, D6], BUILT);
  t.deepEqual(f.pvs.map((p) => [p.name, p.vg, p.extents, p.allocated]), [['/dev/sde', 'rec', 127, 100], ['/dev/sdf', 'rec', 127, 0], ['/dev/sdg', '', 0, 0]]);
  t.like(f.vgs[0], { name: 'rec', extentSize: 4194304, extentCount: 254, freeCount: 154, lvCount: 1 });
  t.like(f.lvs[0], { name: 'root', vg: 'rec', size: 419430400, path: '/dev/rec/root', active: true, open: false });
  t.like(f.devices[D4], { exists: true, realPath: '/dev/sde', signature: { type: 'LVM2_member' } });
  t.deepEqual(f.devices[D4]?.users, ['used by /dev/mapper/rec-root (lvm)']);
  t.true(gather([], { ...BUILT, lvs: 'lvm/lvs-open' }).lvs[0]?.open);
  t.false(gather([], { ...BUILT, lvs: 'lvm/lvs-inactive' }).lvs[0]?.active);
  t.deepEqual(lvmOutput(lvm.validate(REC), f), {
    vg: 'rec', extentSize: 4194304, size: 1065353216, free: 645922816, pvs: ['/dev/sde', '/dev/sdf'], lvs: { root: { path: '/dev/rec/root', size: 419430400, open: false } },
  });
});

test('blank disks: pvcreate, vgcreate with 4 MiB extents, the LV in whole extents; what was recorded plans nothing', (t) => {
  t.deepEqual(commands(REC, BLANK), [
    `pvcreate --yes ${D4}`, `pvcreate --yes ${D5}`, `vgcreate --yes -s 4m rec ${D4} ${D5}`, 'lvcreate --yes -n root -l 100 rec',
  ]);
  t.false(plan(REC, BLANK).some((c) => c.destructive !== undefined));
  // The recording made exactly that (vgcreate -s 4m, lvcreate -l 100): converged.
  t.deepEqual(plan(REC, BUILT), []);
  t.deepEqual(plan({ ...REC, lvs: [{ name: 'root', size: '399M' }] }, BUILT), [], '399 MiB rounds up to the same 100 extents');
});

test('grow in extents, a %VG size, a listed orphan PV added without pvcreate', (t) => {
  t.deepEqual(commands({ ...REC, lvs: [{ name: 'root', size: '500M' }] }, BUILT), ['lvextend -l 125 rec/root']);
  t.deepEqual(commands({ ...REC, lvs: [{ name: 'root', size: '50%VG' }] }, BUILT), ['lvextend -l 127 rec/root']);
  t.deepEqual(commands({ ...REC, pvs: [D4, D5, D6] }, BUILT), [`vgextend --yes rec ${D6}`]);
  t.deepEqual(wantedExtents('50%VG', 4194304, null), { min: 1, max: Number.MAX_SAFE_INTEGER, arg: '50%VG' });
  t.deepEqual(wantedExtents('1G', 4194304, 254), { min: 256, max: 256, arg: '256' });
});

test('shrink and remove: destructive, named; refused even with force while the LV is open', (t) => {
  const [shrink] = plan({ ...REC, lvs: [{ name: 'root', size: '200M' }] }, BUILT);
  t.is(shrink?.destructive, 'shrinking rec/root from 400 MiB to 200 MiB destroys the data past the new end (a filesystem on it must be shrunk first)');
  t.deepEqual(shrink?.steps.map((x) => (x.kind === 'exec' ? x.command.display : '')), ['lvreduce --yes -f -l 50 rec/root']);
  const open = { ...BUILT, lvs: 'lvm/lvs-open' };
  t.throws(() => plan({ ...REC, lvs: [{ name: 'root', size: '200M' }] }, open), { message: /rec\/root is 400 MiB, more than 200M, and open: it cannot be shrunk while in use/ });
  const [remove] = plan({ ...REC, lvs: [{ name: 'root', state: 'absent' }] }, BUILT);
  t.is(remove?.destructive, 'removing rec/root destroys its data (400 MiB)');
  t.throws(() => plan({ ...REC, lvs: [{ name: 'root', state: 'absent' }] }, open), { message: /rec\/root is open.*cannot be removed/ });
  const [vg] = plan({ vg: 'rec', state: 'absent' }, BUILT);
  t.is(vg?.destructive, 'removing volume group rec destroys root (400 MiB)');
  t.deepEqual(vg?.steps.map((x) => (x.kind === 'exec' ? x.command.display : '')), ['lvremove --yes rec/root', 'vgremove --yes rec', 'pvremove --yes /dev/sde /dev/sdf']);
  t.throws(() => plan({ vg: 'rec', state: 'absent' }, open), { message: /volume group rec has open logical volumes \(root\)/ });
  t.deepEqual(plan({ vg: 'nosuch', state: 'absent' }, BUILT), []);
});

test('a disk holding a filesystem is destructive; a PV of another VG, too little space, no LVM or no root: clear errors', (t) => {
  const xfs = { ...BLANK, devices: { [D4]: { blkid: 'blkid/xfs', lsblk: 'lsblk/lvm-blank-disk' } } };
  const [c] = plan(REC, xfs);
  t.is(c?.destructive, `${D4} holds an xfs filesystem labelled keep`);
  t.deepEqual(c?.steps.map((x) => (x.kind === 'exec' ? x.command.display : '')).slice(0, 2), [`wipefs -a ${D4}`, `pvcreate --yes ${D4}`]);
  t.throws(() => plan({ vg: 'other', pvs: [D4] }, BUILT), { message: `${D4} (/dev/sde) is a physical volume of volume group rec: remove it from rec first (vgreduce)` });
  t.throws(() => plan({ ...REC, lvs: [{ name: 'root', size: '400M' }, { name: 'big', size: '1G' }] }, BUILT), {
    message: 'volume group rec has 154 free extents (616 MiB); the logical volumes asked for need 256 (1 GiB): list more devices, or ask for less',
  });
  t.throws(() => plan(REC, { ...BLANK, noLvm: true }), { message: 'lvm on sto1: LVM is not installed (no lvm command): install the lvm2 package first' });
  t.throws(() => plan(REC, { ...BLANK, uid: '1000' }), { message: 'lvm on sto1: LVM needs root (set become: true)' });
  t.deepEqual(commands(REC, { ...BUILT, lvs: 'lvm/lvs-inactive' }), ['lvchange -ay rec/root']);
});

test('bad params are refused by the schema: sizes, names, a present LV without a size', (t) => {
  for (const bad of [
    { ...REC, lvs: [{ name: 'root', size: '10' }] },
    { ...REC, lvs: [{ name: 'root', size: '101%VG' }] },
    { ...REC, lvs: [{ name: 'root' }] },
    { ...REC, vg: '..' },
    { ...REC, vg: '-x' },
    { vg: 'rec' },
    { ...REC, pvs: ['sdb'] },
  ]) t.throws(() => lvm.validate(bad), undefined, JSON.stringify(bad));
  t.notThrows(() => lvm.validate({ vg: 'rec', pvs: [D4], lvs: [{ name: 'old', state: 'absent' }] }));
});
