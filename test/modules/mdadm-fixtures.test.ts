/**
 * The mdadm module's parsers on output recorded on the lab VM sto1 (mdadm 4.2, util-linux 2.38.1, Debian 12; see
 * lab/record-storage.ts). Disks: d1=sdb 8:16, d2=sdc 8:32, d3=sdg 8:96, d4=sdd 8:48, d5=sde 8:64, d6=sdf 8:80.
 */
import test from 'ava';
import { fixture } from '../helpers/fixtures.ts';
import { execFileSync } from 'node:child_process';
import { cmd, sh } from '../../lib/command.ts';
import { framedScript, gatherScript, mdadm } from '../../modules/mdadm.ts';
import * as P from '../../modules/mdadm/parse.ts';
import * as C from '../../modules/mdadm/conf.ts';
import * as F from '../../modules/mdadm/facts.ts';


const load = fixture;

const D = (n: number) => `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d${n}`;
const UUID1 = 'dc4d8577:72dab199:41b08c0b:eede6a45';
const UUID5 = '15341dae:f6fbed9e:893d897a:ef674413';

test('recorded with mdadm 4.2 and util-linux 2.38.1, by the very commands gather runs', (t) => {
  const p = mdadm.validate({ name: 'data1', level: 1, devices: [D(1), D(2)] });
  const script = gatherScript(p, '/etc/mdadm/mdadm.conf', 'debian').display;
  for (const name of ['detail-export-raid1', 'detail-raid1-clean', 'examine-export-member', 'examine-blank', 'mdstat-clean', 'detail-missing']) {
    const f = load(`mdadm/${name}`);
    t.regex(f.tool, /^mdadm - v4\.2 /);
    const command = f.command.replace('/dev/md/nosuch', '/dev/md/data1');
    t.true(script.includes(`; ${command}; e $?`), `${f.command} is run by gather`);
  }
  for (const name of ['blank', 'xfs', 'ext4', 'gpt', 'raid-member', 'empty-partition']) {
    const f = load(`blkid/${name}`);
    t.regex(f.tool, /^util-linux 2\.38\.1/);
    t.regex(f.command, /^blkid -p -o export \/dev\/disk\/by-id\//);
  }
  t.true(script.includes(`; blkid -p -o export ${D(1)}; e $?`));
});

test('detail --export of a RAID1, with a spare, and of a RAID5', (t) => {
  const r1 = P.parseDetailExport(load('mdadm/detail-export-raid1').stdout);
  t.deepEqual(r1, {
    level: 'raid1',
    raidDevices: 2,
    metadata: '1.2',
    uuid: UUID1,
    devname: 'data1',
    name: 'sto1:data1',
    devices: [
      { dev: '/dev/sdc', role: 1 },
      { dev: '/dev/sdb', role: 0 },
    ],
  });
  const spare = P.parseDetailExport(load('mdadm/detail-export-raid1-spare').stdout);
  t.deepEqual(spare.devices.find((d) => d.dev === '/dev/sdf'), { dev: '/dev/sdf', role: 'spare' });
  const r5 = P.parseDetailExport(load('mdadm/detail-export-raid5').stdout);
  t.is(r5.level, 'raid5');
  t.is(r5.raidDevices, 3);
  t.is(r5.uuid, UUID5);
  t.is(r5.name, 'sto1:r5');
  t.deepEqual(r5.devices.map((d) => `${d.dev}=${d.role}`).sort(), ['/dev/sdd=1', '/dev/sde=2', '/dev/sdg=0']);
});

test('detail of a clean RAID1: state, members by major:minor, no chunk, no bitmap, no sync', (t) => {
  const d = P.parseDetail(load('mdadm/detail-raid1-clean').stdout);
  t.is(d.level, 'raid1');
  t.is(d.raidDevices, 2);
  t.deepEqual(d.state, ['clean']);
  t.is(d.chunkKiB, null);
  t.is(d.consistencyPolicy, 'resync');
  t.false(d.bitmap);
  t.is(d.name, 'sto1:data1');
  t.is(d.uuid, UUID1);
  t.is(d.sync, null);
  t.deepEqual(d.members, [
    { majMin: '8:16', raidDevice: 0, state: ['active', 'sync'], device: '/dev/sdb' },
    { majMin: '8:32', raidDevice: 1, state: ['active', 'sync'], device: '/dev/sdc' },
  ]);
});

test('detail while resyncing, with a spare, with a failed member rebuilding onto the spare, and rebuilt', (t) => {
  const resync = P.parseDetail(load('mdadm/detail-raid1-resync').stdout);
  t.deepEqual(resync.state, ['clean', 'resyncing']);
  t.deepEqual(resync.sync, { action: 'resync', percent: 33, finishMinutes: null });

  const spare = P.parseDetail(load('mdadm/detail-raid1-spare').stdout);
  t.is(spare.spareDevices, 1);
  t.deepEqual(spare.members[2], { majMin: '8:80', raidDevice: null, state: ['spare'], device: '/dev/sdf' });

  const failed = P.parseDetail(load('mdadm/detail-raid1-failed').stdout);
  t.deepEqual(failed.state, ['clean', 'degraded', 'recovering']);
  t.is(failed.failedDevices, 1);
  t.deepEqual(failed.sync, { action: 'recovery', percent: 17, finishMinutes: null });
  t.deepEqual(failed.members, [
    { majMin: '8:16', raidDevice: 0, state: ['active', 'sync'], device: '/dev/sdb' },
    { majMin: '8:80', raidDevice: 1, state: ['spare', 'rebuilding'], device: '/dev/sdf' },
    { majMin: '8:32', raidDevice: null, state: ['faulty'], device: '/dev/sdc' },
  ]);

  const rebuilt = P.parseDetail(load('mdadm/detail-raid1-rebuilt').stdout);
  t.deepEqual(rebuilt.state, ['clean']);
  t.deepEqual(rebuilt.members.map((m) => `${m.device}:${m.raidDevice}`), ['/dev/sdb:0', '/dev/sdf:1']);
});

test('detail of a RAID5: chunk, degraded with an empty slot, recovering', (t) => {
  const clean = P.parseDetail(load('mdadm/detail-raid5-clean').stdout);
  t.is(clean.level, 'raid5');
  t.is(clean.chunkKiB, 64);
  t.is(clean.fields['Layout'], 'left-symmetric');
  t.deepEqual(clean.members.map((m) => m.majMin), ['8:96', '8:48', '8:64']);

  const degraded = P.parseDetail(load('mdadm/detail-raid5-degraded').stdout);
  t.deepEqual(degraded.state, ['clean', 'degraded']);
  t.deepEqual(degraded.members[2], { majMin: '0:0', raidDevice: 2, state: ['removed'], device: null });

  const recovery = P.parseDetail(load('mdadm/detail-raid5-recovery').stdout);
  t.deepEqual(recovery.state, ['clean', 'degraded', 'recovering']);
  t.deepEqual(recovery.sync, { action: 'recovery', percent: 18, finishMinutes: null });
  t.deepEqual(recovery.members[2]?.state, ['spare', 'rebuilding']);
});

test('examine --export: a member, a removed member, a stopped array; nothing on a blank disk', (t) => {
  const member = P.parseExamineExport(load('mdadm/examine-export-member').stdout);
  t.deepEqual(member, { level: 'raid1', raidDevices: 2, name: 'sto1:data1', uuid: UUID1, deviceUuid: '4c10ab6f:862088ca:f714f9d0:1064c0e5', events: 18 });
  const removed = P.parseExamineExport(load('mdadm/examine-export-removed').stdout);
  t.is(removed?.uuid, UUID1);
  t.is(removed?.events, 19);
  t.is(P.parseExamineExport(load('mdadm/examine-export-stopped').stdout)?.events, 39);
  const blank = load('mdadm/examine-blank');
  t.is(blank.exitCode, 1);
  t.is(P.parseExamineExport(blank.stdout), null);
  // The human form says the same array and role.
  t.regex(load('mdadm/examine-member').stdout, new RegExp(`Array UUID : ${UUID1}`));
});

test('/proc/mdstat: clean, resync, recovery, a failed member, read-only, empty', (t) => {
  const clean = P.parseMdstat(load('mdadm/mdstat-clean').stdout);
  t.deepEqual(clean.map((a) => [a.device, a.level, a.raidDevices, a.inSync, a.status, a.chunkKiB]), [
    ['md126', 'raid5', 3, 3, 'UUU', 64],
    ['md127', 'raid1', 2, 2, 'UU', null],
  ]);
  t.deepEqual(clean[0]?.members, [
    { name: 'sde', slot: 3, flags: [] },
    { name: 'sdd', slot: 1, flags: [] },
    { name: 'sdg', slot: 0, flags: [] },
  ]);
  t.is(clean[1]?.blocks, 523264);

  const resync = P.parseMdstat(load('mdadm/mdstat-resync').stdout);
  t.deepEqual(resync[0]?.sync, { action: 'resync', percent: 21, finishMinutes: 0.1 });

  const rebuild = P.parseMdstat(load('mdadm/mdstat-rebuild').stdout).find((a) => a.device === 'md127');
  t.deepEqual(rebuild?.members.find((m) => m.name === 'sdc'), { name: 'sdc', slot: 1, flags: ['F'] });
  t.is(rebuild?.status, 'U_');
  t.deepEqual(rebuild?.sync, { action: 'recovery', percent: 6.5, finishMinutes: 0.2 });

  const r5 = P.parseMdstat(load('mdadm/mdstat-raid5-recovery').stdout);
  t.deepEqual(r5[0]?.sync, { action: 'recovery', percent: 14.6, finishMinutes: 0.3 });
  t.is(r5[1]?.sync, null);

  const degraded = P.parseMdstat(load('mdadm/mdstat-degraded').stdout);
  t.deepEqual(degraded.map((a) => [a.device, a.readOnly, a.level, a.status]), [
    ['md126', 'auto-read-only', 'raid5', 'UU_'],
    ['md127', 'auto-read-only', 'raid1', 'UU'],
  ]);

  t.deepEqual(P.parseMdstat(load('mdadm/mdstat-empty').stdout), []);
  t.deepEqual(P.parseMdstat(load('mdadm/mdstat-one-stopped').stdout).map((a) => a.device), ['md126']);
});

test('blkid -p: what a disk holds, in words; a blank disk and an empty partition hold nothing', (t) => {
  const blank = load('blkid/blank');
  t.is(blank.exitCode, 2);
  t.deepEqual(P.parseKeyValues(blank.stdout), {});
  t.is(P.describeBlkid(P.parseKeyValues(load('blkid/xfs').stdout)), 'an xfs filesystem labelled keep');
  t.is(P.describeBlkid(P.parseKeyValues(load('blkid/ext4').stdout)), 'an ext4 filesystem labelled other');
  t.is(P.describeBlkid(P.parseKeyValues(load('blkid/gpt').stdout)), 'a gpt partition table');
  const raid = P.parseKeyValues(load('blkid/raid-member').stdout);
  t.is(P.describeBlkid(raid), `a member of RAID array sto1:data1 (md metadata 1.2, UUID ${UUID1})`);
  // blkid's UUID of a member is the array UUID mdadm --examine gives, spelled differently.
  t.true(P.sameUuid(raid['UUID'], P.parseExamineExport(load('mdadm/examine-export-member').stdout)?.uuid));
  t.is(P.metadataVersion(raid['VERSION'] ?? ''), '1.2');
  const part = P.parseKeyValues(load('blkid/empty-partition').stdout);
  t.is(part['PART_ENTRY_NAME'], 'data');
  t.is(P.describeBlkid(part), null);
});

test('lsblk -J: partitions and mounts make a disk used; blank disks are not', (t) => {
  const blank = P.parseLsblk(load('lsblk/sto1-blank-disks').stdout);
  const node = (nodes: P.LsblkNode[], path: string) => nodes.find((n) => n.path === path) ?? t.fail(`no ${path}`);
  t.deepEqual(P.deviceUse(node(blank, '/dev/sdb')), { partitions: [], holders: [], mounts: [] });
  t.deepEqual(P.deviceUse(node(blank, '/dev/sda')), { partitions: ['/dev/sda1'], holders: [], mounts: ['/'] });
  const mixed = P.parseLsblk(load('lsblk/sto1-mixed').stdout);
  t.deepEqual(P.deviceUse(node(mixed, '/dev/sde')).partitions, ['/dev/sde1', '/dev/sde2']);
  t.deepEqual(P.deviceUse(node(mixed, '/dev/sdf')).partitions, ['/dev/sdf1']);
  t.deepEqual(P.deviceUse(node(mixed, '/dev/sdg')), { partitions: [], holders: [], mounts: [] });
  // A path of a multipath map is held by the map (whose partition is the map's, not the disk's); a device held by
  // the array being managed is not "in use" for it.
  const mpath = P.parseLsblk(load('lsblk/chunk1-multipath').stdout);
  t.deepEqual(P.deviceUse(node(mpath, '/dev/sdb')), { partitions: [], holders: ['/dev/mapper/mpathb (mpath)'], mounts: [] });
  t.deepEqual(P.deviceUse(node(mpath, '/dev/sdc'), '/dev/mapper/mpathb'), { partitions: [], holders: [], mounts: [] });
});

test('the ARRAY line is written exactly as mdadm --detail --brief prints it', (t) => {
  const brief = load('mdadm/detail-brief');
  const lines = ['detail-export-raid1', 'detail-export-raid5'].map((name) => {
    const e = P.parseDetailExport(load(`mdadm/${name}`).stdout);
    return C.arrayLine(`/dev/md/${e.devname}`, e.metadata ?? '', e.name, e.uuid ?? '');
  });
  t.is(`${lines.join('\n')}\n`, brief.stdout);
});

test('mdadm.conf: an up-to-date line is kept; a stale one is replaced in place; removal keeps the other lines', (t) => {
  const conf = `HOMEHOST <system>\nMAILADDR root\n${load('mdadm/detail-brief').stdout}`;
  const [data1, r5] = load('mdadm/detail-brief').stdout.trimEnd().split('\n') as [string, string];
  t.is(C.editConf(conf, data1, { device: '/dev/md/data1', uuid: UUID1 }), null);
  t.is(C.parseConf(conf).homehost, '<system>');
  const fresh = C.arrayLine('/dev/md/data1', '1.2', 'sto1:data1', '0b5f8e9c-6a1d-4c2e-9f3a-7d8e1c2b4a6f');
  t.is(C.editConf(conf, fresh, { device: '/dev/md/data1', uuid: UUID1 }), `HOMEHOST <system>\nMAILADDR root\n${fresh}\n${r5}\n`);
  t.is(C.editConf(conf, null, { device: '/dev/md/data1', uuid: UUID1 }), `HOMEHOST <system>\nMAILADDR root\n${r5}\n`);
  t.is(C.editConf('MAILADDR root', data1, { device: '/dev/md/data1', uuid: UUID1 }), `MAILADDR root\n${data1}\n`);
  // Same words in another order, and a continuation line: the same entry.
  const reordered = `ARRAY /dev/md/data1 UUID=${UUID1.toUpperCase()}\n  name=sto1:data1 metadata=1.2\n`;
  t.is(C.editConf(reordered, data1, { device: '/dev/md/data1', uuid: UUID1 }), null);
});

test('the gather script frames every section so that splitSections gets each output and exit code back (real sh)', (t) => {
  const script = framedScript([
    ['with-newline', sh`printf 'a\\nb\\n'`],
    ['no-newline', sh`printf x`],
    ['empty', sh`true`],
    ['fails', sh`printf 'partial\\n'; false`],
    ['quoted key', cmd('printf', '%s', "it's")],
  ]);
  const out = execFileSync('sh', ['-c', script.script.toString('utf8')], { encoding: 'utf8' });
  const s = P.splitSections(out);
  t.deepEqual([...s.entries()], [
    ['with-newline', { stdout: 'a\nb\n', exitCode: 0 }],
    ['no-newline', { stdout: 'x', exitCode: 0 }],
    ['empty', { stdout: '', exitCode: 0 }],
    ['fails', { stdout: 'partial\n', exitCode: 1 }],
    ['quoted key', { stdout: "it's", exitCode: 0 }],
  ]);
  t.throws(() => P.splitSections(`${P.MARK} begin x\nabc`), { message: /section x has no end marker/ });
});

/** The gather output as the script frames it, from recorded outputs (the framing is ours, the outputs are not). */
function framed(sections: readonly [string, { stdout: string; exitCode: number }][]): string {
  return sections.map(([key, s]) => `${P.MARK} begin ${key}\n${s.stdout}\n${P.MARK} end ${s.exitCode}\n`).join('');
}

test('parseGather: a running RAID1 and its two members, from recorded outputs', (t) => {
  const ok = (stdout: string) => ({ stdout, exitCode: 0 });
  const member = (i: number, majMin: string, kernel: string) =>
    [
      [`dev.${i}.stat`, ok(`${majMin.split(':').map((n) => Number(n).toString(16)).join(':')} block special file\n`)],
      [`dev.${i}.real`, ok(`${kernel}\n`)],
      [`dev.${i}.examine`, load('mdadm/examine-export-member')],
      [`dev.${i}.blkid`, load('blkid/raid-member')],
      [`dev.${i}.lsblk`, ok(JSON.stringify({ blockdevices: [JSON.parse(load('lsblk/sto1-blank-disks').stdout).blockdevices.find((n: { path: string }) => n.path === kernel)] }))],
    ] as [string, { stdout: string; exitCode: number }][];
  const brief = load('mdadm/detail-brief').stdout;
  const stdout = framed([
    ['mdadm', ok('/usr/sbin/mdadm\n')],
    ['uid', ok('0\n')],
    ['detail-export', load('mdadm/detail-export-raid1')],
    ['detail', load('mdadm/detail-raid1-clean')],
    ['array-real', ok('/dev/md127\n')],
    ['mdstat', load('mdadm/mdstat-clean')],
    ['uuid', ok('0b5f8e9c-6a1d-4c2e-9f3a-7d8e1c2b4a6f\n')],
    ['conf-exists', ok('')],
    ['conf', ok(brief)],
    ['conf-mtime', ok('1795254400\n')],
    // Images the update command does not rebuild are ignored (else the initramfs would never look up to date).
    ['initramfs', ok('1795254500 /boot/initrd.img-6.1.0-28-amd64\n1795254300 /boot/initrd.img-6.1.0-28-amd64.old-dkms\n1 /boot/initramfs-5.14.0-427.el9.x86_64kdump.img\n1 /boot/initramfs-0-rescue-4f1c.img\n')],
    ...member(0, '8:16', '/dev/sdb'),
    ...member(1, '8:32', '/dev/sdc'),
  ]);
  const f = F.parseGather('/dev/md/data1', [D(1), D(2)], { name: 'sto1', hostname: 'sto1', family: 'debian', configPath: '/etc/mdadm/mdadm.conf' }, stdout);
  t.is(f.array?.kernelDevice, '/dev/md127');
  t.is(f.array?.export.uuid, UUID1);
  t.deepEqual(f.array?.detail.state, ['clean']);
  t.is(f.mdstat.length, 2);
  t.is(f.freshUuid, '0b5f8e9c:6a1d4c2e:9f3a7d8e:1c2b4a6f');
  t.is(f.conf, brief);
  t.is(f.confMtime, 1795254400);
  t.deepEqual(f.initramfs, [{ path: '/boot/initrd.img-6.1.0-28-amd64', mtime: 1795254500 }]);
  t.is(f.devices[D(1)]?.majMin, '8:16');
  t.is(f.devices[D(2)]?.realPath, '/dev/sdc');
  t.is(f.devices[D(1)]?.superblock?.name, 'sto1:data1');
  t.is(f.devices[D(1)]?.blkid?.['TYPE'], 'linux_raid_member');
  t.is(f.devices[D(1)]?.lsblk?.name, 'sdb');
  t.deepEqual(F.arrayOutput(f, 'data1', '/dev/md/data1'), {
    device: '/dev/md/data1',
    kernelDevice: '/dev/md127',
    uuid: UUID1,
    level: 'raid1',
    state: 'clean',
    degraded: false,
    members: ['/dev/sdb', '/dev/sdc'],
    spares: [],
    failed: [],
  });
  // No mdadm on the host, or a section missing, is a clear error.
  t.throws(() => F.parseGather('/dev/md/data1', [], { name: 'sto1', hostname: 'sto1', family: 'debian', configPath: '/x' }, framed([['mdadm', { stdout: '', exitCode: 127 }]])), {
    message: 'mdadm /dev/md/data1 on sto1: mdadm is not installed',
  });
  const asUser = framed([['mdadm', { stdout: '/usr/sbin/mdadm\n', exitCode: 0 }], ['uid', { stdout: '1000\n', exitCode: 0 }]]);
  t.throws(() => F.parseGather('/dev/md/data1', [], { name: 'sto1', hostname: 'sto1', family: 'debian', configPath: '/x' }, asUser), {
    message: 'mdadm /dev/md/data1 on sto1: mdadm needs root (set become: true)',
  });
});
