/**
 * The mdadm module's plans, on facts parsed from output recorded on the lab VM sto1 (test/fixtures/mdadm, blkid,
 * lsblk). Disks as recorded: d1=sdb 8:16, d2=sdc 8:32, d3=sdg 8:96 (xfs "keep"), d4=sdd 8:48 (ext4 "other"),
 * d5=sde 8:64 (GPT, two partitions), d6=sdf 8:80 (msdos, one partition) in sto1-mixed; all blank in
 * sto1-blank-disks.
 */
import test from 'ava';
import { fixture } from '../helpers/fixtures.ts';
import type { Change } from '../../lib/module.ts';
import type { Connection } from '../../lib/connection/types.ts';
import type { HostFacts } from '../../lib/facts.ts';
import { mdadm, planMdadm, type MdadmFacts, type MdadmParams, type MemberFacts } from '../../modules/mdadm.ts';
import * as P from '../../modules/mdadm/parse.ts';

const load = fixture;

const D = (n: number) => `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d${n}`;
const UUID1 = 'dc4d8577:72dab199:41b08c0b:eede6a45';
const FRESH = '0b5f8e9c:6a1d4c2e:9f3a7d8e:1c2b4a6f';
const CONF = '/etc/mdadm/mdadm.conf';
const BRIEF = load('mdadm/detail-brief').stdout;
const [DATA1_LINE, R5_LINE] = BRIEF.trimEnd().split('\n') as [string, string];
const HEADER = 'HOMEHOST <system>\nMAILADDR root\n';
const BLANK = P.parseLsblk(load('lsblk/sto1-blank-disks').stdout);
const MIXED = P.parseLsblk(load('lsblk/sto1-mixed').stdout);
const DISKS: Record<number, [string, string]> = {
  1: ['/dev/sdb', '8:16'],
  2: ['/dev/sdc', '8:32'],
  3: ['/dev/sdg', '8:96'],
  4: ['/dev/sdd', '8:48'],
  5: ['/dev/sde', '8:64'],
  6: ['/dev/sdf', '8:80'],
};

/** A listed disk: its superblock (mdadm --examine --export), blkid -p and lsblk as recorded. */
function disk(n: number, o: { examine?: string; blkid?: string; lsblk?: P.LsblkNode[] } = {}): MemberFacts {
  const [kernel, majMin] = DISKS[n] ?? ['', ''];
  const examine = load(`mdadm/${o.examine ?? 'examine-blank'}`);
  const blkid = load(`blkid/${o.blkid ?? 'blank'}`);
  return {
    path: D(n),
    majMin,
    fileType: 'block special file',
    realPath: kernel,
    superblock: examine.exitCode === 0 ? P.parseExamineExport(examine.stdout) : null,
    blkid: blkid.exitCode === 0 ? P.parseKeyValues(blkid.stdout) : null,
    ambivalent: false,
    lsblk: (o.lsblk ?? BLANK).find((x) => x.path === kernel) ?? null,
  };
}
const member = (n: number) => disk(n, { examine: 'examine-export-member', blkid: 'raid-member' });

/** A running array, from a recorded mdadm --detail --export and mdadm --detail. */
const running = (exp: string, detail: string, kernelDevice = '/dev/md127'): MdadmFacts['array'] => ({
  kernelDevice,
  export: P.parseDetailExport(load(`mdadm/${exp}`).stdout),
  detail: P.parseDetail(load(`mdadm/${detail}`).stdout),
});
const DATA1 = running('detail-export-raid1', 'detail-raid1-clean');
const R5 = running('detail-export-raid5', 'detail-raid5-clean', '/dev/md126');

function facts(devices: MemberFacts[], over: Partial<MdadmFacts> = {}): MdadmFacts {
  return {
    hostname: 'sto1',
    family: 'debian',
    configPath: CONF,
    array: null,
    mdstat: P.parseMdstat(load('mdadm/mdstat-empty').stdout),
    devices: Object.fromEntries(devices.map((m) => [m.path, m])),
    conf: HEADER + BRIEF,
    confMtime: 1000,
    initramfs: [{ path: '/boot/initrd.img-6.1.0-28-amd64', mtime: 2000 }],
    freshUuid: FRESH,
    ...over,
  };
}

const plan = (params: MdadmParams, f: MdadmFacts) => planMdadm(mdadm.validate(params), f);
const summaries = (changes: Change[]) => changes.map((c) => c.summary);
const steps = (changes: Change[]) => changes.flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.display : `write ${s.path}`)));
const raid1 = { name: 'data1', level: 1 as const, devices: [D(1), D(2)] };

test('converged: a running RAID1 with its members, its ARRAY line and a newer initramfs plans nothing', (t) => {
  t.deepEqual(plan(raid1, facts([member(1), member(2)], { array: DATA1 })), []);
  // A resync in progress is not a change either.
  t.deepEqual(plan(raid1, facts([member(1), member(2)], { array: running('detail-export-raid1', 'detail-raid1-resync') })), []);
  // Nor a listed spare that is in the array.
  const spare = running('detail-export-raid1-spare', 'detail-raid1-spare');
  t.deepEqual(plan({ ...raid1, spares: [D(6)] }, facts([member(1), member(2), member(6)], { array: spare })), []);
  // Nor a RAID5 with the chunk it was created with.
  t.deepEqual(plan({ name: 'r5', level: 5, devices: [D(3), D(4), D(5)], chunkKiB: 64 }, facts([disk(3), disk(4), disk(5)], { array: R5 })), []);
});

test('create: a RAID1 on blank disks, its ARRAY line (as mdadm --detail --brief prints it) and the initramfs', (t) => {
  const f = facts([disk(1), disk(2)], { conf: HEADER });
  const changes = plan(raid1, f);
  t.deepEqual(summaries(changes), ['create raid1 /dev/md/data1 on 2 devices', `record /dev/md/data1 in ${CONF}`, `update the initramfs (${CONF} changed)`]);
  t.deepEqual(steps(changes), [
    `mdadm --create /dev/md/data1 --run --level=1 --raid-devices=2 --metadata=1.2 --name=data1 --uuid=${FRESH} ${D(1)} ${D(2)}`,
    `write ${CONF}`,
    'update-initramfs -u -k all',
  ]);
  t.true(changes.every((c) => c.destructive === undefined));
  // The line is the one mdadm printed for the array created this way, with the new UUID.
  t.deepEqual(changes[1]?.diff, { label: CONF, before: HEADER, after: `${HEADER}${DATA1_LINE.replace(UUID1, FRESH)}\n` });
});

test('create: RAID5 with chunk, homehost, bitmap, a spare (listed after the devices) and wait', (t) => {
  const params: MdadmParams = { name: 'r5', level: 5, devices: [D(3), D(4), D(5)], spares: [D(6)], chunkKiB: 64, homehost: 'san', bitmap: 'internal', wait: true };
  const changes = plan(params, facts([disk(3), disk(4), disk(5), disk(6)], { conf: HEADER }));
  t.is(changes[0]?.summary, 'create raid5 /dev/md/r5 on 3 devices + 1 spare');
  const [create, wait] = changes[0]?.steps ?? [];
  t.is(create?.kind === 'exec' && create.command.display,
    `mdadm --create /dev/md/r5 --run --level=5 --raid-devices=3 --metadata=1.2 --name=r5 --uuid=${FRESH} --chunk=64 --homehost=san --bitmap=internal --spare-devices=1 ${D(3)} ${D(4)} ${D(5)} ${D(6)}`);
  t.is(wait?.kind === 'exec' && wait.command.display, 'mdadm --wait /dev/md/r5');
  t.deepEqual(wait?.kind === 'exec' && wait.command.okCodes, [0, 1]);
  t.true(wait?.kind === 'exec' && (wait.command.timeoutMs ?? 0) >= 3600_000);
  t.is(changes[1]?.diff?.after, `${HEADER}ARRAY /dev/md/r5 metadata=1.2 name=san:r5 UUID=${FRESH}\n`);
});

test('create: the name in the ARRAY line follows HOMEHOST and the 31-byte limit of the superblock name', (t) => {
  const none = plan(raid1, facts([disk(1), disk(2)], { conf: 'HOMEHOST <none>\n' }));
  t.is(none[1]?.diff?.after, `HOMEHOST <none>\nARRAY /dev/md/data1 metadata=1.2 name=data1 UUID=${FRESH}\n`);
  const long = plan(raid1, facts([disk(1), disk(2)], { conf: null, hostname: 'storage-node-01.example.com' }));
  t.is(long[1]?.diff?.after, `ARRAY /dev/md/data1 metadata=1.2 name=data1 UUID=${FRESH}\n`);
  const meta090 = plan({ ...raid1, metadata: '0.90' }, facts([disk(1), disk(2)], { conf: null }));
  t.is(meta090[1]?.diff?.after, `ARRAY /dev/md/data1 metadata=0.90 UUID=${FRESH}\n`);
});

test('assemble: a stopped array whose members carry its superblock is assembled, never re-created', (t) => {
  const stopped = (n: number) => disk(n, { examine: 'examine-export-stopped', blkid: 'raid-member' });
  const changes = plan({ name: 'data1', level: 1, devices: [D(1), D(6)] }, facts([stopped(1), stopped(6)], { mdstat: P.parseMdstat(load('mdadm/mdstat-one-stopped').stdout) }));
  t.deepEqual(summaries(changes), [`assemble /dev/md/data1 from ${D(1)}, ${D(6)}`]);
  t.deepEqual(steps(changes), [`mdadm --assemble /dev/md/data1 --uuid=${UUID1} ${D(1)} ${D(6)}`]);
  t.is(changes[0]?.destructive, undefined);
  // The recorded assembly of the same members, which --uuid only makes stricter.
  t.is(steps(changes)[0]?.replace(` --uuid=${UUID1}`, ''), load('mdadm/assemble').command);
});

test('assemble degraded (--run), then add the blank listed device, in one plan', (t) => {
  const changes = plan(raid1, facts([disk(1, { examine: 'examine-export-stopped', blkid: 'raid-member' }), disk(2)]));
  t.deepEqual(summaries(changes), [`assemble /dev/md/data1 from ${D(1)} (degraded: 1 of 2 devices)`, `add ${D(2)} to degraded /dev/md/data1`]);
  t.deepEqual(steps(changes), [`mdadm --assemble /dev/md/data1 --run --uuid=${UUID1} ${D(1)}`, `mdadm /dev/md/data1 --add ${D(2)}`]);
});

test('degraded RAID5: the listed device that is missing is added (safe when blank, destructive when not)', (t) => {
  const params: MdadmParams = { name: 'r5', level: 5, devices: [D(3), D(4), D(5)], wait: true };
  const degraded = running('detail-export-raid5', 'detail-raid5-degraded', '/dev/md126');
  const changes = plan(params, facts([disk(3), disk(4), disk(5)], { array: degraded }));
  t.deepEqual(summaries(changes), [`add ${D(5)} to degraded /dev/md/r5`]);
  t.deepEqual(steps(changes), [`mdadm /dev/md/r5 --add ${D(5)}`, 'mdadm --wait /dev/md/r5']);
  t.is(changes[0]?.destructive, undefined);
  const gpt = plan(params, facts([disk(3), disk(4), disk(5, { blkid: 'gpt', lsblk: MIXED })], { array: degraded }));
  t.is(gpt[0]?.destructive, `${D(5)} holds a gpt partition table and partitions /dev/sde1, /dev/sde2`);
  t.deepEqual(steps(gpt), [`wipefs -a ${D(5)}`, `mdadm /dev/md/r5 --add ${D(5)}`, 'mdadm --wait /dev/md/r5']);
});

test('a listed spare that is not in the array is added as a spare', (t) => {
  const changes = plan({ ...raid1, spares: [D(6)] }, facts([member(1), member(2), disk(6)], { array: DATA1 }));
  t.deepEqual(summaries(changes), [`add spare ${D(6)} to /dev/md/data1`]);
  t.deepEqual(steps(changes), [`mdadm /dev/md/data1 --add ${D(6)}`]);
});

test('a failed member is left alone; the spare rebuilding in its place counts as in the array', (t) => {
  const failed = running('detail-export-raid1-spare', 'detail-raid1-failed');
  t.deepEqual(plan({ ...raid1, spares: [D(6)] }, facts([member(1), member(2), member(6)], { array: failed })), []);
});

test('creating over disks that hold data is destructive and names each disk and what it holds', (t) => {
  const xfs = plan({ ...raid1, devices: [D(1), D(3)] }, facts([disk(1), disk(3, { blkid: 'xfs', lsblk: MIXED })], { conf: HEADER }));
  t.is(xfs[0]?.destructive, `${D(3)} holds an xfs filesystem labelled keep`);
  t.deepEqual(xfs[0]?.steps.map((s) => (s.kind === 'exec' ? s.command.display.split(' ').slice(0, 2).join(' ') : '')), ['wipefs -a', 'mdadm --create']);

  const gpt = plan({ ...raid1, devices: [D(1), D(5)] }, facts([disk(1), disk(5, { blkid: 'gpt', lsblk: MIXED })], { conf: HEADER }));
  t.is(gpt[0]?.destructive, `${D(5)} holds a gpt partition table and partitions /dev/sde1, /dev/sde2`);

  const other = plan({ name: 'r5', level: 5, devices: [D(1), D(2), D(4)] }, facts([member(1), disk(2), disk(4, { blkid: 'ext4', lsblk: MIXED })], { conf: HEADER }));
  t.is(other[0]?.destructive, `${D(1)} holds a member of RAID array sto1:data1 (raid1, UUID ${UUID1}); ${D(4)} holds an ext4 filesystem labelled other`);
  t.deepEqual(steps(other).slice(0, 3), [`mdadm --zero-superblock ${D(1)}`, `wipefs -a ${D(1)}`, `wipefs -a ${D(4)}`]);
});

test('a disk that is mounted is refused even with force, and the message names every disk', (t) => {
  const root: MemberFacts = { ...disk(1), path: '/dev/sda', majMin: '8:0', realPath: '/dev/sda', lsblk: BLANK.find((x) => x.path === '/dev/sda') ?? null };
  t.throws(() => plan({ ...raid1, devices: [D(3), '/dev/sda'] }, facts([disk(3, { blkid: 'xfs', lsblk: MIXED }), root])), {
    message: `cannot use these devices for /dev/md/data1: /dev/sda is in use (mounted on /); ${D(3)} holds an xfs filesystem labelled keep; /dev/sda holds partitions /dev/sda1. A device in use is refused even with force: free it first`,
  });
});

test('a disk held by another device (a multipath map) is refused even with force', (t) => {
  const mpath = P.parseLsblk(load('lsblk/chunk1-multipath').stdout);
  t.throws(() => plan(raid1, facts([disk(1, { lsblk: mpath }), disk(2)])), {
    message: `cannot use these devices for /dev/md/data1: ${D(1)} is in use (held by /dev/mapper/mpathb (mpath)). A device in use is refused even with force: free it first`,
  });
});

test('another level, chunk or device count on an existing array is a destructive re-create', (t) => {
  const r5 = plan({ name: 'data1', level: 5, devices: [D(1), D(2), D(4)] }, facts([member(1), member(2), disk(4)], { array: DATA1 }));
  t.is(r5[0]?.summary, 're-create raid5 /dev/md/data1 on 3 devices (it is raid1 on 2)');
  t.is(r5[0]?.destructive, 'raid1 → raid5 would destroy the data on /dev/md/data1');
  t.deepEqual(steps(r5).slice(0, 4), ['mdadm --stop /dev/md/data1', `mdadm --zero-superblock ${D(1)}`, `mdadm --zero-superblock ${D(2)}`, `mdadm --create /dev/md/data1 --run --level=5 --raid-devices=3 --metadata=1.2 --name=data1 --uuid=${FRESH} ${D(1)} ${D(2)} ${D(4)}`]);
  // The new UUID replaces the old line.
  t.is(r5[1]?.diff?.after, `${HEADER}${DATA1_LINE.replace(UUID1, FRESH)}\n${R5_LINE}\n`);

  const r5devs = [D(3), D(4), D(5)];
  const three = [disk(3), disk(4), disk(5)];
  const chunk = plan({ name: 'r5', level: 5, devices: r5devs, chunkKiB: 128 }, facts(three, { array: R5 }));
  t.is(chunk[0]?.destructive, 'chunk 64K → 128K would destroy the data on /dev/md/r5');
  const wider = plan({ name: 'r5', level: 5, devices: [...r5devs, D(1)] }, facts([...three, disk(1)], { array: R5 }));
  t.is(wider[0]?.destructive, 'raid5 on 3 → 4 devices (a reshape) would destroy the data on /dev/md/r5');
  const meta = plan({ name: 'r5', level: 5, devices: r5devs, metadata: '1.0' }, facts(three, { array: R5 }));
  t.is(meta[0]?.destructive, 'metadata 1.2 → 1.0 would destroy the data on /dev/md/r5');
});

test('a RAID1 given more devices grows (add, then --grow --raid-devices), which is safe', (t) => {
  const changes = plan({ ...raid1, devices: [D(1), D(2), D(4)] }, facts([member(1), member(2), disk(4)], { array: DATA1 }));
  t.deepEqual(summaries(changes), [`grow raid1 /dev/md/data1 from 2 to 3 devices (add ${D(4)})`]);
  t.deepEqual(steps(changes), [`mdadm /dev/md/data1 --add ${D(4)}`, 'mdadm --grow /dev/md/data1 --raid-devices=3']);
  t.is(changes[0]?.destructive, undefined);
});

test('mdadm.conf without the line, or with a line of another UUID: the whole file is written, with a diff', (t) => {
  const missing = plan(raid1, facts([member(1), member(2)], { array: DATA1, conf: HEADER }));
  t.deepEqual(summaries(missing), [`record /dev/md/data1 in ${CONF}`, `update the initramfs (${CONF} changed)`]);
  t.deepEqual(missing[0]?.steps, [{ kind: 'put', path: CONF, content: `${HEADER}${DATA1_LINE}\n` }]);
  t.deepEqual(missing[0]?.diff, { label: CONF, before: HEADER, after: `${HEADER}${DATA1_LINE}\n` });

  const stale = `${HEADER}${DATA1_LINE.replace(UUID1, FRESH)}\n${R5_LINE}\n`;
  const replaced = plan(raid1, facts([member(1), member(2)], { array: DATA1, conf: stale }));
  t.deepEqual(replaced[0]?.diff, { label: CONF, before: stale, after: HEADER + BRIEF });
});

test('an initramfs older than mdadm.conf is rebuilt (update-initramfs on Debian, dracut on RHEL); unless told not to', (t) => {
  const old = { array: DATA1, initramfs: [{ path: '/boot/initrd.img-6.1.0-28-amd64', mtime: 500 }] };
  const changes = plan(raid1, facts([member(1), member(2)], old));
  t.deepEqual(summaries(changes), [`update the initramfs (/boot/initrd.img-6.1.0-28-amd64 older than ${CONF})`]);
  t.deepEqual(steps(changes), ['update-initramfs -u -k all']);
  t.deepEqual(plan({ ...raid1, updateInitramfs: false }, facts([member(1), member(2)], old)), []);
  const rhel = plan(raid1, facts([member(1), member(2)], { ...old, family: 'redhat', configPath: '/etc/mdadm.conf' }));
  t.deepEqual(steps(rhel), ['dracut -f --regenerate-all']);
  t.is(rhel[0]?.summary, 'update the initramfs (/boot/initrd.img-6.1.0-28-amd64 older than /etc/mdadm.conf)');
});

test('absent: stop, zero the members, drop the line, rebuild the initramfs; nothing when already gone', (t) => {
  const changes = plan({ name: 'data1', state: 'absent' }, facts([], { array: DATA1 }));
  t.deepEqual(summaries(changes), ['stop /dev/md/data1 and wipe the RAID superblocks of /dev/sdb, /dev/sdc', `remove /dev/md/data1 from ${CONF}`, `update the initramfs (${CONF} changed)`]);
  t.is(changes[0]?.destructive, 'removing /dev/md/data1 destroys its data (members /dev/sdb, /dev/sdc)');
  t.deepEqual(steps(changes).slice(0, 3), ['mdadm --stop /dev/md/data1', 'mdadm --zero-superblock /dev/sdb', 'mdadm --zero-superblock /dev/sdc']);
  t.is(changes[1]?.diff?.after, `${HEADER}${R5_LINE}\n`);
  t.deepEqual(plan({ name: 'data1', state: 'absent' }, facts([], { conf: `${HEADER}${R5_LINE}\n` })), []);
  // Stopped, with its superblock still on a listed disk.
  const stopped = plan({ name: 'data1', state: 'absent', devices: [D(1)] }, facts([disk(1, { examine: 'examine-export-stopped' })], { conf: `${HEADER}${R5_LINE}\n` }));
  t.deepEqual(steps(stopped), [`mdadm --zero-superblock ${D(1)}`]);
  t.is(stopped[0]?.destructive, `removing /dev/md/data1 destroys its data (members ${D(1)})`);
});

test('errors: a listed device that does not exist, a complete array missing a listed device, bad combinations', (t) => {
  const gone: MemberFacts = { ...disk(2), majMin: null, fileType: null, realPath: D(2) };
  t.throws(() => plan(raid1, facts([member(1), gone], { array: DATA1 })), { message: `member device ${D(2)} does not exist` });
  const rebuilt = running('detail-export-raid1', 'detail-raid1-rebuilt');
  t.throws(() => plan(raid1, facts([member(1), disk(2)], { array: rebuilt })), { message: /has all its 2 devices but .*sto1-d2 \(listed in devices\) is not in it/ });
  t.throws(() => plan({ ...raid1, chunkKiB: 64 }, facts([disk(1), disk(2)])), { message: 'chunkKiB applies to levels 0, 4, 5, 6 and 10, not 1' });
  t.throws(() => plan({ name: 'r6', level: 6, devices: [D(1), D(2), D(3)] }, facts([disk(1), disk(2), disk(3)])), { message: 'RAID 6 needs at least 4 devices, 3 listed' });
  const twin: MemberFacts = { ...disk(1), path: '/dev/sdb' };
  t.throws(() => plan({ ...raid1, devices: [D(1), '/dev/sdb'] }, facts([disk(1), twin])), { message: `${D(1)} and /dev/sdb are the same device (/dev/sdb)` });
  t.throws(() => mdadm.validate({ name: 'data1', level: 1 }), { message: /devices/ });
});

test('output: device, kernel device, members, spares, failed members and the recovery in progress', (t) => {
  const f = facts([member(1), member(2), member(6)], {
    array: running('detail-export-raid1-spare', 'detail-raid1-failed'),
    mdstat: P.parseMdstat(load('mdadm/mdstat-rebuild').stdout),
  });
  t.deepEqual(mdadm.output?.(mdadm.validate(raid1), f), {
    device: '/dev/md/data1',
    kernelDevice: '/dev/md127',
    uuid: UUID1,
    level: 'raid1',
    state: 'clean, degraded, recovering',
    degraded: true,
    members: ['/dev/sdb', '/dev/sdf'],
    spares: [],
    failed: ['/dev/sdc'],
    sync: { action: 'recovery', percent: 6.5, finishMinutes: 0.2 },
  });
  t.is(mdadm.output?.(mdadm.validate(raid1), facts([disk(1, { examine: 'examine-export-stopped' }), disk(2)])).state, 'stopped');
});

test('gather: one round trip; the conf path follows the OS family', async (t) => {
  const scripts: string[] = [];
  const ok = (stdout: string, exitCode = 0) => ({ stdout, exitCode });
  const sections: [string, { stdout: string; exitCode: number }][] = [
    ['mdadm', ok('/usr/sbin/mdadm\n')],
    ['uid', ok('0\n')],
    ['detail-export', load('mdadm/detail-missing')],
    ['detail', load('mdadm/detail-missing')],
    ['array-real', ok('/dev/md/data1\n')],
    ['mdstat', load('mdadm/mdstat-empty')],
    ['uuid', ok('0b5f8e9c-6a1d-4c2e-9f3a-7d8e1c2b4a6f\n')],
    ['conf-exists', ok('', 1)],
    ['conf', ok('', 1)],
    ['conf-mtime', ok('', 1)],
    ['initramfs', ok('')],
  ];
  const stdout = sections.map(([key, s]) => `${P.MARK} begin ${key}\n${s.stdout}\n${P.MARK} end ${s.exitCode}\n`).join('');
  const conn = {
    host: 'rocky1',
    exec: async (c: { display: string }) => {
      scripts.push(c.display);
      return { exitCode: 0, stdout, stderr: '', stdoutBytes: Buffer.from(stdout), signal: null, timedOut: false, durationMs: 1 };
    },
  } as unknown as Connection;
  const hostFacts = { hostname: 'rocky1', os: { family: 'redhat' } } as unknown as HostFacts;
  const f = await mdadm.gather(conn, mdadm.validate({ name: 'data1', state: 'absent' }), { host: 'rocky1', facts: hostFacts });
  t.is(scripts.length, 1);
  t.regex(scripts[0] ?? '', /; cat -- \/etc\/mdadm\.conf; e \$\?/);
  t.regex(scripts[0] ?? '', /for f in \/boot\/initramfs-\*\.img;/);
  t.is(f.configPath, '/etc/mdadm.conf');
  t.is(f.array, null);
  t.is(f.conf, null);
  t.deepEqual(mdadm.plan(mdadm.validate({ name: 'data1', state: 'absent' }), f), []);
});
