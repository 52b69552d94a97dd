/**
 * The initiator side of seed 000 on the lab: chunk1 reaches one LIO target on sto1 and one on sto2, each over
 * both storage networks (4 sessions), dm-multipath merges the paths into two maps named by WWID aliases, each
 * gets a GPT partition with XFS, mounted by systemd .mount units on /mnt/data_chunk1 and /mnt/data_chunk2.
 * Proven: check mode on fresh hosts changes nothing and plans what the real run does, a re-run changes nothing,
 * a reboot brings sessions, maps and mounts back by themselves with the data intact, an initiator missing from
 * the ACL and a wrong CHAP secret are refused in plain words, and logging out of a mounted target is refused
 * without force.
 */
import test, { type ExecutionContext } from 'ava';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { sh } from '../../lib/command.ts';
import type { RunEvent } from '../../lib/events.ts';
import { loadInventory, type Inventory } from '../../lib/inventory.ts';
import type { Task, TaskContext } from '../../lib/module.ts';
import { play, playbook, type Playbook } from '../../lib/playbook.ts';
import { runPlaybook } from '../../lib/runner.ts';
import { Secret } from '../../lib/secret.ts';
import { labUp, rebootVm, type Lab } from '../../lab/lab.ts';
import {
  filesystem, iscsiadm, lioWwid, multipathConf, parseMapsJson, partition, pkg, systemdMount, targetcli, unitSerial,
  type PartitionOutput,
} from '../../modules/index.ts';
import { failover, failoverPaths, parseResultFile, summarize, type FailoverResult } from '../../modules/failover.ts';
import { labConnections, type Ended } from './connections.ts';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHUNK = 'chunk1';
const STORAGE = ['sto1', 'sto2'] as const;
const TARGET = 'iqn.2024-12.tp2.b3:data-chunk1';
const INITIATOR = 'iqn.2024-12.tp2.b3:chunk1';
const SECRET = 'lab-initiator-secret-1';
const chap = (password = SECRET) => ({ user: 'chunk1', password: new Secret(password) });
/** Seed 000's storage addresses: stoN is .N on both networks. */
const portalsOf = (n: number): string[] => [`10.3.1.${n}:3260`, `10.3.2.${n}:3260`];
const ALL_PORTALS = [...portalsOf(1), ...portalsOf(2)];
const disk = (host: string, n: number): string => `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_${host}-d${n}`;
/** Each storage host's LUN for chunk1, its WWID known in advance, and where chunk1 mounts it. */
const VOLUMES = STORAGE.map((host, i) => ({ host, serial: unitSerial(`${host}/data-chunk1`), alias: `data_chunk${i + 1}`, where: `/mnt/data_chunk${i + 1}` }));
/** open-iscsi's own defaults (Debian's iscsid.conf), then seed 000's change: replacement_timeout 0. */
const DEFAULT_SETTINGS = { 'node.session.timeo.replacement_timeout': 120, 'node.conn[0].timeo.login_timeout': 15, 'node.conn[0].timeo.noop_out_interval': 5 };
const SEED_SETTINGS = { ...DEFAULT_SETTINGS, 'node.session.timeo.replacement_timeout': 0 };
/** chunk1's interface on the second storage network (10.3.2.0/24): the failover test cuts it. */
const CUT = 'eth2';

let lab: Lab;
let inventory: Inventory;
const conns = labConnections(() => lab);
const out = async (host: string, script: ReturnType<typeof sh>): Promise<string> => (await (await conns.get(host)).exec(script)).stdout;

const targets = targetcli.task('the LUN for chunk1', (ctx) => {
  const v = VOLUMES.find((x) => x.host === ctx.host);
  if (!v) throw new Error(`${ctx.host} is not a storage host of this test`);
  return {
    backstores: [{ name: 'data-chunk1', path: disk(ctx.host, 1), wwn: v.serial }],
    targets: [{ iqn: TARGET, portals: portalsOf(Number(ctx.host.slice(3))).map((p) => ({ ip: p.split(':')[0] ?? '' })), luns: [{ backstore: 'data-chunk1' }], acls: [{ initiator: INITIATOR, chap: chap() }] }],
  };
}) as Task;

const login = (settings: Record<string, number>): Task =>
  iscsiadm.task('initiator name, iscsid.conf, discovery and logins', {
    initiatorName: INITIATOR,
    settings,
    discovery: { portals: ALL_PORTALS },
    targets: [{ iqn: TARGET, portals: ALL_PORTALS, chap: chap() }],
  }) as Task;

const multipath = multipathConf.task('multipath.conf', {
  // Seed 000's defaults, and a WWID alias per LUN (the serials were chosen above, so the names are known now).
  defaults: { user_friendly_names: true, find_multipaths: 'yes', path_grouping_policy: 'failover', features: '1 queue_if_no_path', no_path_retry: 100 },
  multipaths: VOLUMES.map((v) => ({ wwid: lioWwid(v.serial), alias: v.alias })),
}) as Task;

function volumeTasks(v: (typeof VOLUMES)[number]): Task[] {
  const gpt = partition.task(`GPT on ${v.alias}`, { device: `/dev/mapper/${v.alias}`, partitions: [{ number: 1, name: v.alias, start: '1MiB', end: '100%' }] });
  const node = (ctx: TaskContext): string => {
    const path = ctx.result<PartitionOutput>(gpt as Task<unknown, PartitionOutput>)?.partitions[0]?.path;
    if (!path) throw new Error(`no partition on /dev/mapper/${v.alias} yet`);
    return path;
  };
  return [
    gpt as Task,
    filesystem.task(`XFS on ${v.alias}`, (ctx) => ({ device: node(ctx), fstype: 'xfs', label: v.alias })) as Task,
    systemdMount.task(`mount ${v.where}`, (ctx) => ({ where: v.where, what: node(ctx), type: 'xfs' })) as Task,
  ];
}

const chain = (settings: Record<string, number> = DEFAULT_SETTINGS): Playbook =>
  playbook({
    name: 'initiator',
    plays: [
      play({ name: 'targets', hosts: STORAGE.join(','), tasks: [targets] }),
      play({ name: 'chunk1', hosts: CHUNK, tasks: [multipath, login(settings), ...VOLUMES.flatMap(volumeTasks)] }),
    ],
  });

async function run(book: Playbook, check = false): Promise<{ exitCode: number; ended: Ended[] }> {
  const ended: Ended[] = [];
  const reporter = {
    onEvent(e: RunEvent) {
      if (e.type === 'host:end') ended.push({ host: e.host, task: e.task, status: e.status, changes: e.changes.map((c) => c.summary), ...(e.message ? { message: e.message } : {}) });
    },
    done: async () => undefined,
  };
  const r = await runPlaybook(book, { inventory, check, reporters: [reporter] });
  return { exitCode: r.exitCode, ended };
}
const changed = (ended: readonly Ended[]) => ended.filter((e) => e.changes.length > 0);

/** The maps chunk1 has now: name -> active paths of total. */
async function maps(): Promise<Record<string, string>> {
  const m = parseMapsJson(await out(CHUNK, sh`multipathd show maps json`));
  return Object.fromEntries(m.map((x) => [x.name, `${x.paths.filter((p) => p.state === 'active').length}/${x.paths.length}`]));
}
const sessions = async (): Promise<string[]> =>
  (await out(CHUNK, sh`iscsiadm -m session 2>/dev/null || true`)).split('\n').filter(Boolean).map((l) => l.split(' ').slice(2, 4).join(' ')).sort();
const mounts = async (): Promise<string> =>
  out(CHUNK, sh`for m in /mnt/data_chunk1 /mnt/data_chunk2; do findmnt -n -o TARGET,SOURCE,FSTYPE --mountpoint "$m"; done; :`);
/** The sessions' recovery timeout now (multipathd may set it), one per session. */
const recoveryTmo = async (): Promise<string[]> => (await out(CHUNK, sh`cat /sys/class/iscsi_session/session*/recovery_tmo`)).split('\n').filter(Boolean);

/** Seed 000's failover test on chunk1: eth2 down for 15 s while writing to /mnt/data_chunk1; the figures. */
async function failoverRun(t: ExecutionContext, label: string): Promise<FailoverResult> {
  const book = playbook({ name: 'failover', plays: [play({ name: 'failover', hosts: CHUNK, tasks: [failover.task('failover test', { mount: '/mnt/data_chunk1', interface: CUT, downSeconds: 15 }) as Task] })] });
  const r = await run(book);
  const text = await out(CHUNK, sh`cat ${failoverPaths('/mnt/data_chunk1').resultFile}`);
  const result = parseResultFile(text);
  t.log(`${label}: ${summarize(result)}`);
  t.is(r.exitCode, 0, JSON.stringify(r.ended));
  return result;
}

test.before(async (t) => {
  lab = await labUp({ projectRoot, topology: process.env['SANBOOK_LAB_TOPOLOGY'] ?? 'small', log: (l) => t.log(l) });
  inventory = await loadInventory(lab.inventoryFile);
  const tools = playbook({
    name: 'tools',
    plays: [
      play({ name: 'targets', hosts: STORAGE.join(','), tasks: [pkg.task('LIO tools', { name: ['targetcli-fb'], updateCache: true })] }),
      play({ name: 'initiator', hosts: CHUNK, tasks: [pkg.task('initiator tools', { name: ['open-iscsi', 'multipath-tools', 'kpartx', 'xfsprogs', 'parted'], updateCache: true })] }),
    ],
  });
  const r = await runPlaybook(tools, { inventory });
  if (r.exitCode !== 0) throw new Error(`installing the tools failed: ${JSON.stringify(r.recap)}`);
  // A lab that ran this suite before: chunk1 back to a fresh initiator, the storage hosts without targets.
  await out(CHUNK, sh`for m in /mnt/data_chunk1 /mnt/data_chunk2; do u=$(systemd-escape --path --suffix=mount "$m"); systemctl disable --now "$u" >/dev/null 2>&1; rm -f "/etc/systemd/system/$u"; done
systemctl daemon-reload; iscsiadm -m node -u >/dev/null 2>&1; iscsiadm -m node -o delete >/dev/null 2>&1; iscsiadm -m discoverydb -t st -o delete >/dev/null 2>&1
rm -f /etc/multipath.conf /etc/multipath/wwids /etc/multipath/bindings; multipath -F >/dev/null 2>&1; systemctl restart iscsid multipathd; :`);
  for (const h of STORAGE) {
    await out(h, sh`targetcli clearconfig confirm=True >/dev/null 2>&1; rm -f /etc/rtslib-fb-target/saveconfig.json
for md in /dev/md/*; do [ -e "$md" ] && mdadm --stop "$md" >/dev/null 2>&1; done
wipefs -a -q ${disk(h, 1)}; dd if=/dev/zero of=${disk(h, 1)} bs=1M count=16 oflag=direct status=none; :`);
  }
});

test.after.always(async () => {
  await conns.closeAll();
});

test.serial('check mode changes nothing and plans what the real run does; 4 sessions, 2 maps of 2 active paths, XFS mounted; a re-run changes nothing', async (t) => {
  const check = await run(chain(), true);
  t.is(check.exitCode, 0, JSON.stringify(check.ended));
  t.deepEqual(await sessions(), [], 'check mode logged in');
  t.is((await out(CHUNK, sh`ls /etc/iscsi/nodes 2>/dev/null | wc -l`)).trim(), '0', 'check mode wrote node records');
  const real = await run(chain());
  t.is(real.exitCode, 0, JSON.stringify(real.ended));
  // Every task check mode could plan is planned exactly; the others waited on a device the chain makes.
  for (const planned of check.ended) {
    const done = real.ended.find((e) => e.host === planned.host && e.task === planned.task);
    if (planned.status === 'skipped') {
      t.regex(planned.message ?? '', /not plannable before the changes planned above/, `${planned.host} ${planned.task}`);
      t.true((done?.changes.length ?? 0) > 0, `${planned.task} was not plannable but the real run changed nothing`);
    } else t.deepEqual(planned.changes, done?.changes, `${planned.host} ${planned.task}`);
  }
  t.log(`check mode planned ${check.ended.filter((e) => e.status !== 'skipped').length} of ${check.ended.length} tasks`);
  t.deepEqual(await sessions(), [...portalsOf(1), ...portalsOf(2)].map((p) => `${p},1 ${TARGET}`).sort());
  t.deepEqual(await maps(), { data_chunk1: '2/2', data_chunk2: '2/2' });
  const m = await mounts();
  for (const v of VOLUMES) t.regex(m, new RegExp(`^${v.where} /dev/mapper/${v.alias}-part1 xfs$`, 'm'));
  const again = await run(chain());
  t.is(again.exitCode, 0);
  t.deepEqual(changed(again.ended), [], 'the second run changed something');
});

test.serial('failover with open-iscsi\'s defaults: eth2 down 15 s while writing, nothing lost, both paths back', async (t) => {
  t.deepEqual(await recoveryTmo(), ['5', '5', '5', '5'], 'multipathd sets recovery_tmo to fast_io_fail_tmo (5), whatever the record says');
  const r = await failoverRun(t, 'replacement_timeout 120');
  t.true(r.passed);
  t.is(r.lostWrites, 0);
  t.is(r.writesFailed, 0);
  t.true(r.writesCompleted > 10);
  t.not(r.recoveryMs, null);
  t.deepEqual(await maps(), { data_chunk1: '2/2', data_chunk2: '2/2' });
});

test.serial('seed 000\'s replacement_timeout 0: only the records and iscsid.conf change; after a reboot of chunk1, sessions, maps and mounts come back by themselves and the data is intact', async (t) => {
  const seed = await run(chain(SEED_SETTINGS));
  t.is(seed.exitCode, 0, JSON.stringify(seed.ended));
  t.deepEqual(changed(seed.ended).map((e) => e.task), ['initiator name, iscsid.conf, discovery and logins']);
  await out(CHUNK, sh`head -c 8M /dev/urandom > /mnt/data_chunk1/data && cp /mnt/data_chunk1/data /mnt/data_chunk2/data && sync && sha256sum /mnt/data_chunk1/data | cut -d' ' -f1 > /root/data.sum`);
  await conns.drop(CHUNK);
  const ms = await rebootVm(lab, CHUNK);
  t.log(`${CHUNK} rebooted in ${Math.round(ms / 1000)} s`);
  t.is((await sessions()).length, 4);
  t.deepEqual(await maps(), { data_chunk1: '2/2', data_chunk2: '2/2' });
  const m = await mounts();
  for (const v of VOLUMES) t.regex(m, new RegExp(`^${v.where} /dev/mapper/${v.alias}-part1 xfs$`, 'm'));
  const sums = await out(CHUNK, sh`sha256sum /mnt/data_chunk1/data /mnt/data_chunk2/data | cut -d' ' -f1; cat /root/data.sum`);
  const [a, b, want] = sums.split('\n');
  t.is(a, want);
  t.is(b, want);
  t.is((await out(CHUNK, sh`iscsiadm -m node -T ${TARGET} -p 10.3.1.1:3260 | grep replacement_timeout`)).trim(), 'node.session.timeo.replacement_timeout = 0');
  const again = await run(chain(SEED_SETTINGS));
  t.is(again.exitCode, 0);
  t.deepEqual(changed(again.ended), [], 'a run after the reboot changed something');
});

test.serial('failover with seed 000\'s replacement_timeout 0: nothing lost, both paths back', async (t) => {
  t.deepEqual(await recoveryTmo(), ['5', '5', '5', '5']);
  const r = await failoverRun(t, 'replacement_timeout 0');
  t.true(r.passed);
  t.is(r.lostWrites, 0);
  t.is(r.writesFailed, 0);
  t.not(r.recoveryMs, null);
});

test.serial('an initiator missing from the ACL and a wrong CHAP secret are refused in plain words; the right secret logs in', async (t) => {
  const other = 'iqn.2024-12.tp2.b3:acl-test';
  const image = '/var/lib/sanbook-acl-test.img';
  const onSto2 = (acl: string, password: string): Task =>
    targetcli.task('a second target', {
      backstores: [{ name: 'acl-test', type: 'fileio', path: image, size: '64M' }],
      targets: [{ iqn: other, portals: [{ ip: '10.3.1.2' }], luns: [{ backstore: 'acl-test' }], acls: [{ initiator: acl, chap: { user: 'chunk1', password: new Secret(password) } }] }],
    }) as Task;
  const tryLogin = (password: string): Task =>
    iscsiadm.task('log in to the second target', { targets: [{ iqn: other, portals: ['10.3.1.2:3260'], chap: { user: 'chunk1', password: new Secret(password) } }] }) as Task;
  const book = (acl: string, password: string): Playbook =>
    playbook({ name: 'acl', plays: [play({ name: 'sto2', hosts: 'sto2', tasks: [onSto2(acl, 'right-secret-12')] }), play({ name: 'chunk1', hosts: CHUNK, tasks: [tryLogin(password)] })] });

  const notListed = await run(book('iqn.2024-12.tp2.b3:someone-else', 'right-secret-12'));
  t.is(notListed.exitCode, 2);
  const refused = notListed.ended.find((e) => e.status === 'failed');
  t.is(refused?.host, CHUNK);
  t.regex(refused?.message ?? '', new RegExp(`the target ${other} refused this initiator \\(IQN ${INITIATOR}\\) at 10\\.3\\.1\\.2:3260: its IQN is not in the target's ACL, or the CHAP user/secret differ`));

  const wrong = await run(book(INITIATOR, 'wrong-secret-12'));
  t.is(wrong.exitCode, 2);
  t.regex(wrong.ended.find((e) => e.status === 'failed')?.message ?? '', /refused this initiator/);
  t.false(JSON.stringify(wrong.ended).includes('wrong-secret-12'), 'a secret reached the output');

  const right = await run(book(INITIATOR, 'right-secret-12'));
  t.is(right.exitCode, 0, JSON.stringify(right.ended));
  t.true((await sessions()).includes(`10.3.1.2:3260,1 ${other}`));

  // Clean up: this target is not mounted, so logging out and deleting it needs no force.
  const gone = playbook({
    name: 'acl cleanup',
    plays: [
      play({ name: 'chunk1', hosts: CHUNK, tasks: [iscsiadm.task('forget the second target', { targets: [{ iqn: other, state: 'absent' }] }) as Task] }),
      play({ name: 'sto2', hosts: 'sto2', tasks: [targetcli.task('remove it', { state: 'absent', targets: [{ iqn: other }], backstores: [{ name: 'acl-test', type: 'fileio', path: image }] }) as Task] }),
    ],
  });
  const r = await run(gone);
  t.is(r.exitCode, 0, JSON.stringify(r.ended));
  t.false((await sessions()).some((s) => s.includes(other)));
  t.is((await sessions()).length, 4, 'the other sessions were touched');
});

test.serial('logging out of the mounted target is refused without force, naming what holds it', async (t) => {
  const book = playbook({ name: 'logout', plays: [play({ name: 'chunk1', hosts: CHUNK, tasks: [iscsiadm.task('log out', { targets: [{ iqn: TARGET, state: 'absent' }] }) as Task] })] });
  const r = await run(book);
  t.is(r.exitCode, 2);
  const msg = r.ended.find((e) => e.status === 'failed')?.message ?? '';
  t.regex(msg, /refused destructive change/);
  t.regex(msg, /data_chunk1|\/mnt\/data_chunk/);
  t.is((await sessions()).length, 4);
  t.deepEqual(await maps(), { data_chunk1: '2/2', data_chunk2: '2/2' });
});

test.serial('a CHAP secret changed by hand in a node record is corrected by the next run', async (t) => {
  await out(CHUNK, sh`iscsiadm -m node -T ${TARGET} -p 10.3.2.2:3260 -o update -n node.session.auth.password -v changed-by-hand-1`);
  const r = await run(chain(SEED_SETTINGS));
  t.is(r.exitCode, 0, JSON.stringify(r.ended));
  t.deepEqual(changed(r.ended).map((e) => e.task), ['initiator name, iscsid.conf, discovery and logins']);
  t.false(JSON.stringify(r.ended).includes(SECRET), 'the secret reached the output');
  const file = await out(CHUNK, sh`cat /etc/iscsi/nodes/${TARGET}/10.3.2.2,3260,1/default`);
  t.regex(file, new RegExp(`^node\\.session\\.auth\\.password = ${SECRET}$`, 'm'));
});

test.serial('a wrong filesystem mounted over /mnt/data_chunk2 is reported, refused without force, and replaced with force', async (t) => {
  await out(CHUNK, sh`mount -t tmpfs -o size=1M intruder /mnt/data_chunk2`);
  const r = await run(chain(SEED_SETTINGS));
  t.is(r.exitCode, 2);
  const failed = r.ended.find((e) => e.status === 'failed');
  t.is(failed?.task, 'mount /mnt/data_chunk2');
  t.regex(failed?.message ?? '', /refused destructive change/);
  t.regex(failed?.message ?? '', /tmpfs/);
  const v = VOLUMES[1];
  if (!v) return t.fail();
  const node = `/dev/mapper/${v.alias}-part1`;
  const fix = playbook({ name: 'fix', plays: [play({ name: 'chunk1', hosts: CHUNK, tasks: [systemdMount.task('mount /mnt/data_chunk2', { where: v.where, what: node, type: 'xfs' }, { force: true }) as Task] })] });
  const fixed = await run(fix);
  t.is(fixed.exitCode, 0, JSON.stringify(fixed.ended));
  t.regex(await mounts(), new RegExp(`^${v.where} ${node} xfs$`, 'm'));
  t.is((await out(CHUNK, sh`findmnt -n -o FSTYPE --mountpoint /mnt/data_chunk2 | sort -u`)).trim(), 'xfs', 'tmpfs still mounted there');
  t.is((await out(CHUNK, sh`sha256sum /mnt/data_chunk2/data | cut -d' ' -f1`)).trim(), (await out(CHUNK, sh`cat /root/data.sum`)).trim());
  const again = await run(chain(SEED_SETTINGS));
  t.deepEqual(changed(again.ended), []);
});

test.serial('state absent: the mounts are unmounted and their units removed; then, with force, the sessions logged out and the records deleted', async (t) => {
  const book = (force: boolean): Playbook =>
    playbook({
      name: 'teardown',
      plays: [
        play({
          name: 'chunk1',
          hosts: CHUNK,
          tasks: [
            ...VOLUMES.map((v) => systemdMount.task(`unmount ${v.where}`, { where: v.where, state: 'absent' }) as Task),
            iscsiadm.task('log out and forget', { targets: [{ iqn: TARGET, state: 'absent' }] }, { force }) as Task,
          ],
        }),
      ],
    });
  const refused = await run(book(false));
  t.is(refused.exitCode, 2);
  t.is(refused.ended.find((e) => e.status === 'failed')?.task, 'log out and forget', 'multipath still holds the disks');
  t.is(await mounts(), '');
  t.is((await out(CHUNK, sh`ls /etc/systemd/system/ | grep -c '^mnt-data_chunk' || true`)).trim(), '0');
  const forced = await run(book(true));
  t.is(forced.exitCode, 0, JSON.stringify(forced.ended));
  t.deepEqual(await sessions(), []);
  t.is((await out(CHUNK, sh`ls /etc/iscsi/nodes | wc -l`)).trim(), '0');
  const again = await run(book(false));
  t.is(again.exitCode, 0);
  t.deepEqual(changed(again.ended), []);
});
