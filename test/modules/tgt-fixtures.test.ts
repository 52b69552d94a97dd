/**
 * The tgt module on output recorded from tgt 1.0.85 on the lab VMs (test/fixtures/tgt, and the initiator's
 * side in test/fixtures/iscsiadm): the parsers, the real gather script run by /bin/sh with the tools replaced
 * by shell functions replaying the recordings, and the plans those recordings lead to.
 */
import test from 'ava';
import { fixture } from '../helpers/fixtures.ts';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DestructiveChangeError, runModule } from '../../lib/apply.ts';
import { quote, type Command } from '../../lib/command.ts';
import type { Connection, ExecResult } from '../../lib/connection/types.ts';
import type { HostFacts } from '../../lib/facts.ts';
import { deleteAccount, dropSessions, gatherScript, maskConf, tgtAdmin, parseConf, parseGather, parseShowTarget, renderConf, tgt, wantedTargets, type TgtParams } from '../../modules/tgt.ts';

const load = fixture;
const show = (name: string) => parseShowTarget(load(`tgt/${name}`).stdout);

const T1 = 'iqn.2024-12.tp2.b3:tgt-t1';
const CHUNK1 = 'iqn.2024-12.tp2.b3:chunk1';
const IMG = '/var/lib/tgt-t1.img';

test('recorded with tgt 1.0.85 (Debian 12) by the very command gather runs', (t) => {
  for (const name of ['show-target', 'show-target-session']) {
    const f = load(`tgt/${name}`);
    t.is(f.tool, 'tgt 1:1.0.85-1+deb12u1');
    t.is(f.exitCode, 0);
    t.is(f.command, 'tgtadm --lld iscsi --op show --mode target');
    t.true(gatherScript(tgt.validate({ name: 'x' })).display.includes(f.command));
  }
});

test('show-target: one target, no session, LUN 0 the controller, LUN 1 the image, ALL bound beside the name', (t) => {
  const [target, ...more] = show('show-target');
  t.is(more.length, 0);
  t.is(target?.tid, 1);
  t.is(target?.iqn, T1);
  t.is(target?.driver, 'iscsi');
  t.is(target?.state, 'ready');
  t.deepEqual(target?.sessions, []);
  t.deepEqual(target?.luns.map((l) => [l.lun, l.type, l.backingType, l.path, l.sizeMB]), [[0, 'controller', 'null', null, 0], [1, 'disk', 'rdwr', IMG, 67]]);
  t.true(target?.luns[1]?.online);
  t.false(target?.luns[1]?.readonly);
  t.deepEqual(target?.accounts, ['tgtuser']);
  t.is(target?.outgoingAccount, null);
  t.deepEqual(target?.acls, ['ALL', CHUNK1]);
});

test('show-target-session: the I_T nexus of chunk1 from 10.3.1.101', (t) => {
  const [target] = show('show-target-session');
  t.deepEqual(target?.sessions, [{ nexus: 1, initiator: CHUNK1, alias: 'chunk1', connections: [{ cid: 0, address: '10.3.1.101' }] }]);
  t.deepEqual(target?.luns.map((l) => l.path), [null, IMG], 'the nexus block does not disturb the LUNs after it');
  t.deepEqual(target?.acls, ['ALL', CHUNK1]);
});

test('tgt-admin --dump: what a dump restores is the trap (ALL written as a name, no initiator-address), passwords lost', (t) => {
  const dump = load('tgt/dump');
  t.is(dump.command, 'tgt-admin --dump');
  const lines = dump.stdout.split('\n').map((l) => l.trim());
  t.true(lines.includes(`backing-store ${IMG}`));
  t.true(lines.includes('initiator-name ALL'));
  t.true(lines.includes(`initiator-name ${CHUNK1}`));
  t.false(lines.some((l) => l.startsWith('initiator-address')));
  const [target] = parseConf(dump.stdout);
  t.is(target?.iqn, T1);
  t.deepEqual([...(target?.incoming.keys() ?? [])], ['tgtuser']);
  t.is(target?.incoming.get('tgtuser')?.reveal(), 'PLEASE_CORRECT_THE_PASSWORD');
  t.true(maskConf(dump.stdout).includes('incominguser tgtuser ***'));
  t.false(maskConf(dump.stdout).includes('PLEASE_CORRECT'));
});

test('the initiator side: discovery offers the target, the login that made the session succeeded', (t) => {
  const discovery = load('iscsiadm/discovery-tgt');
  t.is(discovery.stdout.trim(), `10.3.1.100:3260,1 ${T1}`);
  t.is(load('iscsiadm/login-tgt').exitCode, 0);
  const failed = load('iscsiadm/login-chap-failed');
  t.is(failed.exitCode, 24);
  t.regex(failed.stderr, /authorization failure/);
  t.is(show('show-target-session')[0]?.sessions[0]?.initiator, CHUNK1);
});

// ---- the real scripts under /bin/sh, with tgtadm, tgt-admin and systemctl replaced by stubs replaying recordings ----

/** "TOOL ARGS" -> what the stub prints and its exit code, or a shell body of its own (a reply that changes between calls). */
type Replies = Record<string, { stdout: string; exitCode: number } | { script: string }>;

/** Run a script under /bin/sh with tgtadm, tgt-admin and systemctl replaced by stubs: "TOOL $*" -> recorded reply. */
function runStubbed(script: Command, replies: Replies): ExecResult {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-tgt-'));
  try {
    const arms = Object.entries(replies).map(([args, r], i) => {
      if ('script' in r) return `${quote(args)}) ${r.script};;`;
      writeFileSync(join(dir, `${i}.out`), r.stdout);
      return `${quote(args)}) cat ${quote(join(dir, `${i}.out`))}; exit ${r.exitCode};;`;
    });
    mkdirSync(join(dir, 'bin'));
    for (const tool of ['tgtadm', 'tgt-admin', 'systemctl']) {
      writeFileSync(join(dir, 'bin', tool), `#!/bin/sh\ncase "${tool} $*" in ${arms.join(' ')} esac\necho "no stub: ${tool} $*" >&2; exit 99\n`, { mode: 0o755 });
    }
    const r = spawnSync('/bin/sh', ['-c', `PATH=${quote(join(dir, 'bin'))}:$PATH\n${script.script.toString('utf8')}`], { encoding: 'utf8' });
    return { exitCode: r.status ?? 1, stdout: r.stdout, stderr: r.stderr, stdoutBytes: Buffer.from(r.stdout), signal: null, timedOut: false, durationMs: 0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const running = (showName: string): Replies => ({
  'tgtadm --lld iscsi --op show --mode target': { stdout: load(`tgt/${showName}`).stdout, exitCode: 0 },
  'systemctl is-active tgt': { stdout: 'active\n', exitCode: 0 },
  'systemctl is-enabled tgt': { stdout: 'enabled\n', exitCode: 0 },
});

test('gather: the script runs and splits into the facts (no conf file, one store present, one missing)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-tgt-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'disk.img'), 'x');
  const params = tgt.validate({ name: 'sanbook-test-no-such-file', targets: [{ iqn: T1, backingStores: [join(dir, 'disk.img'), join(dir, 'gone.img'), dir], allowAll: true }] });
  const r = runStubbed(gatherScript(params), running('show-target-session'));
  t.is(r.exitCode, 0, r.stderr);
  const facts = parseGather(r.stdout, params);
  t.is(facts.conf, null);
  t.true(facts.running);
  t.deepEqual(facts.service, { active: 'active', enabled: 'enabled' });
  t.deepEqual(facts.targets, show('show-target-session'));
  t.deepEqual(facts.stores, { [join(dir, 'disk.img')]: 'file', [join(dir, 'gone.img')]: 'missing', [dir]: 'directory' });
  t.is(facts.dropIn, undefined, 'no drop-in read unless ipv6Portal is given');
  t.throws(() => tgt.plan(params, facts), { message: /backing store .*gone\.img does not exist/ });
});

test('gather: tgtd not running is a fact, not an error; tgt not installed is an error', (t) => {
  const params = tgt.validate({ name: 'sanbook-test-no-such-file' });
  const down = runStubbed(gatherScript(params), {
    'tgtadm --lld iscsi --op show --mode target': { stdout: 'tgtd is down\n', exitCode: 107 },
    'systemctl is-active tgt': { stdout: 'inactive\n', exitCode: 3 },
    'systemctl is-enabled tgt': { stdout: 'disabled\n', exitCode: 1 },
  });
  const facts = parseGather(down.stdout, params);
  t.false(facts.running);
  t.is(facts.error, 'tgtd is down');
  t.deepEqual(facts.targets, []);
  t.deepEqual(facts.service, { active: 'inactive', enabled: 'disabled' });
  const missing = spawnSync('/bin/sh', ['-c', `PATH=/nonexistent\n${gatherScript(params).script.toString('utf8')}`], { encoding: 'utf8' });
  t.throws(() => parseGather(missing.stdout, params), { message: /tgt is not installed/ });
});

// ---- plans on the recorded state ----

/** The task that built the recorded target, password included (tgtd does not show it: the conf file does). */
const recorded = (over: object = {}) => ({ iqn: T1, backingStores: [IMG], initiatorNames: [CHUNK1], incomingUsers: [{ user: 'tgtuser', password: 'labsecret-tgt1' }], ...over });
const task = (target: object, extra: object = {}): TgtParams => tgt.validate({ name: 'lab', targets: [target], ...extra });
const confOf = (p: TgtParams) => ({ text: renderConf(p.name, wantedTargets(p.targets ?? [])).content, mode: '600' });
const facts = (showName: string, conf: TgtParams) => ({
  conf: confOf(conf),
  running: true,
  error: '',
  targets: show(showName),
  service: { active: 'active', enabled: 'enabled' },
  stores: { [IMG]: 'file', '/dev/md/data1': 'block' },
});

test('converged: allowAll + the name is exactly the recorded ACL (ALL, chunk1)', (t) => {
  const p = task(recorded({ allowAll: true }));
  t.deepEqual(tgt.plan(p, facts('show-target', p)), []);
  t.deepEqual(tgt.plan(p, facts('show-target-session', p)), [], 'a session changes nothing when nothing differs');
});

test('the ALL trap: a name-only task fixes the recorded target (0.0.0.0/32 replaces ALL)', (t) => {
  const p = task(recorded());
  const changes = tgt.plan(p, facts('show-target', task(recorded({ allowAll: true }))));
  t.deepEqual(changes.map((c) => c.summary), [
    'update /etc/tgt/conf.d/lab.conf (1 target)',
    `update target ${T1} (tid 1): ALL is bound, any initiator can log in: ACL ALL, ${CHUNK1} -> 0.0.0.0/32, ${CHUNK1}`,
  ]);
  const put = changes[0]?.steps[0];
  t.true(put?.kind === 'put' && String(put.content).includes('    initiator-address 0.0.0.0/32\n    initiator-name iqn.2024-12.tp2.b3:chunk1\n'));
  t.false(String(put?.kind === 'put' ? put.content : '').includes('initiator-address ALL'));
  t.deepEqual(changes[1]?.steps.map((s) => (s.kind === 'exec' ? s.command.display : '')), [`tgt-admin --update ${T1} -c /etc/tgt/conf.d/lab.conf`]);
  t.true(changes.every((c) => c.destructive === undefined));
});

test('the ALL trap with chunk1 logged in: its session is dropped first (not with tgt-admin -f), not destructive', (t) => {
  const changes = tgt.plan(task(recorded()), facts('show-target-session', task(recorded({ allowAll: true }))));
  const update = changes[1];
  t.regex(update?.summary ?? '', /; the sessions of iqn\.2024-12\.tp2\.b3:chunk1 \(10\.3\.1\.101\) are dropped first and log in again$/);
  t.deepEqual(update?.steps.map((s) => (s.kind === 'exec' ? s.command.display : '')), [
    'tgtadm --lld iscsi --op update --mode target --tid 1 -n state -v offline',
    `tgtadm --lld iscsi --op delete --mode conn --tid 1 --sid 1 --cid 0 (${CHUNK1})`,
    'wait until tid 1 has no connection left (15 s at most)',
    `tgt-admin --update ${T1} -c /etc/tgt/conf.d/lab.conf`,
  ]);
  t.is(update?.destructive, undefined, 'chunk1 is still admitted, by name');
});

test('an ACL that shuts the logged-in chunk1 out is destructive', (t) => {
  const changes = tgt.plan(task(recorded({ initiatorNames: ['iqn.2024-12.tp2.b3:chunk2'] })), facts('show-target-session', task(recorded({ allowAll: true }))));
  t.is(changes[1]?.destructive, `target ${T1} is in use by ${CHUNK1} (10.3.1.101): the new ACL shuts out ${CHUNK1} (10.3.1.101)`);
});

/** A connection whose commands run the real scripts under /bin/sh with the recorded tools; writes are only noted. */
function stubConnection(replies: Replies): Connection & { puts: string[] } {
  const puts: string[] = [];
  let count = 0;
  const exec = async (command: Command) => (count++, runStubbed(command, replies));
  return { host: 'master', puts, exec, put: async (path: string) => void puts.push(path), close: async () => {}, get commandCount() { return count; } };
}

test('in use: changing the LUN under chunk1 is refused, naming the target and the initiator; nothing runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-tgt-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, 'x');
  const conn = stubConnection(running('show-target-session'));
  const hostFacts = { systemd: true, os: { family: 'debian' } } as unknown as HostFacts;
  const params = { name: 'sanbook-test-no-such-file', targets: [{ iqn: T1, backingStores: [disk], allowAll: true, initiatorNames: [CHUNK1] }] };
  const e = await t.throwsAsync(runModule(conn, tgt, params, { facts: hostFacts }), { instanceOf: DestructiveChangeError });
  t.is(e?.refused.length, 1);
  t.is(
    e?.refused[0]?.destructive,
    `target ${T1} is in use by ${CHUNK1} (10.3.1.101): LUNs 1 ${IMG} -> 1 ${disk}; CHAP accounts tgtuser -> (none)`,
  );
  t.regex(e?.message ?? '', new RegExp(`^refused destructive change \\(set force: true to allow\\): update target ${T1} \\(tid 1\\): `));
  t.deepEqual(conn.puts, [], 'the conf file was not written');
  t.is(conn.commandCount, 1, 'only the gather ran');
});

test('absent: the file goes, the target is deleted; with chunk1 logged in that is destructive', (t) => {
  const conf = task(recorded({ allowAll: true }));
  const absent = tgt.validate({ name: 'lab', state: 'absent' });
  const idle = tgt.plan(absent, facts('show-target', conf));
  t.deepEqual(idle.map((c) => c.summary), ['remove /etc/tgt/conf.d/lab.conf', `delete target ${T1} (tid 1)`]);
  t.deepEqual(idle.flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.display : ''))), ['rm -f -- /etc/tgt/conf.d/lab.conf', `tgt-admin --delete ${T1}`]);
  t.true(idle.every((c) => c.destructive === undefined));
  const used = tgt.plan(absent, facts('show-target-session', conf));
  t.is(used[1]?.destructive, `target ${T1} is in use: deleting it cuts off ${CHUNK1} (10.3.1.101)`);
  t.deepEqual(used[1]?.steps.map((s) => (s.kind === 'exec' ? s.command.display : '')).slice(-2), ['wait until tid 1 has no connection left (15 s at most)', `tgt-admin --delete ${T1}`]);
  t.deepEqual(tgt.plan(absent, { ...facts('show-target', conf), conf: null, targets: [] }), [], 'converged');
});

test('output: the recorded target as later tasks read it, no secret', (t) => {
  const p = task(recorded({ allowAll: true }));
  const out = tgt.output?.(p, facts('show-target-session', p));
  t.deepEqual(out, {
    targets: [{ iqn: T1, tid: 1, luns: [{ lun: 1, path: IMG, sizeMB: 67 }], acls: ['ALL', CHUNK1], accounts: ['tgtuser'], outgoingAccount: null, sessions: [{ initiator: CHUNK1, address: '10.3.1.101' }] }],
  });
  t.false(JSON.stringify(out).includes('labsecret'));
});

// ---- the apply steps' scripts, against what tgt-admin 1.0.85 prints (its source: execute() and main_delete()) ----

const UPDATE = `tgt-admin -v --update ${T1} -c /etc/tgt/conf.d/lab.conf`;
const ACCOUNT = 'tgtadm -C 0 --lld iscsi --mode account --op new --user=tgtuser --password=labsecret-tgt1';

test('tgt-admin step: success passes; a target skipped as in use (exit 0!) fails; passwords never reach stderr', (t) => {
  const step = tgtAdmin(['--update', T1, '-c', '/etc/tgt/conf.d/lab.conf']);
  t.is(step.display, `tgt-admin --update ${T1} -c /etc/tgt/conf.d/lab.conf`);
  t.is(runStubbed(step, { [UPDATE]: { stdout: `# Removing target: ${T1}\n${ACCOUNT}\n`, exitCode: 0 } }).exitCode, 0);
  const skipped = runStubbed(step, { [UPDATE]: { stdout: `# Target with tid 1 (${T1}) is in use, it won't be updated.\n`, exitCode: 0 } });
  t.is(skipped.exitCode, 1);
  t.regex(skipped.stderr, /is in use, it won't be updated/);
  const device = runStubbed(step, { [UPDATE]: { stdout: '# Skipping device /dev/md/data1 - it is in use.\n', exitCode: 0 } });
  t.is(device.exitCode, 1);
  const failed = runStubbed(step, { [UPDATE]: { stdout: `${ACCOUNT}\nCommand:\n\t${ACCOUNT}\nexited with code: 5.\n`, exitCode: 5 } });
  t.is(failed.exitCode, 5);
  t.regex(failed.stderr, /exited with code: 5/);
  t.false(failed.stderr.includes('labsecret-tgt1'));
});

test('tgt-admin step: "still active" (sessions not gone yet after -f) is retried', (t) => {
  const step = tgtAdmin(['--update', T1, '-c', '/etc/tgt/conf.d/lab.conf', '-f']);
  const once = `if [ -e "$TMPDIR/tried" ]; then echo ok; exit 0; fi; : > "$TMPDIR/tried"; echo 'tgtadm: this target is still active'; exit 13`;
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-tgt-retry-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = runStubbed(step, { [`${UPDATE} -f`]: { script: once.replace(/\$TMPDIR/g, dir) } });
  t.is(r.exitCode, 0, r.stderr);
});

test('account deletion: "can\'t find the account" is fine, any other error fails', (t) => {
  const key = 'tgtadm --lld iscsi --mode account --op delete --user tgtuser';
  t.is(runStubbed(deleteAccount('tgtuser'), { [key]: { stdout: "tgtadm: can't find the account\n", exitCode: 22 } }).exitCode, 0);
  t.is(runStubbed(deleteAccount('tgtuser'), { [key]: { stdout: '', exitCode: 0 } }).exitCode, 0);
  const down = runStubbed(deleteAccount('tgtuser'), { [key]: { stdout: 'tgtadm: failed to send request hdr to tgt daemon\n', exitCode: 107 } });
  t.is(down.exitCode, 1);
  t.regex(down.stderr, /failed to send request/);
});

test('dropping sessions: the wait ends when tgtd shows no connection left on that tid (only that one)', (t) => {
  const [live] = show('show-target-session');
  if (!live) throw new Error('fixture');
  const waitOf = (target: typeof live) => {
    const step = dropSessions(target).at(-1);
    return step?.kind === 'exec' ? step.command : undefined;
  };
  const wait = waitOf(live);
  if (!wait) throw new Error('no wait step');
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-tgt-wait-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'with'), load('tgt/show-target-session').stdout);
  writeFileSync(join(dir, 'without'), load('tgt/show-target').stdout);
  // The first look still shows chunk1's connection, the second does not.
  const count = quote(join(dir, 'count'));
  const closing = `echo x >> ${count}; if [ "$(wc -l < ${count})" -gt 1 ]; then cat ${quote(join(dir, 'without'))}; else cat ${quote(join(dir, 'with'))}; fi; exit 0`;
  const r = runStubbed(wait, { 'tgtadm --lld iscsi --op show --mode target': { script: closing } });
  t.is(r.exitCode, 0, r.stderr);
  t.is(readFileSync(join(dir, 'count'), 'utf8'), 'x\nx\n', 'it looked again after seeing the connection');
  const other = waitOf({ ...live, tid: 2 });
  if (!other) throw new Error('no wait step');
  t.is(runStubbed(other, { 'tgtadm --lld iscsi --op show --mode target': { stdout: load('tgt/show-target-session').stdout, exitCode: 0 } }).exitCode, 0, "tid 1's connection is not tid 2's");
});
