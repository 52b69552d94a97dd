/**
 * The iscsiadm module on output recorded from open-iscsi 2.1.8 on the lab VMs (test/fixtures/iscsiadm): the
 * parsers, and the module's real scripts (gather, login, discovery + prune) run by /bin/sh with iscsiadm,
 * systemctl, lsblk and id replaced by stubs on PATH that replay the recordings. Nothing runs iscsiadm here.
 */
import test from 'ava';
import { fixture, type Recorded } from '../helpers/fixtures.ts';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyChanges, StepError } from '../../lib/apply.ts';
import { quote, type Command } from '../../lib/command.ts';
import type { Connection, ExecResult } from '../../lib/connection/types.ts';
import { discoverCommand, gatherScript, iscsiadm, layoutOf, loginCommand, parseIscsiadmGather, parseNodeList, parseRecord, parseSessions } from '../../modules/iscsiadm.ts';

const load = fixture;
const T1 = 'iqn.2024-12.tp2.b3:data-chunk1';
const T2 = 'iqn.2024-12.tp2.b3:data-chunk2';
const TGT = 'iqn.2024-12.tp2.b3:tgt-t1';
const CHUNK1 = 'iqn.2024-12.tp2.b3:chunk1';

/** The record as idbm writes its file: secrets in clear, empty values left out (idbm_print with show = 1). */
const recordFile = (address = '10.3.1.1'): string =>
  load('iscsiadm/node-record')
    .stdout.split('\n')
    .filter((l) => !l.endsWith(' = <empty>'))
    .map((l) => (l === 'node.session.auth.password = ********' ? 'node.session.auth.password = labsecret-chunk1' : l))
    .map((l) => (l === 'node.session.auth.password_in = ********' ? 'node.session.auth.password_in = labsecret-sto1x' : l))
    .map((l) => (l.startsWith('node.conn[0].address = ') ? `node.conn[0].address = ${address}` : l))
    .join('\n');

test('recorded with open-iscsi 2.1.8 by the commands the module runs', (t) => {
  for (const name of ['node-list', 'node-none', 'session-P3', 'session-none', 'discovery-1', 'node-record', 'login', 'login-denied']) {
    t.is(load(`iscsiadm/${name}`).tool, 'open-iscsi 2.1.8-1');
  }
  const gather = gatherScript(iscsiadm.validate({}), { namePath: '/n', confPath: '/c', nodesDir: '/d', loginService: 'open-iscsi.service' }, true).display;
  t.true(gather.includes(load('iscsiadm/node-list').command));
  t.true(gather.includes(load('iscsiadm/session-P3').command));
  const login = loginCommand({ target: TGT, portal: '10.3.1.100:3260', initiator: CHUNK1 }).display;
  t.is(login.replace(' --login', ' -l'), load('iscsiadm/login-tgt').command);
});

test('node list and discoveries: portal, tpgt, target of each line', (t) => {
  const nodes = parseNodeList(load('iscsiadm/node-list').stdout);
  t.deepEqual(nodes, [
    { portal: '10.3.1.1:3260', tpgt: 1, target: T1 },
    { portal: '10.3.2.1:3260', tpgt: 1, target: T1 },
    { portal: '10.3.1.1:3260', tpgt: 1, target: T2 },
  ]);
  t.deepEqual(parseNodeList(load('iscsiadm/discovery-1').stdout), nodes, 'discovery at 10.3.1.1 offers what the node list holds');
  t.deepEqual(parseNodeList(load('iscsiadm/discovery-2').stdout), nodes, 'so does 10.3.2.1: both portals of sto1 offer everything');
  t.deepEqual(parseNodeList(load('iscsiadm/discovery-tgt').stdout), [{ portal: '10.3.1.100:3260', tpgt: 1, target: TGT }]);
  const none = load('iscsiadm/node-none');
  t.is(none.exitCode, 21);
  t.regex(none.stderr, /No records found/);
  t.deepEqual(parseNodeList(none.stdout), []);
});

test('node record (iscsiadm -m node -T -p): values, masked secrets, <empty>', (t) => {
  const r = parseRecord(load('iscsiadm/node-record').stdout);
  t.is(r.target, T1);
  t.is(r.portal, '10.3.1.1:3260');
  t.is(r.tpgt, 1);
  t.is(r.iface, 'default');
  t.is(r.values.get('node.startup'), 'automatic');
  t.is(r.values.get('node.session.auth.authmethod'), 'CHAP');
  t.is(r.values.get('node.session.auth.username'), 'chunk1');
  t.is(r.values.get('node.session.auth.username_in'), 'sto1');
  t.is(r.values.get('node.session.timeo.replacement_timeout'), '120');
  t.is(r.values.get('node.discovery_address'), '10.3.2.1');
  t.is(r.values.get('iface.net_ifacename'), '', '<empty> is empty');
  t.is(r.secrets.get('node.session.auth.password'), null, 'printed masked: unknown');
  t.is(r.secrets.get('node.session.auth.password_in'), null);
  t.false(r.values.has('node.session.auth.password'));
});

test('node record file: secrets in clear become Secrets; the header and empty values are tolerated', (t) => {
  const r = parseRecord(`# comment\n${recordFile('10.3.2.1')}`);
  t.is(r.portal, '10.3.2.1:3260');
  t.is(r.secrets.get('node.session.auth.password')?.reveal(), 'labsecret-chunk1');
  t.is(r.secrets.get('node.session.auth.password_in')?.reveal(), 'labsecret-sto1x');
  t.is(String(r.secrets.get('node.session.auth.password')), '***');
  t.false(r.values.has('iface.net_ifacename'));
  t.is(r.values.get('node.session.auth.username'), 'chunk1');
});

test('node-file.json: a record file as the module reads it (passwords in clear, no <empty> lines)', (t) => {
  const text = load('iscsiadm/node-file').stdout;
  t.regex(text, /^# BEGIN RECORD 2\.1\.8/);
  const r = parseRecord(text);
  t.is(r.target, T1);
  t.is(r.portal, '10.3.1.1:3260');
  t.is(r.values.get('node.startup'), 'automatic');
  t.is(r.values.get('node.session.auth.username'), 'chunk1');
  t.false([...r.values.values()].some((v) => v === '<empty>' || v === '********'));
  t.false([...r.secrets.values()].includes(null), 'a file holds the secrets in clear');
});

test('session -P 3: two sessions of data-chunk1, their portals, initiator, state and disks', (t) => {
  const s = parseSessions(load('iscsiadm/session-P3').stdout);
  t.deepEqual(
    s.map((x) => [x.target, x.portal, x.currentPortal, x.sid, x.iface, x.initiator, x.state, x.connectionState, x.disks]),
    [
      [T1, '10.3.2.1:3260', '10.3.2.1:3260', 7, 'default', CHUNK1, 'LOGGED_IN', 'LOGGED IN', ['sdb']],
      [T1, '10.3.1.1:3260', '10.3.1.1:3260', 8, 'default', CHUNK1, 'LOGGED_IN', 'LOGGED IN', ['sdc']],
    ],
  );
  // The flat listing of the same moment says the same.
  const flat = load('iscsiadm/session').stdout.trim().split('\n').map((l) => /^tcp: \[(\d+)\] (\S+),\d+ (\S+)/.exec(l)?.slice(1));
  t.deepEqual(flat, s.map((x) => [String(x.sid), x.portal, x.target]));
  const none = load('iscsiadm/session-none');
  t.is(none.exitCode, 21);
  t.deepEqual(parseSessions(none.stdout), []);
  // A session redirected by the target is connected elsewhere than its record's portal: the record's counts.
  const moved = parseSessions(load('iscsiadm/session-P3').stdout.replace('Current Portal: 10.3.2.1:3260,1', 'Current Portal: 10.3.2.9:3260,1'));
  t.deepEqual([moved[0]?.portal, moved[0]?.currentPortal], ['10.3.2.1:3260', '10.3.2.9:3260']);
});

test('layout: Red Hat keeps the records in /var/lib/iscsi and logs in at boot with iscsi.service; Debian with open-iscsi.service', (t) => {
  t.deepEqual(layoutOf('redhat'), { namePath: '/etc/iscsi/initiatorname.iscsi', confPath: '/etc/iscsi/iscsid.conf', nodesDir: '/var/lib/iscsi/nodes', loginService: 'iscsi.service' });
  t.deepEqual([layoutOf('debian').nodesDir, layoutOf('debian').loginService], ['/etc/iscsi/nodes', 'open-iscsi.service']);
});

// ---- the module's scripts under /bin/sh, with the tools replaced by stubs on PATH ----

/** tool -> shell body of the stub ("$*" is its arguments). */
type Stubs = Record<string, string>;
const replay = (r: Recorded): string => `printf '%s' ${quote(r.stdout)}; printf '%s' ${quote(r.stderr)} >&2; exit ${r.exitCode}`;

function run(script: Command, stubs: Stubs, dir: string): ExecResult {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  for (const [tool, body] of Object.entries(stubs)) writeFileSync(join(dir, 'bin', tool), `#!/bin/sh\necho "${tool} $*" >> ${quote(join(dir, 'calls'))}\n${body}\n`, { mode: 0o755 });
  const r = spawnSync('/bin/sh', ['-c', `PATH=${quote(join(dir, 'bin'))}:$PATH\n${script.script.toString('utf8')}`], { encoding: 'utf8' });
  return { exitCode: r.status ?? 1, stdout: r.stdout, stderr: r.stderr, stdoutBytes: Buffer.from(r.stdout), signal: null, timedOut: false, durationMs: 0 };
}
const calls = (dir: string): string[] => (existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n') : []);
const tmp = (t: { teardown(fn: () => void): void }): string => {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-iscsi-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

test('gather: one script, its sections parsed into the facts (record files read from the nodes dir)', (t) => {
  const dir = tmp(t);
  const layout = { namePath: join(dir, 'initiatorname.iscsi'), confPath: join(dir, 'iscsid.conf'), nodesDir: join(dir, 'nodes'), loginService: 'open-iscsi.service' };
  writeFileSync(layout.namePath, `## DO NOT EDIT OR REMOVE THIS FILE!\nInitiatorName=${CHUNK1}\n`);
  writeFileSync(layout.confPath, 'node.startup = automatic\n');
  for (const ip of ['10.3.1.1', '10.3.2.1']) {
    mkdirSync(join(layout.nodesDir, T1, `${ip},3260,1`), { recursive: true });
    writeFileSync(join(layout.nodesDir, T1, `${ip},3260,1`, 'default'), recordFile(ip));
  }
  const units: Record<string, [string, string]> = { 'iscsid.service': ['disabled', 'active'], 'iscsid.socket': ['enabled', 'active'], 'open-iscsi.service': ['enabled', 'active'] };
  const arms = Object.entries(units).map(([u, [e, a]]) => `"is-enabled ${u}") echo ${e};; "is-active ${u}") echo ${a};;`).join(' ');
  const p = iscsiadm.validate({ targets: [{ iqn: T1, portals: ['10.3.1.1'] }, { iqn: T2, state: 'absent' }] });
  const r = run(gatherScript(p, layout, true), {
    iscsiadm: `case "$*" in "-m node") ${replay(load('iscsiadm/node-list'))};; "-m session -P 3") ${replay(load('iscsiadm/session-P3'))};; esac; exit 99`,
    systemctl: `case "$*" in ${arms} esac; exit 1`,
    lsblk: `case "$*" in *MOUNTPOINTS*) ${replay(load('lsblk/chunk1-multipath'))};; esac; exit 1`,
    id: 'echo 0',
  }, dir);
  t.is(r.exitCode, 0, r.stderr);
  const f = parseIscsiadmGather(r.stdout, layout, 'chunk1');
  t.is(f.initiatorName, CHUNK1);
  t.is(f.conf.content?.toString(), 'node.startup = automatic\n');
  t.is(f.conf.stat?.type, 'file');
  t.deepEqual(f.records, parseNodeList(load('iscsiadm/node-list').stdout));
  t.deepEqual(f.recordFiles.map((x) => x.portal).sort(), ['10.3.1.1:3260', '10.3.2.1:3260']);
  t.is(f.recordFiles[0]?.secrets.get('node.session.auth.password')?.reveal(), 'labsecret-chunk1');
  t.deepEqual(f.sessions, parseSessions(load('iscsiadm/session-P3').stdout));
  t.deepEqual(f.blockdevs?.map((b) => b.name), ['fd0', 'sda', 'sdb', 'sdc']);
  t.deepEqual(f.units['iscsid.socket'], { enabled: 'enabled', active: 'active' });
  t.deepEqual(f.units['open-iscsi.service'], { enabled: 'enabled', active: 'active' });
  t.deepEqual(calls(dir).filter((c) => c.startsWith('iscsiadm')), ['iscsiadm -m node', 'iscsiadm -m session -P 3'], 'gather only reads');
});

test('gather: no records and no sessions (exit 21) are facts; a missing iscsiadm says to install open-iscsi', (t) => {
  const dir = tmp(t);
  const layout = { namePath: join(dir, 'none'), confPath: join(dir, 'none2'), nodesDir: join(dir, 'nodes'), loginService: 'iscsi.service' };
  const r = run(gatherScript(iscsiadm.validate({ targets: [{ iqn: T1, portals: ['10.3.1.1'] }] }), layout, false), {
    iscsiadm: `case "$*" in "-m node") ${replay(load('iscsiadm/node-none'))};; "-m session -P 3") ${replay(load('iscsiadm/session-none'))};; esac; exit 99`,
    lsblk: 'exit 1',
    id: 'echo 0',
  }, dir);
  const f = parseIscsiadmGather(r.stdout, layout, 'chunk1');
  t.deepEqual([f.records, f.sessions, f.recordFiles, f.units, f.initiatorName, f.conf.stat, f.blockdevs], [[], [], [], {}, null, null, null]);
  const missing = spawnSync('/bin/sh', ['-c', `PATH=/nonexistent\n${gatherScript(iscsiadm.validate({}), layout, false).script.toString('utf8')}`], { encoding: 'utf8' });
  t.throws(() => parseIscsiadmGather(missing.stdout, layout, 'chunk1'), { message: /iscsiadm is not installed on chunk1: install open-iscsi first/ });
  const user = run(gatherScript(iscsiadm.validate({}), layout, false), { iscsiadm: 'exit 21', id: 'echo 1000' }, dir);
  t.throws(() => parseIscsiadmGather(user.stdout, layout, 'chunk1'), { message: /needs root.*become: true/ });
});

test('gather() reads the host in one round trip (Debian layout, systemd units)', async (t) => {
  const dir = tmp(t);
  let n = 0;
  const conn: Connection = {
    host: 'chunk1',
    commandCount: 0,
    exec: async (c) => {
      n++;
      return run(c, {
        iscsiadm: `case "$*" in "-m node") ${replay(load('iscsiadm/node-none'))};; "-m session -P 3") ${replay(load('iscsiadm/session-P3'))};; esac; exit 99`,
        systemctl: 'case "$1" in is-enabled) echo enabled;; *) echo active;; esac',
        lsblk: replay(load('lsblk/chunk1-multipath')),
        id: 'echo 0',
      }, dir);
    },
    put: async () => undefined,
    close: async () => undefined,
  };
  const facts = { os: { id: 'debian', like: ['debian'], versionId: '12', prettyName: 'Debian 12', family: 'debian' as const }, kernel: '', arch: '', uid: 0, user: 'root', hostname: 'chunk1', packageManager: 'apt' as const, systemd: true };
  const f = await iscsiadm.gather(conn, iscsiadm.validate({ targets: [{ iqn: T1, portals: ['10.3.1.1'] }] }), { host: 'chunk1', facts });
  t.is(n, 1);
  t.is(f.nodesDir, '/etc/iscsi/nodes');
  t.deepEqual(Object.keys(f.units), ['iscsid.service', 'iscsid.socket', 'open-iscsi.service']);
  t.deepEqual(f.sessions.map((s) => s.disks), [['sdb'], ['sdc']]);
  t.deepEqual(f.records, []);
});

test('login: exit 24 becomes plain words naming both IQNs, then what iscsiadm said; its exit code is kept', (t) => {
  const dir = tmp(t);
  const denied = run(loginCommand({ target: T2, portal: '10.3.1.1:3260', initiator: CHUNK1 }), { iscsiadm: replay(load('iscsiadm/login-denied')) }, dir);
  t.is(denied.exitCode, 24);
  const [first, ...rest] = denied.stderr.split('\n');
  t.is(first, `the target ${T2} refused this initiator (IQN ${CHUNK1}) at 10.3.1.1:3260: its IQN is not in the target's ACL, or the CHAP user/secret differ`);
  t.true(rest.join('\n').includes('initiator reported error (24 - iSCSI login failed due to authorization failure)'));
  t.deepEqual(calls(dir), [`iscsiadm -m node -T ${T2} -p 10.3.1.1:3260 --login`]);
  const chap = run(loginCommand({ target: TGT, portal: '10.3.1.100:3260', initiator: CHUNK1 }), { iscsiadm: replay(load('iscsiadm/login-chap-failed')) }, dir);
  t.is(chap.exitCode, 24);
  t.regex(chap.stderr, /^the target iqn\.2024-12\.tp2\.b3:tgt-t1 refused this initiator \(IQN iqn\.2024-12\.tp2\.b3:chunk1\) at 10\.3\.1\.100:3260/);
  const ok = run(loginCommand({ target: TGT, portal: '10.3.1.100:3260', initiator: CHUNK1 }), { iscsiadm: replay(load('iscsiadm/login-tgt')) }, dir);
  t.deepEqual([ok.exitCode, ok.stderr], [0, '']);
  const again = run(loginCommand({ target: TGT, portal: '10.3.1.100:3260', initiator: CHUNK1 }), { iscsiadm: 'echo "iscsiadm: default: 1 session requested, but 1 already present." >&2; exit 15' }, dir);
  t.is(again.exitCode, 0, 'already logged in (15) is success');
  const timeout = run(loginCommand({ target: T1, portal: '10.3.9.9:3260', initiator: CHUNK1 }), { iscsiadm: 'exit 8' }, dir);
  t.deepEqual([timeout.exitCode, timeout.stderr.split('\n')[0]], [8, `the login to ${T1} at 10.3.9.9:3260 timed out: nothing answers at 10.3.9.9:3260 (wrong address or port, a firewall, or the target does not listen there)`]);
});

test('a failed login reaches the task as the plain words (runner StepError)', async (t) => {
  const dir = tmp(t);
  const conn: Connection = {
    host: 'chunk1',
    commandCount: 0,
    exec: async (c) => run(c, { iscsiadm: replay(load('iscsiadm/login-denied')) }, dir),
    put: async () => undefined,
    close: async () => undefined,
  };
  const step = { kind: 'exec' as const, command: loginCommand({ target: T2, portal: '10.3.1.1:3260', initiator: CHUNK1 }) };
  const e = await t.throwsAsync(applyChanges(conn, [{ summary: `log in to ${T2} at 10.3.1.1:3260`, steps: [step] }]), { instanceOf: StepError });
  t.true(e?.message.startsWith(`log in to ${T2} at 10.3.1.1:3260: \`iscsiadm -m node -T ${T2} -p 10.3.1.1:3260 --login\` exited 24: the target ${T2} refused this initiator (IQN ${CHUNK1})`), e?.message);
});

/** A stateful iscsiadm: records in a file; discovery at a portal adds what the recording offers (-o new). */
function discoveryStub(dir: string, records: readonly string[], answers: Record<string, Recorded>): Stubs {
  const db = join(dir, 'db');
  writeFileSync(db, records.map((r) => `${r}\n`).join(''));
  const arms = Object.entries(answers).map(([portal, r]) => {
    writeFileSync(join(dir, `${portal}.out`), r.stdout);
    return `"-m discovery -t sendtargets -p ${portal} -o new") cat ${quote(join(dir, `${portal}.out`))}
      [ ${r.exitCode} -eq 0 ] || exit ${r.exitCode}
      while read -r portal target; do k="$target \${portal%,*}"; grep -qxF "$k" ${quote(db)} || echo "$k" >> ${quote(db)}; done < ${quote(join(dir, `${portal}.out`))}
      exit 0;;`;
  });
  return {
    iscsiadm: `case "$*" in ${arms.join('\n')}
  "-m discovery"*) echo "iscsiadm: cannot make connection to $6: No route to host" >&2; exit 4;;
  "-m node -T "*" -o delete") grep -vxF "$4 $6" ${quote(db)} > ${quote(db)}.new; mv ${quote(db)}.new ${quote(db)}; exit 0;;
  "-m node -T "*) grep -qxF "$4 $6" ${quote(db)} && exit 0; echo "iscsiadm: No records found" >&2; exit 21;;
esac; exit 99`,
  };
}
const db = (dir: string): string[] => readFileSync(join(dir, 'db'), 'utf8').trim().split('\n').filter(Boolean).sort();

test('discovery + prune: the unwanted target the portal offers is deleted again, the wanted records stay', (t) => {
  const dir = tmp(t);
  const wanted = [`${T1} 10.3.1.1:3260`, `${T1} 10.3.2.1:3260`];
  const r = run(discoverCommand({ portals: ['10.3.1.1:3260'], wanted, existing: [], initiator: CHUNK1 }), discoveryStub(dir, [], { '10.3.1.1:3260': load('iscsiadm/discovery-1') }), dir);
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(db(dir), wanted.sort());
  t.deepEqual(calls(dir).filter((c) => c.includes('-o delete')), [`iscsiadm -m node -T ${T2} -p 10.3.1.1:3260 -o delete`]);
  t.regex(r.stdout, /deleted the record of iqn\.2024-12\.tp2\.b3:data-chunk2 at 10\.3\.1\.1:3260 \(offered by 10\.3\.1\.1:3260, not wanted\)/);
});

test('discovery + prune: a wanted IQN at a portal not asked for goes; a record that was there before stays', (t) => {
  const dir = tmp(t);
  const before = `${T2} 10.3.1.1:3260`;
  const r = run(discoverCommand({ portals: ['10.3.2.1:3260'], wanted: [`${T1} 10.3.1.1:3260`], existing: [before], initiator: CHUNK1 }), discoveryStub(dir, [before], { '10.3.2.1:3260': load('iscsiadm/discovery-2') }), dir);
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(db(dir), [`${T1} 10.3.1.1:3260`, before].sort());
});

test('discovery: one portal down is reported but not fatal when the other gave every wanted record; a missing one fails in words', (t) => {
  const dir = tmp(t);
  const wanted = [`${T1} 10.3.1.1:3260`, `${T1} 10.3.2.1:3260`];
  const stub = discoveryStub(dir, [], { '10.3.2.1:3260': load('iscsiadm/discovery-2') });
  const r = run(discoverCommand({ portals: ['10.3.1.1:3260', '10.3.2.1:3260'], wanted, existing: [], initiator: CHUNK1 }), stub, dir);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /some discoveries failed, but every wanted record is there:\n {2}discovery at 10\.3\.1\.1:3260 could not connect to 10\.3\.1\.1:3260/);
  const dir2 = tmp(t);
  const bad = run(discoverCommand({ portals: ['10.3.1.100:3260'], wanted: [`${T1} 10.3.1.100:3260`], existing: [], initiator: CHUNK1 }), discoveryStub(dir2, [], { '10.3.1.100:3260': load('iscsiadm/discovery-tgt') }), dir2);
  t.is(bad.exitCode, 1);
  t.is(bad.stderr, `after discovery at 10.3.1.100:3260 there is still no node record for:\n  ${T1} at 10.3.1.100:3260\n`);
  t.deepEqual(db(dir2), [], 'the tgt target it offered is not wanted: deleted again');
});
