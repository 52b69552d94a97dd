/**
 * playbooks/san.ts on six blank lab VMs (the full topology: sto1, sto2, chunk1..3, master), as issue 7 asks:
 * check mode on the fresh lab changes nothing on any VM and its plan equals, task by task, the changes of the real
 * run that follows; the real run ends with every verify assertion passing; a second run changes nothing; after a
 * reboot of one storage host and one chunk host, `--check --tags verify` (the storage hosts' targets gathered, then
 * the verify play) plans no change and passes again.
 * Then what issue 6 asks of MooseFS and firewalld on that network: ports open in both planes, the web UI answering
 * on 9425, 200 files and 64 MiB written through the client mount and read back identical, 3 chunkservers and every
 * chunk at its goal, a rebooted chunkserver rejoining by itself with no chunk lost.
 *
 * Wall times of the check run, the fresh run and the re-run are logged (t.log) for the issue note.
 * This file is `npm run test:lab` (what CI runs); it starts from blank VMs: a lab that is already up is taken
 * down first. It leaves the network built. The module tests (`npm run test:lab:modules`) boot their own lab.
 */
import test, { type ExecutionContext } from 'ava';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { sh, type Command } from '../../lib/command.ts';
import type { RunEvent } from '../../lib/events.ts';
import { loadInventory, type Inventory } from '../../lib/inventory.ts';
import { runPlaybook } from '../../lib/runner.ts';
import { labDown, labStatus, labUp, rebootVm, type Lab } from '../../lab/lab.ts';
import { parseMfscli, allAtGoal, type MfscliReport } from '../../modules/moosefs/mfscli.ts';
import { exportsOf, san } from '../../playbooks/san.ts';
import { labConnections, type Ended } from './connections.ts';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HOSTS = ['sto1', 'sto2', 'chunk1', 'chunk2', 'chunk3', 'master'] as const;
const CHUNKS = ['chunk1', 'chunk2', 'chunk3'] as const;
const MASTER_IP = '10.3.1.100';
/** Where this test writes on the MooseFS client mount. */
const FILES = '/mnt/mfs/sanbook-test';

let lab: Lab;
let inventory: Inventory;
const conns = labConnections(() => lab);
const out = (host: string, script: Command, timeoutMs = 120_000): Promise<string> => conns.out(host, script, timeoutMs);

async function run(check = false, tags: readonly string[] = []): Promise<{ exitCode: number; ended: Ended[]; seconds: number }> {
  const ended: Ended[] = [];
  const reporter = {
    onEvent(e: RunEvent) {
      if (e.type === 'host:end') ended.push({ host: e.host, task: e.task, status: e.status, changes: e.changes.map((c) => c.summary), ...(e.message ? { message: e.message } : {}) });
    },
    done: async () => undefined,
  };
  const started = Date.now();
  const r = await runPlaybook(san.build(inventory), { inventory, check, tags, reporters: [reporter] });
  return { exitCode: r.exitCode, ended, seconds: Math.round((Date.now() - started) / 1000) };
}
const changed = (ended: readonly Ended[]): Ended[] => ended.filter((e) => e.changes.length > 0);
const failures = (ended: readonly Ended[]): string => JSON.stringify(ended.filter((e) => e.status === 'failed' || e.status === 'unreachable'));

/**
 * What a run may have changed on a VM: files under the system's directories newer than a mark written before it,
 * the md arrays, the iSCSI sessions, the block devices' signatures and the active units. Check mode must leave
 * every part of it as it was.
 */
const MARK = '/run/sanbook-san-mark';
const footprint = sh`find /etc /usr /boot /opt /srv /mnt /var/lib -xdev -newer ${MARK} ! -path '/var/lib/systemd/*' -print 2>/dev/null | sort
echo '-- md'; cat /proc/mdstat 2>/dev/null | grep ^md || :
echo '-- sessions'; ls /sys/class/iscsi_session 2>/dev/null || :
echo '-- devices'; lsblk -rno NAME,FSTYPE,MOUNTPOINT | sort
echo '-- units'; systemctl list-units --no-legend --plain --state=active | awk '{print $1}' | grep -Ev '^(session-[0-9]+[.]scope|user@[0-9]+[.]service|user-[0-9]+[.]slice|user-runtime-dir@[0-9]+[.]service)$' | sort`;

/** The files of the 200-file set and the 64 MiB file on the client mount, by checksum (sorted). */
const checksums = (host: string): Promise<string> => out(host, sh`cd ${FILES} && find . -type f -print0 | sort -z | xargs -0 sha256sum`, 300_000);

async function cluster(): Promise<MfscliReport> {
  return parseMfscli(await out('master', sh`mfscli -H ${MASTER_IP} -n -p -SIN -SCS -SHD -SMB`));
}

/** Waits until the master reports every chunk at its goal (replication takes a while after writes or a rejoin). */
async function untilAtGoal(t: ExecutionContext, timeoutMs = 600_000): Promise<MfscliReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await cluster();
    if (r.chunkservers.length === CHUNKS.length && allAtGoal(r)) return r;
    if (Date.now() > deadline) {
      t.log(`after ${timeoutMs / 1000} s: ${r.chunkservers.length} chunkservers, classes ${JSON.stringify(r.classes)}`);
      return r;
    }
    await new Promise((res) => setTimeout(res, 5_000));
  }
}

const verifyStatus = (ended: readonly Ended[]): Record<string, string> =>
  Object.fromEntries(ended.filter((e) => e.task === 'the network works end to end').map((e) => [e.host, e.status === 'failed' ? `failed: ${e.message ?? ''}` : e.status]));
const VERIFIED = { chunk1: 'ok', chunk2: 'ok', chunk3: 'ok', master: 'ok' };

test.before(async (t) => {
  const log = (l: string): void => t.log(l);
  const status = await labStatus(projectRoot);
  // Blank VMs or nothing: a lab of another topology, or one this playbook (or another test) has worked on, goes.
  if (status !== undefined) await labDown({ projectRoot, log });
  lab = await labUp({ projectRoot, topology: 'full', log });
  inventory = await loadInventory(lab.inventoryFile);
});

test.after.always(async () => {
  await conns.closeAll();
});

let check: Awaited<ReturnType<typeof run>>;
let real: Awaited<ReturnType<typeof run>>;

test.serial('check mode on the fresh lab changes nothing on any VM', async (t) => {
  for (const h of HOSTS) await out(h, sh`touch ${MARK}; sleep 1`);
  const before = await Promise.all(HOSTS.map((h) => out(h, footprint)));
  check = await run(true);
  t.log(`check mode: ${check.seconds} s`);
  t.is(check.exitCode, 0, failures(check.ended));
  const after = await Promise.all(HOSTS.map((h) => out(h, footprint)));
  HOSTS.forEach((h, i) => t.is(after[i], before[i], `check mode changed ${h}`));
  t.deepEqual(check.ended.filter((e) => e.status === 'failed'), []);
  // Every host was planned: its packages at least, and every task either planned or said why it cannot be yet.
  for (const h of HOSTS) t.true(check.ended.some((e) => e.host === h && e.changes.length > 0), `nothing planned on ${h}`);
  for (const e of check.ended.filter((x) => x.status === 'skipped')) t.regex(e.message ?? '', /not plannable before the changes planned above/, `${e.host} ${e.task}`);
});

test.serial('the real run that follows makes exactly the planned changes, and every verify assertion passes', async (t) => {
  t.truthy(check, 'the check run did not happen');
  real = await run();
  t.log(`fresh run: ${real.seconds} s`);
  t.is(real.exitCode, 0, failures(real.ended));
  t.deepEqual(verifyStatus(real.ended), VERIFIED);
  let planned = 0;
  for (const p of check.ended) {
    const done = real.ended.find((e) => e.host === p.host && e.task === p.task);
    t.truthy(done, `${p.host} ${p.task}: in the check run, not in the real run`);
    if (p.status === 'skipped') continue; // not plannable before earlier changes: said so in the plan
    planned++;
    t.deepEqual(done?.changes, p.changes, `${p.host} ${p.task}: the real run's changes differ from the plan`);
  }
  t.is(real.ended.length, check.ended.length, 'the real run ran other tasks than the check run');
  t.log(`check mode planned ${planned} of ${check.ended.length} host tasks exactly; the others were not plannable before the packages were in`);
  // What the verify play asserted, seen independently: each chunk host, two maps of two active paths, XFS mounted.
  const exports = exportsOf(inventory);
  for (const c of CHUNKS) {
    const maps = await out(c, sh`multipathd show maps raw format '%n %w %N %t'`);
    for (const e of exports.filter((x) => x.chunkHost === c)) {
      t.regex(maps, new RegExp(`^${e.alias} ${e.wwid} 2 active$`, 'm'), `${c}: ${e.alias}`);
      t.is((await out(c, sh`findmnt -n -o SOURCE,FSTYPE --mountpoint ${e.mountPoint}`)).trim(), `/dev/mapper/${e.alias}-part1 xfs`);
    }
  }
});

test.serial('firewalld: the ports are open in both planes on every host', async (t) => {
  const want: Record<(typeof HOSTS)[number], string> = { sto1: '3260/tcp', sto2: '3260/tcp', chunk1: '9422/tcp', chunk2: '9422/tcp', chunk3: '9422/tcp', master: '9419-9421/tcp 9425/tcp' };
  for (const h of HOSTS) {
    const runtime = (await out(h, sh`firewall-cmd --list-ports`)).trim();
    const permanent = (await out(h, sh`firewall-cmd --permanent --list-ports`)).trim();
    t.is(runtime.split(' ').sort().join(' '), want[h], `${h} runtime`);
    t.is(permanent.split(' ').sort().join(' '), want[h], `${h} permanent`);
  }
});

test.serial('the files that hold CHAP secrets on the hosts are readable by root only (no access for other users)', async (t) => {
  const holders: Record<string, ReturnType<typeof sh>> = {
    // rtslib's saveconfig.json: "chap_password", "chap_mutual_password", "discovery_password".
    sto1: sh`grep -l '_password": "[^"]' /etc/rtslib-fb-target/saveconfig.json || :`,
    sto2: sh`grep -l '_password": "[^"]' /etc/rtslib-fb-target/saveconfig.json || :`,
    chunk1: sh`grep -rlE '^node\.session\.auth\.password *= *[^ ]' /etc/iscsi || :`,
    chunk2: sh`grep -rlE '^node\.session\.auth\.password *= *[^ ]' /etc/iscsi || :`,
    chunk3: sh`grep -rlE '^node\.session\.auth\.password *= *[^ ]' /etc/iscsi || :`,
  };
  const seen: string[] = [];
  for (const [h, find] of Object.entries(holders)) {
    const files = (await out(h, find)).split('\n').filter((f) => f !== '');
    t.true(files.length > 0, `${h}: no file holds a CHAP secret (the test would prove nothing)`);
    for (const f of files) {
      const [mode = '', owner = ''] = (await out(h, sh`stat -c '%a %U' -- ${f}`)).trim().split(' ');
      seen.push(`${h}:${f} ${mode} ${owner}`);
      t.is(owner, 'root', `${h}:${f}`);
      t.is(Number.parseInt(mode, 8) & 0o007, 0, `${h}:${f} is open to other users (mode ${mode})`);
    }
  }
  t.log(seen.join('\n'));
});

test.serial('MooseFS: the web UI answers on 9425; 200 files and 64 MiB written through the client read back identical; 3 chunkservers, every chunk at goal 2', async (t) => {
  // From a chunk host, through the master's firewall (the guests have python3, not curl).
  const url = `http://${MASTER_IP}:9425/mfs.cgi?masterhost=${MASTER_IP}`;
  const page = await out('chunk1', sh`python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=60).read().decode())' ${url}`);
  t.regex(page, /MooseFS/);
  await out('master', sh`rm -rf ${FILES} && mkdir -p ${FILES}/small && cd ${FILES}
i=1; while [ $i -le 200 ]; do head -c $(( (i * 7919) % 65536 + 1 )) /dev/urandom > small/f$i; i=$((i + 1)); done
head -c 64M /dev/urandom > big && sync && find . -type f -print0 | sort -z | xargs -0 sha256sum > /root/sanbook-test.sums`, 600_000);
  const files = Number((await out('master', sh`find ${FILES} -type f | wc -l`)).trim());
  t.is(files, 201);
  // Read back through a fresh view: the client's cache dropped first.
  await out('master', sh`sync; echo 3 > /proc/sys/vm/drop_caches`);
  t.is(await checksums('master'), await out('master', sh`cat /root/sanbook-test.sums`));
  const r = await untilAtGoal(t);
  t.is(r.chunkservers.length, 3);
  t.deepEqual(r.chunkservers.map((c) => c.host).sort(), ['10.3.1.101', '10.3.1.102', '10.3.1.103']);
  t.true(allAtGoal(r), JSON.stringify(r.classes));
  t.true(r.copies.length > 0 && r.copies.every((c) => c.goal === 2 && c.copies === 2), JSON.stringify(r.copies));
  t.log(`chunks: ${r.copies.map((c) => `${c.chunks} at goal ${c.goal} with ${c.copies} copies`).join(', ')}`);
});

test.serial('a second run changes nothing on any host', async (t) => {
  const again = await run();
  t.log(`re-run: ${again.seconds} s`);
  t.is(again.exitCode, 0, failures(again.ended));
  t.deepEqual(changed(again.ended), []);
  t.deepEqual(verifyStatus(again.ended), VERIFIED);
});

test.serial('after a reboot of sto1 and of chunk1, the verify play passes again, the chunkserver has rejoined and no chunk is lost', async (t) => {
  for (const h of ['sto1', 'chunk1']) {
    await conns.drop(h);
    t.log(`${h} rebooted in ${Math.round((await rebootVm(lab, h)) / 1000)} s`);
    t.regex(await out(h, sh`cat /proc/cmdline`), /BOOT_IMAGE=\/boot\/vmlinuz-/, `${h}: not booted by GRUB from its own disk`);
    const failed = (await out(h, sh`systemctl list-units --failed --no-legend --plain | awk '{print $1}'`)).trim();
    t.is(failed, '', `${h}: units failed at boot`);
  }
  // While sto1 rebooted, every chunk host lost both paths of its LUN there for minutes: multipath must have
  // queued the I/O (no_path_retry in overrides), not failed it, or XFS shuts down and stays mounted, dead.
  for (const h of CHUNKS) {
    const shut = (await out(h, sh`journalctl -k -b --no-pager -o cat | grep -E 'XFS .*(shut down|log I/O error)' || :`)).trim();
    t.is(shut, '', `${h}: XFS failed while sto1 rebooted`);
  }
  // The read-only health check: the storage hosts' targets gathered (in check mode: nothing to change), then
  // the verify play.
  const after = await run(true, ['verify']);
  t.log(`--check --tags verify after the reboots: ${after.seconds} s`);
  t.is(after.exitCode, 0, failures(after.ended));
  t.deepEqual(changed(after.ended), [], 'the targets would change after the reboots');
  t.deepEqual([...new Set(after.ended.map((e) => e.task))], ['iSCSI targets, one per chunk host', 'the network works end to end']);
  t.deepEqual(verifyStatus(after.ended), VERIFIED);
  const r = await untilAtGoal(t);
  t.is(r.chunkservers.length, 3);
  t.true(allAtGoal(r), `chunks not at goal after chunk1 rejoined: ${JSON.stringify(r.classes)}`);
  t.is(r.classes?.missing, 0);
  await out('master', sh`sync; echo 3 > /proc/sys/vm/drop_caches`);
  t.is(await checksums('master'), await out('master', sh`cat /root/sanbook-test.sums`));
});
