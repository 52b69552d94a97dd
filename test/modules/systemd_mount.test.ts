/**
 * systemd_mount: unit names as systemd-escape --path makes them, the unit file and fstab line, the real gather
 * script run by /bin/sh with systemctl/findmnt/readlink/blkid replaced by functions replaying what chunk1 gave
 * (systemd 252, util-linux 2.38.1: mnt-chunk1.mount, the XFS partition of mpathb), and the plans: converged,
 * the recorded hand-started unit, not mounted, a wrong device or type (destructive), unmounted, absent, fstab.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DestructiveChangeError, runModule } from '../../lib/apply.ts';
import type { Command } from '../../lib/command.ts';
import type { Connection } from '../../lib/connection/types.ts';
import type { HostFacts } from '../../lib/facts.ts';
import type { Change } from '../../lib/module.ts';
import { fixture, runStubbed, type Reply, type Stubs } from '../helpers/blockdev-stubs.ts';
import { parseBlkid } from '../../modules/blockdev.ts';
import { parseSystemctlShow } from '../../modules/service.ts';
import { deviceUnit, dropinPath, escapePath, gatherScript, parseFindmnt, parseGather, renderDropin, renderUnit, systemdMount, unitName, wanted, type SystemdMountFacts } from '../../modules/systemd_mount.ts';

const WHERE = '/mnt/chunk1';
const LABEL = '/dev/disk/by-label/chunk1data';
const UUID = '5527a009-353f-4693-b1d9-d1e0d960c351';

test('unit names: systemd-escape --path --suffix=mount', (t) => {
  const cases: [string, string][] = [
    ['/mnt/data_chunk1', 'mnt-data_chunk1.mount'],
    ['/mnt/chunk1', 'mnt-chunk1.mount'],
    ['/', '-.mount'],
    ['/var/lib/my-dir', 'var-lib-my\\x2ddir.mount'],
    ['/tmp//waldi/foobar/', 'tmp-waldi-foobar.mount'],
    ['/mnt/my disk', 'mnt-my\\x20disk.mount'],
    ['/.snapshots', '\\x2esnapshots.mount'],
    ['/home/foo/.config', 'home-foo-.config.mount'],
    ['/mnt/a.b:c', 'mnt-a.b:c.mount'],
    ['/mnt/ü', 'mnt-\\xc3\\xbc.mount'],
    ['/mnt/a\\b', 'mnt-a\\x5cb.mount'],
    ['/dev/disk/by-label/chunk1data', 'dev-disk-by\\x2dlabel-chunk1data.mount'],
  ];
  for (const [path, name] of cases) t.is(unitName(path), name, path);
  t.is(escapePath('/srv/a-b/c'), 'srv-a\\x2db-c');
  t.throws(() => unitName('/mnt/../etc'), { message: /not a normalized path/ });
  t.throws(() => unitName('mnt'), { message: /not an absolute path/ });
  t.throws(() => unitName(`/${'x'.repeat(250)}`), { message: /systemd allows 255/ });
  t.throws(() => systemdMount.validate({ where: '/mnt/./x', state: 'absent' }));
});

// ---------------------------------------------------------------- gather, for real under /bin/sh

const found = (path: string): Reply => ({ stdout: `${path}\n`, exitCode: 0 });
const missing: Reply = { stdout: '', exitCode: 1 };

/** chunk1 as recorded: mnt-chunk1.mount started by hand, /dev/mapper/mpathb-part1 (dm-1) mounted, LABEL chunk1data on dm-1. */
function chunk1(over: Stubs = {}): Stubs {
  return {
    systemctl: [['show *', fixture('service/mount-active')]],
    findmnt: [[`-J -o TARGET,SOURCE,FSTYPE,OPTIONS ${WHERE}`, fixture('findmnt/mounted')], [`-n -o SOURCE ${WHERE}`, found('/dev/mapper/mpathb-part1')]],
    readlink: [['-e -- /dev/mapper/mpathb-part1', found('/dev/dm-1')], [`-e -- ${LABEL}`, found('/dev/dm-1')], ['*', missing]],
    blkid: [['-p -o export /dev/dm-1', fixture('blkid/xfs-on-mpath')]],
    ...over,
  };
}

function gather(t: { teardown(f: () => void): void }, params: object, stubs: Stubs): SystemdMountFacts {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-mount-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const p = systemdMount.validate(params);
  return parseGather(runStubbed(gatherScript(p.where, p.what), stubs, dir), p);
}

const task = { where: WHERE, what: LABEL, type: 'xfs' };

test('recorded on chunk1 (systemd 252, util-linux 2.38.1) by the commands gather runs', (t) => {
  const script = gatherScript(WHERE, LABEL).display;
  for (const name of ['findmnt/mounted', 'service/mount-active']) t.true(script.includes(fixture(name).command), name);
  t.is(fixture('findmnt/not-mounted').exitCode, 1);
});

test('gather: the recorded mount; the label and the mounted source are the same device (dm-1)', (t) => {
  const f = gather(t, task, chunk1());
  t.deepEqual(f.mounted, { source: '/dev/mapper/mpathb-part1', fstype: 'xfs', options: 'rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota' });
  t.is(f.mountedDevice, '/dev/dm-1');
  t.is(f.device, '/dev/dm-1');
  t.like(f.signature, { type: 'xfs', label: 'chunk1data', uuid: UUID });
  t.like(f.service, { id: 'mnt-chunk1.mount', activeState: 'active', subState: 'mounted', unitFileState: 'disabled', canReload: true });
  t.is(f.unitFile, null, 'no unit file of that name on this machine');
});

test('gather: nothing mounted (findmnt exit 1), the device missing: no source, no device, no signature', (t) => {
  const f = gather(t, { ...task, what: 'UUID=0000' }, chunk1({ findmnt: [['-J *', fixture('findmnt/not-mounted')], ['-n *', missing]] }));
  t.is(f.mounted, null);
  t.is(f.mountedDevice, null);
  t.is(f.device, null, 'UUID=0000 is looked up as /dev/disk/by-uuid/0000');
  t.is(f.signature, null);
  // Another filesystem mounted over the recorded one: the one on top (listed last) is what is there.
  const doc = JSON.parse(fixture('findmnt/mounted').stdout) as { filesystems: { source: string; fstype: string }[] };
  const over = { ...doc.filesystems[0], source: '/dev/sdz1', fstype: 'ext4' };
  t.like(parseFindmnt(JSON.stringify({ filesystems: [...doc.filesystems, over] }), 0, WHERE), { source: '/dev/sdz1', fstype: 'ext4' });
  t.is(parseFindmnt(JSON.stringify({ filesystems: [{ ...over, target: '/mnt/chunk1/sub' }] }), 0, WHERE), null, 'only a mount at where itself');
  t.throws(() => parseFindmnt('', 2, WHERE, 'findmnt: bad usage'), { message: /findmnt \/mnt\/chunk1 failed \(exit 2\): findmnt: bad usage/ });
});

// ---------------------------------------------------------------- plans

const mountFacts = (over: Partial<SystemdMountFacts> = {}): SystemdMountFacts => ({
  unitFile: null,
  fstab: 'UUID=8fc70a6f-6504-4219-9d78-925c712e97c4 / ext4 errors=remount-ro 0 1\n',
  service: parseSystemctlShow(fixture('service/mount-active').stdout, 'mnt-chunk1.mount'),
  mounted: parseFindmnt(fixture('findmnt/mounted').stdout, 0, WHERE),
  mountedDevice: '/dev/dm-1',
  device: '/dev/dm-1',
  signature: parseBlkid(fixture('blkid/xfs-on-mpath').stdout, 0),
  dropins: {},
  ...over,
});
const ours = (params: object, over: Partial<SystemdMountFacts> = {}) => {
  const p = systemdMount.validate(params);
  return mountFacts({ unitFile: renderUnit(wanted(p)), service: { ...mountFacts().service, unitFileState: 'enabled' }, ...over });
};
const plan = (params: object, f: SystemdMountFacts) => systemdMount.plan(systemdMount.validate(params), f);
const summaries = (c: readonly Change[]) => c.map((x) => x.summary);
const steps = (c: readonly Change[]) => c.flatMap((x) => x.steps.map((s) => (s.kind === 'exec' ? s.command.display : `put ${s.path}`)));
const UNIT = '/etc/systemd/system/mnt-chunk1.mount';

test('the unit file: network storage by default (_netdev, after the network and iscsid, remote-fs.target); requiredBy ordered before', (t) => {
  const text = renderUnit(wanted(systemdMount.validate({ ...task, requiredBy: ['moosefs-chunkserver.service'] })));
  t.is(
    text,
    [
      '# Managed by sanbook (systemd_mount module): changes made here are overwritten.',
      '[Unit]',
      `Description=${LABEL} on ${WHERE}`,
      'After=network-online.target remote-fs-pre.target iscsid.service',
      'Wants=network-online.target',
      'Before=moosefs-chunkserver.service',
      '',
      '[Mount]',
      `What=${LABEL}`,
      `Where=${WHERE}`,
      'Type=xfs',
      'Options=defaults,_netdev',
      '',
      '[Install]',
      'WantedBy=remote-fs.target',
      'RequiredBy=moosefs-chunkserver.service',
      '',
    ].join('\n'),
  );
  const local = renderUnit(wanted(systemdMount.validate({ where: '/srv/50%', what: 'UUID=AB-12', type: 'ext4', network: false, options: ['noatime'] })));
  t.regex(local, /\nWhat=\/dev\/disk\/by-uuid\/AB-12\nWhere=\/srv\/50%%\nType=ext4\nOptions=noatime\n\n\[Install\]\nWantedBy=local-fs.target\n$/);
  t.false(local.includes('After='));
});

test('plan: converged (our unit, enabled, the right filesystem mounted): nothing to do', (t) => {
  t.deepEqual(plan(task, ours(task)), []);
  const fstab = `UUID=${UUID} ${WHERE} xfs defaults,_netdev 0 0\n`;
  const generated = { ...mountFacts().service, unitFileState: 'generated' };
  t.deepEqual(plan({ ...task, fstab: true }, mountFacts({ fstab: `# static\n${fstab}`, service: generated })), [], 'fstab form');
});

test('plan: the recorded state (unit started by hand, disabled): the unit is rewritten, reloaded, enabled; no remount', (t) => {
  const changes = plan(task, mountFacts({ unitFile: '[Unit]\nDescription=chunk1 data\n[Mount]\nWhat=/dev/disk/by-label/chunk1data\nWhere=/mnt/chunk1\nType=xfs\nOptions=defaults,_netdev\n[Install]\nWantedBy=remote-fs.target\n' }));
  t.deepEqual(summaries(changes), [`update ${UNIT}; daemon-reload`, 'enable mnt-chunk1.mount (remote-fs.target)']);
  t.deepEqual(steps(changes), [`put ${UNIT}`, 'systemctl daemon-reload', 'systemctl enable mnt-chunk1.mount']);
  t.is(changes.some((c) => c.destructive), false);
});

test('plan: not mounted: mount it; a note when the device is missing or holds another filesystem', (t) => {
  const none = { mounted: null, mountedDevice: null };
  t.deepEqual(summaries(plan(task, ours(task, none))), [`mount ${LABEL} (/dev/dm-1) on ${WHERE} (start mnt-chunk1.mount)`]);
  t.deepEqual(steps(plan(task, ours(task, none))), ['systemctl start mnt-chunk1.mount']);
  t.regex(summaries(plan(task, ours(task, { ...none, device: null, signature: null })))[0] ?? '', /does not exist now: systemd waits for it \(90 s\) and fails$/);
  t.regex(summaries(plan({ ...task, type: 'ext4' }, ours({ ...task, type: 'ext4' }, none)))[0] ?? '', /\/dev\/dm-1 holds an xfs filesystem labelled chunk1data now, not ext4$/);
});

test('plan: another device mounted there is replaced, destructive, naming both and the units that stop', (t) => {
  const p = { ...task, what: '/dev/mapper/mpatha-part1', requiredBy: ['moosefs-chunkserver.service'] };
  const changes = plan(p, ours(p, { device: '/dev/dm-3' }));
  t.is(changes.length, 1);
  t.is(changes[0]?.summary, `remount ${WHERE}: /dev/mapper/mpathb-part1 (xfs) is mounted there, not /dev/mapper/mpatha-part1 (/dev/dm-3) (xfs): stop mnt-chunk1.mount, then start it`);
  t.is(changes[0]?.destructive, `${WHERE} has /dev/mapper/mpathb-part1 (xfs) mounted, not /dev/mapper/mpatha-part1 (xfs): unmounting it cuts off whoever uses it and stops moosefs-chunkserver.service`);
  t.deepEqual(steps(changes), ['systemctl stop mnt-chunk1.mount', 'systemctl start mnt-chunk1.mount']);
  const type = plan({ ...task, type: 'ext4' }, ours({ ...task, type: 'ext4' }));
  t.truthy(type[0]?.destructive, 'the right device with another type is wrong too');
  t.throws(() => plan(task, ours(task, { device: null })), { message: `${LABEL} does not exist, and ${WHERE} has /dev/mapper/mpathb-part1 (xfs) mounted: left as it is` });
});

test('runModule: the wrong device is refused without force and nothing runs but the gather', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-mount-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stubs = chunk1({ readlink: [['-e -- /dev/mapper/mpathb-part1', found('/dev/dm-1')], ['-e -- /dev/mapper/mpatha-part1', found('/dev/dm-3')], ['*', missing]], blkid: [['*', fixture('blkid/xfs-on-mpath')]] });
  const puts: string[] = [];
  let count = 0;
  const conn: Connection = { host: 'chunk1', exec: async (c: Command) => (count++, { exitCode: 0, stdout: runStubbed(c, stubs, dir), stderr: '' }), put: async (path: string) => void puts.push(path), close: async () => {}, get commandCount() { return count; } } as unknown as Connection;
  const facts = { systemd: true, os: { family: 'debian' } } as unknown as HostFacts;
  const e = await t.throwsAsync(runModule(conn, systemdMount, { ...task, what: '/dev/mapper/mpatha-part1' }, { facts }), { instanceOf: DestructiveChangeError });
  t.is(e?.refused.length, 1);
  t.regex(e?.refused[0]?.destructive ?? '', /^\/mnt\/chunk1 has \/dev\/mapper\/mpathb-part1 \(xfs\) mounted, not \/dev\/mapper\/mpatha-part1/);
  t.deepEqual(puts, []);
  t.is(count, 1);
});

test('plan: new options on the mounted filesystem: unit rewritten, then a remount (systemctl reload)', (t) => {
  const p = { ...task, options: ['noatime'] };
  const changes = plan(p, ours(task));
  t.deepEqual(summaries(changes), [`update ${UNIT}; daemon-reload`, `remount ${WHERE} with noatime,_netdev (was defaults,_netdev): systemctl reload mnt-chunk1.mount`]);
});

test('plan: a changed [Install] section re-enables (enable alone would keep the old wants link)', (t) => {
  const changes = plan({ ...task, wantedBy: ['multi-user.target'] }, ours(task));
  t.deepEqual(summaries(changes), [`update ${UNIT}; daemon-reload`, 'reenable mnt-chunk1.mount (multi-user.target: its [Install] section changed)']);
  t.deepEqual(summaries(plan({ ...task, enabled: false }, ours(task))), ['disable mnt-chunk1.mount']);
  t.deepEqual(summaries(plan(task, ours(task, { service: { ...mountFacts().service, unitFileState: 'enabled', needDaemonReload: true } }))), ['reload systemd unit files (mnt-chunk1.mount changed on disk)']);
});

test('plan: unmounted stops it; absent stops, disables, removes the unit and reloads, in that order', (t) => {
  t.deepEqual(summaries(plan({ ...task, state: 'unmounted' }, ours(task))), [`unmount ${WHERE}: /dev/mapper/mpathb-part1 (xfs) (stop mnt-chunk1.mount)`]);
  const absent = plan({ where: WHERE, state: 'absent', requiredBy: ['moosefs-chunkserver.service'] }, ours(task));
  t.deepEqual(summaries(absent), [`unmount ${WHERE}: /dev/mapper/mpathb-part1 (xfs) (stop mnt-chunk1.mount; moosefs-chunkserver.service stop too)`, `disable and remove ${UNIT}; daemon-reload`]);
  t.deepEqual(steps(absent), ['systemctl stop mnt-chunk1.mount', 'systemctl disable mnt-chunk1.mount', `rm -f -- ${UNIT}`, 'systemctl daemon-reload']);
  t.is(absent.some((c) => c.destructive), false, 'absent is what the task asks');
  t.deepEqual(plan({ where: WHERE, state: 'absent' }, mountFacts({ mounted: null, mountedDevice: null })), [], 'absent already');
  t.throws(() => plan({ where: WHERE }, mountFacts()), { message: /what and type are required unless state is absent/ });
  const masked = parseSystemctlShow(fixture('service/masked').stdout, 'mnt-chunk1.mount');
  t.throws(() => plan(task, mountFacts({ service: masked })), { message: 'mnt-chunk1.mount is masked: unmask it first' });
});

test('plan: fstab form: a line by UUID with _netdev replaces the unit file; back to a unit removes the line', (t) => {
  const line = `UUID=${UUID} ${WHERE} xfs defaults,_netdev,x-systemd.before=moosefs-chunkserver.service,x-systemd.required-by=moosefs-chunkserver.service 0 0`;
  const root = 'UUID=8fc70a6f-6504-4219-9d78-925c712e97c4 / ext4 errors=remount-ro 0 1\n';
  const toFstab = plan({ ...task, fstab: true, requiredBy: ['moosefs-chunkserver.service'] }, ours(task, { fstab: `${root}/dev/sdb1 /mnt/chunk1/ ext4 defaults 0 2` }));
  t.deepEqual(summaries(toFstab), [`update the /etc/fstab line of ${WHERE}`, `disable and remove ${UNIT} (the /etc/fstab line replaces it); daemon-reload`]);
  t.deepEqual(toFstab[0]?.diff?.after, `${root}${line}`);
  t.deepEqual(steps(toFstab), ['put /etc/fstab', 'systemctl disable mnt-chunk1.mount', `rm -f -- ${UNIT}`, 'systemctl daemon-reload']);
  const toUnit = plan(task, mountFacts({ fstab: `${root}${line}\n`, service: { ...mountFacts().service, unitFileState: 'generated' } }));
  t.deepEqual(summaries(toUnit), [`remove the /etc/fstab line of ${WHERE} (the unit mnt-chunk1.mount replaces it)`, `create ${UNIT}; daemon-reload`, 'enable mnt-chunk1.mount (remote-fs.target)']);
  t.is(toUnit[0]?.diff?.after, root);
  const spaced = plan({ where: '/mnt/my disk', what: 'LABEL=data', type: 'ext4', fstab: true, enabled: false }, mountFacts({ fstab: null, mounted: null }));
  t.is(spaced[0]?.diff?.after, 'LABEL=data /mnt/my\\040disk ext4 defaults,_netdev,noauto 0 2\n');
  t.throws(() => plan({ ...task, fstab: true }, mountFacts({ signature: null })), { message: /fstab lines name the filesystem by UUID, and \/dev\/disk\/by-label\/chunk1data has none now/ });
  t.throws(() => plan({ ...task, fstab: true, after: ['x.service'] }, mountFacts()), { message: /after cannot be given with fstab: true/ });
});

// ---------------------------------------------------------------- the device timeout

const MAP = '/dev/mapper/data_chunk1-part1';
const DEVICE_DIR = '/etc/systemd/system/dev-mapper-data_chunk1\\x2dpart1.device.d';
const DROPIN = `${DEVICE_DIR}/sanbook-mnt-chunk1.mount.conf`;

test('device timeout: the device unit is named as systemd names it (the journal of chunk1: dev-mapper-data_chunk1\\x2dpart1.device)', (t) => {
  t.is(deviceUnit(MAP), 'dev-mapper-data_chunk1\\x2dpart1.device');
  t.is(deviceUnit('UUID=74435bdf-f453-471f-aa85-ec5418d59cfd'), 'dev-disk-by\\x2duuid-74435bdf\\x2df453\\x2d471f\\x2daa85\\x2dec5418d59cfd.device');
  t.is(dropinPath(MAP, WHERE), DROPIN);
  t.is(renderDropin(WHERE, 300), '# Managed by sanbook (systemd_mount module, for mnt-chunk1.mount): how long systemd waits for this device at boot.\n[Unit]\nJobRunningTimeoutSec=300\n');
  t.throws(() => systemdMount.validate({ ...task, deviceTimeout: 0 }));
  t.throws(() => systemdMount.validate({ ...task, deviceTimeout: '5min' }));
});

test('device timeout: a drop-in of the device unit, then daemon-reload; converged once it is there; another device moves it', (t) => {
  const p = { where: WHERE, what: MAP, type: 'xfs', deviceTimeout: 300 };
  const text = renderDropin(WHERE, 300);
  const first = plan(p, ours(p));
  t.deepEqual(summaries(first), [`create ${DROPIN}: systemd waits 300 s for ${MAP} at boot; daemon-reload`]);
  t.deepEqual(steps(first), [`mkdir -p -- '${DEVICE_DIR}'`, `put ${DROPIN}`, 'systemctl daemon-reload']);
  t.deepEqual(plan(p, ours(p, { dropins: { [DROPIN]: text } })), []);
  t.deepEqual(summaries(plan({ ...p, deviceTimeout: 'infinity' }, ours(p, { dropins: { [DROPIN]: text } }))), [`update ${DROPIN}: systemd waits without limit for ${MAP} at boot; daemon-reload`]);
  const moved = plan({ ...p, what: '/dev/mapper/data_chunk2-part1' }, ours({ ...p, what: '/dev/mapper/data_chunk2-part1' }, { dropins: { [DROPIN]: text } }));
  t.deepEqual(summaries(moved).slice(0, 2), [
    `remove ${DROPIN} (the device timeout of mnt-chunk1.mount; dev-mapper-data_chunk2\\x2dpart1.device takes it now)`,
    `create /etc/systemd/system/dev-mapper-data_chunk2\\x2dpart1.device.d/sanbook-mnt-chunk1.mount.conf: systemd waits 300 s for /dev/mapper/data_chunk2-part1 at boot; daemon-reload`,
  ]);
  const dropped = plan({ where: WHERE, what: MAP, type: 'xfs' }, ours(p, { dropins: { [DROPIN]: text } }));
  t.deepEqual(steps(dropped), [`rm -f -- '${DROPIN}'`, 'systemctl daemon-reload'], 'no deviceTimeout: the drop-in goes');
  const absent = plan({ where: WHERE, state: 'absent' }, ours(p, { mounted: null, mountedDevice: null, dropins: { [DROPIN]: text } }));
  t.deepEqual(steps(absent), [`rm -f -- '${DROPIN}'`, 'systemctl disable mnt-chunk1.mount', `rm -f -- ${UNIT}`, 'systemctl daemon-reload']);
  t.regex(summaries(plan(p, ours(p, { mounted: null, mountedDevice: null, device: null, signature: null, dropins: { [DROPIN]: text } })))[0] ?? '', /does not exist now: systemd waits for it \(300 s\) and fails$/);
});

test('device timeout, fstab form: x-systemd.device-timeout= in the line, no drop-in', (t) => {
  const changes = plan({ ...task, fstab: true, deviceTimeout: 300 }, mountFacts());
  t.regex(changes[0]?.diff?.after ?? '', new RegExp(`^UUID=${UUID} ${WHERE} xfs defaults,_netdev,x-systemd.device-timeout=300 0 0$`, 'm'));
  t.false(steps(changes).some((s) => s.includes('.device.d')));
});

test('gather: the drop-ins this module wrote for the mount, found under any device unit, read with their paths', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-mount-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The real script, its unit directory moved under the temp dir: the loop, the glob and the sections run for real.
  const units = join(dir, 'units');
  const text = renderDropin(WHERE, 300);
  for (const [d, f] of [['dev-mapper-data_chunk1\\x2dpart1.device.d', 'sanbook-mnt-chunk1.mount.conf'], ['dev-sdb.device.d', 'sanbook-mnt-chunk1.mount.conf'], ['dev-sdc.device.d', 'sanbook-mnt-other.mount.conf']] as const) {
    mkdirSync(join(units, d), { recursive: true });
    writeFileSync(join(units, d, f), text);
  }
  const script = gatherScript(WHERE, MAP);
  t.true(script.display.includes('for f in /etc/systemd/system/*.device.d/sanbook-mnt-chunk1.mount.conf; do'), script.display);
  const moved = { ...script, script: Buffer.from(script.script.toString('utf8').replaceAll('/etc/systemd/system/', `${units}/`)) } as Command;
  const f = parseGather(runStubbed(moved, chunk1(), dir), systemdMount.validate({ where: WHERE, what: MAP, type: 'xfs' }));
  t.deepEqual(f.dropins, {
    [`${units}/dev-mapper-data_chunk1\\x2dpart1.device.d/sanbook-mnt-chunk1.mount.conf`]: text,
    [`${units}/dev-sdb.device.d/sanbook-mnt-chunk1.mount.conf`]: text,
  });
});
