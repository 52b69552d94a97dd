/**
 * The iscsiadm module's plans, on the state recorded on chunk1 (test/fixtures/iscsiadm: data-chunk1 logged in
 * on both portals of sto1, data-chunk2's record left by discovery; lsblk: both disks held by multipath).
 */
import test from 'ava';
import { fixture } from '../helpers/fixtures.ts';
import { viewChange } from '../../lib/host-task.ts';
import type { Change } from '../../lib/module.ts';
import { maskSecrets } from '../../lib/secret.ts';
import { parseLsblk, type BlockNode } from '../../modules/blockdev.ts';
import { diskUsers, explainIscsiadmError, iscsiadm, parseNodeList, parseRecord, parseSessions, type IscsiadmFacts } from '../../modules/iscsiadm.ts';

const load = fixture;
const T1 = 'iqn.2024-12.tp2.b3:data-chunk1';
const T2 = 'iqn.2024-12.tp2.b3:data-chunk2';
const CHUNK1 = 'iqn.2024-12.tp2.b3:chunk1';
const P1 = '10.3.1.1:3260';
const P2 = '10.3.2.1:3260';

/** The record as idbm writes its file (secrets in clear, empty values left out), at one portal. */
const recordFile = (address: string, password = 'labsecret-chunk1', startup = 'automatic'): string =>
  load('iscsiadm/node-record')
    .stdout.split('\n')
    .filter((l) => !l.endsWith(' = <empty>'))
    .map((l) => (l === 'node.session.auth.password = ********' ? `node.session.auth.password = ${password}` : l))
    .map((l) => (l === 'node.session.auth.password_in = ********' ? 'node.session.auth.password_in = labsecret-sto1x' : l))
    .map((l) => (l.startsWith('node.conn[0].address = ') ? `node.conn[0].address = ${address}` : l))
    .map((l) => (l.startsWith('node.startup = ') ? `node.startup = ${startup}` : l))
    .join('\n');

const CONF = `# To request that the iscsi service scripts startup a session, use "automatic":
node.startup = automatic
# node.session.auth.authmethod = CHAP
# discovery.sendtargets.auth.authmethod = CHAP
# discovery.sendtargets.auth.username = username
# discovery.sendtargets.auth.password = password
node.session.timeo.replacement_timeout = 120
node.conn[0].timeo.login_timeout = 15
`;
const file = (path: string, text: string, mode = 0o644) => ({
  path,
  stat: { type: 'file' as const, mode, uid: 0, gid: 0, owner: 'root', group: 'root', size: Buffer.byteLength(text) },
  content: Buffer.from(text),
  linkTarget: null,
});

/** chunk1 as recorded: T1 logged in on both portals (sdb, sdc held by mpathb), T2's record from discovery. */
const facts = (over: Partial<IscsiadmFacts> = {}): IscsiadmFacts => ({
  nameFile: file('/etc/iscsi/initiatorname.iscsi', `InitiatorName=${CHUNK1}\n`),
  initiatorName: CHUNK1,
  conf: file('/etc/iscsi/iscsid.conf', CONF, 0o600),
  records: parseNodeList(load('iscsiadm/node-list').stdout),
  recordFiles: [parseRecord(recordFile('10.3.1.1')), parseRecord(recordFile('10.3.2.1'))],
  sessions: parseSessions(load('iscsiadm/session-P3').stdout),
  blockdevs: parseLsblk(load('lsblk/chunk1-multipath').stdout),
  units: { 'iscsid.service': { enabled: 'disabled', active: 'active' }, 'iscsid.socket': { enabled: 'enabled', active: 'active' }, 'open-iscsi.service': { enabled: 'enabled', active: 'active' } },
  loginService: 'open-iscsi.service',
  nodesDir: '/etc/iscsi/nodes',
  ...over,
});

/** The task chunk1's state answers (what the fixtures show). */
const wanted = (over: object = {}, target: object = {}) =>
  iscsiadm.validate({
    initiatorName: CHUNK1,
    settings: { 'node.session.timeo.replacement_timeout': 120 },
    discovery: { portals: [P1, P2] },
    targets: [{ iqn: T1, portals: ['10.3.1.1', P2], chap: { user: 'chunk1', password: 'labsecret-chunk1' }, mutualChap: { user: 'sto1', password: 'labsecret-sto1x' }, ...target }],
    ...over,
  });
const summaries = (changes: readonly Change[]) => changes.map((c) => c.summary);
const displays = (changes: readonly Change[]) => changes.flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.display : `write ${s.path}`)));
const shown = (changes: readonly Change[]) => JSON.stringify(changes.map((c) => viewChange(c)));

test('converged: the recorded state is what the task asks (T1 on both portals, CHAP, logged in)', (t) => {
  t.deepEqual(iscsiadm.plan(wanted(), facts()), []);
});

test('output: the initiator, its sessions with their disks, the records with their startup; no secret', (t) => {
  const out = iscsiadm.output?.(wanted(), facts());
  t.deepEqual(out, {
    initiatorName: CHUNK1,
    sessions: [
      { target: T1, portal: P2, state: 'LOGGED_IN', disks: ['sdb'] },
      { target: T1, portal: P1, state: 'LOGGED_IN', disks: ['sdc'] },
    ],
    records: [
      { target: T1, portal: P1, startup: 'automatic' },
      { target: T1, portal: P2, startup: 'automatic' },
      { target: T2, portal: P1, startup: null },
    ],
  });
  t.false(JSON.stringify(out).includes('labsecret'));
});

test('missing records with discovery: discover, set each record up, log in (the prune lists are quoted in the script)', (t) => {
  const changes = iscsiadm.plan(wanted(), facts({ records: [], recordFiles: [], sessions: [] }));
  t.deepEqual(summaries(changes), [
    `discover the targets at ${P1}, ${P2} (no node record yet for ${T1} at ${P1}, ${T1} at ${P2}); records it adds that are not wanted are deleted`,
    `set up the node record of ${T1} at ${P1}: startup automatic, CHAP, CHAP user chunk1, CHAP secret, mutual CHAP user sto1, mutual CHAP secret, node.session.timeo.replacement_timeout = 120`,
    `set up the node record of ${T1} at ${P2}: startup automatic, CHAP, CHAP user chunk1, CHAP secret, mutual CHAP user sto1, mutual CHAP secret, node.session.timeo.replacement_timeout = 120`,
    `log in to ${T1} at ${P1}`,
    `log in to ${T1} at ${P2}`,
  ]);
  const script = changes[0]?.steps[0]?.kind === 'exec' ? changes[0].steps[0].command.script.toString() : '';
  t.true(script.includes(`keep "$target $p" '${T1} ${P1}' '${T1} ${P2}' || keep "$target $p" ; then`), 'wanted pairs quoted one word each; nothing existed');
  t.true(script.includes(`iscsiadm -m discovery -t sendtargets -p ${P1} -o new`));
  t.deepEqual(displays(changes).slice(1, 3), [
    `iscsiadm -m node -T ${T1} -p ${P1} -o update -n node.startup -v automatic -n node.session.auth.authmethod -v CHAP -n node.session.auth.username -v chunk1 -n node.session.auth.password -v *** -n node.session.auth.username_in -v sto1 -n node.session.auth.password_in -v *** -n node.session.timeo.replacement_timeout -v 120`,
    `iscsiadm -m node -T ${T1} -p ${P2} -o update -n node.startup -v automatic -n node.session.auth.authmethod -v CHAP -n node.session.auth.username -v chunk1 -n node.session.auth.password -v *** -n node.session.auth.username_in -v sto1 -n node.session.auth.password_in -v *** -n node.session.timeo.replacement_timeout -v 120`,
  ]);
  t.false(shown(changes).includes('labsecret'));
});

test('missing record without discovery: iscsiadm -m node -o new, then its settings, then the login', (t) => {
  const p = wanted({ discovery: undefined, settings: undefined }, { chap: undefined, mutualChap: undefined, portals: [P1] });
  const changes = iscsiadm.plan(p, facts({ records: [], recordFiles: [], sessions: [] }));
  t.deepEqual(summaries(changes), [`create the node record of ${T1} at ${P1}: startup automatic`, `log in to ${T1} at ${P1}`]);
  t.deepEqual(displays(changes), [`iscsiadm -m node -o new -T ${T1} -p ${P1}`, `iscsiadm -m node -T ${T1} -p ${P1} -o update -n node.startup -v automatic`, `iscsiadm -m node -T ${T1} -p ${P1} --login`]);
});

test('discovery: the existing records are passed as kept, except those of targets the task removes', (t) => {
  const p = iscsiadm.validate({ discovery: { portals: [P1] }, targets: [{ iqn: T1, portals: ['10.3.1.2'] }, { iqn: T2, state: 'absent' }] });
  const changes = iscsiadm.plan(p, facts({ sessions: [] }));
  const script = changes[0]?.steps[0]?.kind === 'exec' ? changes[0].steps[0].command.script.toString() : '';
  t.true(script.includes(`keep "$target $p" '${T1} 10.3.1.2:3260' || keep "$target $p" '${T1} ${P1}' '${T1} ${P2}'; then`), script);
  t.is(summaries(changes).at(-1), `delete the node records of ${T2} at ${P1}`);
});

test('a CHAP secret changed: found in the record files, corrected; no secret in any summary, display or diff', (t) => {
  const p = wanted({}, { chap: { user: 'chunk1', password: 'another-secret-1' } });
  const changes = iscsiadm.plan(p, facts());
  t.deepEqual(summaries(changes), [
    `update the node record of ${T1} at ${P1}: CHAP secret changed (the session keeps its login until it logs in again)`,
    `update the node record of ${T1} at ${P2}: CHAP secret changed (the session keeps its login until it logs in again)`,
  ]);
  t.deepEqual(displays(changes), [P1, P2].map((x) => `iscsiadm -m node -T ${T1} -p ${x} -o update -n node.session.auth.password -v ***`));
  const step = changes[0]?.steps[0];
  t.true(step?.kind === 'exec' && step.command.script.toString().endsWith("-n node.session.auth.password -v another-secret-1"), 'the secret is on the command line only');
  for (const secret of ['another-secret-1', 'labsecret-chunk1']) t.false(maskSecrets(shown(changes)).includes(secret) || shown(changes).includes(secret));
});

test('a record changed by hand (manual startup, another CHAP user) is corrected word by word', (t) => {
  const hand = parseRecord(recordFile('10.3.2.1', 'labsecret-chunk1', 'manual').replace('node.session.auth.username = chunk1', 'node.session.auth.username = admin'));
  const changes = iscsiadm.plan(wanted(), facts({ recordFiles: [parseRecord(recordFile('10.3.1.1')), hand] }));
  t.deepEqual(summaries(changes), [`update the node record of ${T1} at ${P2}: startup automatic (was manual); CHAP user chunk1 (was admin) (the session keeps its login until it logs in again)`]);
  t.deepEqual(displays(changes), [`iscsiadm -m node -T ${T1} -p ${P2} -o update -n node.startup -v automatic -n node.session.auth.username -v chunk1`]);
});

test('iscsid.conf: seed 000 settings and discovery CHAP, a masked diff; node.* values also reach the records', (t) => {
  const p = wanted({ settings: { 'node.session.timeo.replacement_timeout': 0 }, discovery: { portals: [P1], chap: { user: 'disco', password: 'labsecret-disc' } } });
  const changes = iscsiadm.plan(p, facts());
  t.deepEqual(summaries(changes), [
    'update /etc/iscsi/iscsid.conf: set node.session.timeo.replacement_timeout = 0 (was 120); add discovery.sendtargets.auth.authmethod = CHAP; add discovery.sendtargets.auth.username = disco; add discovery.sendtargets.auth.password = *** (new node records take these values)',
    `update the node record of ${T1} at ${P1}: node.session.timeo.replacement_timeout = 0 (was 120) (the session keeps its login until it logs in again)`,
    `update the node record of ${T1} at ${P2}: node.session.timeo.replacement_timeout = 0 (was 120) (the session keeps its login until it logs in again)`,
  ]);
  const put = changes[0]?.steps[0];
  t.true(put?.kind === 'put' && String(put.content).includes('# discovery.sendtargets.auth.password = password\ndiscovery.sendtargets.auth.password = labsecret-disc\n'));
  t.regex(changes[0]?.diff?.after ?? '', /discovery\.sendtargets\.auth\.password = \*\*\* \(changed\)/);
  t.false(shown(changes).includes('labsecret-disc'));
});

test('an iscsid.* setting restarts iscsid (it reads them at start); node.* settings do not', (t) => {
  const changes = iscsiadm.plan(wanted({ settings: { 'node.session.timeo.replacement_timeout': 120, 'iscsid.safe_logout': 'Yes' } }), facts());
  t.deepEqual(summaries(changes).slice(1), ['restart iscsid: it reads iscsid.safe_logout at start']);
  t.deepEqual(displays(changes), ['write /etc/iscsi/iscsid.conf', 'systemctl restart iscsid']);
});

test('initiator name changed: the file, then iscsid restarted; the live sessions keep the old name until they log in again', (t) => {
  const changes = iscsiadm.plan(wanted({ initiatorName: 'iqn.2024-12.tp2.b3:chunk1-new' }), facts({ nameFile: file('/etc/iscsi/initiatorname.iscsi', `## DO NOT EDIT OR REMOVE THIS FILE!\nGenerateName=yes\nInitiatorName=${CHUNK1}\n`) }));
  t.deepEqual(summaries(changes), [
    `set the initiator name to iqn.2024-12.tp2.b3:chunk1-new (was ${CHUNK1}); 2 sessions logged in as ${CHUNK1} keep that name until they log in again`,
    'restart iscsid: it reads the initiator name at start',
  ]);
  const put = changes[0]?.steps[0];
  t.is(put?.kind === 'put' ? String(put.content) : '', '## DO NOT EDIT OR REMOVE THIS FILE!\nInitiatorName=iqn.2024-12.tp2.b3:chunk1-new\n', 'GenerateName=yes would make Debian overwrite it');
  t.deepEqual(displays(changes), ['write /etc/iscsi/initiatorname.iscsi', 'systemctl restart iscsid']);
  t.true(changes.every((c) => c.destructive === undefined));
});

test('login: exit 24 is explained naming the target, this initiator (the wanted name) and the portal', (t) => {
  const changes = iscsiadm.plan(wanted({ initiatorName: 'iqn.2024-12.tp2.b3:chunk1-new' }), facts({ sessions: [] }));
  const login = changes.find((c) => c.summary === `log in to ${T1} at ${P1}`)?.steps[0];
  const words = explainIscsiadmError(24, { target: T1, portal: P1, initiator: 'iqn.2024-12.tp2.b3:chunk1-new' });
  t.is(words, `the target ${T1} refused this initiator (IQN iqn.2024-12.tp2.b3:chunk1-new) at ${P1}: its IQN is not in the target's ACL, or the CHAP user/secret differ`);
  t.true(login?.kind === 'exec' && login.command.script.toString().includes(`24) msg='${words.replace(/'/g, "'\\''")}' ;;`));
  t.is(login?.kind === 'exec' ? login.command.display : '', `iscsiadm -m node -T ${T1} -p ${P1} --login`);
});

test('present: the records only (no login); manual startup does not ask for the boot login service', (t) => {
  const p = wanted({}, { state: 'present', startup: 'manual' });
  const changes = iscsiadm.plan(p, facts({ sessions: [], units: { ...facts().units, 'open-iscsi.service': { enabled: 'disabled', active: 'inactive' } } }));
  t.deepEqual(summaries(changes), [P1, P2].map((x) => `update the node record of ${T1} at ${x}: startup manual (was automatic)`));
});

test('services: iscsid enabled by its socket and started; the boot login service enabled for automatic records; masked refused', (t) => {
  const units = { 'iscsid.service': { enabled: 'disabled', active: 'inactive' }, 'iscsid.socket': { enabled: 'disabled', active: 'inactive' }, 'open-iscsi.service': { enabled: 'disabled', active: 'inactive' } };
  const changes = iscsiadm.plan(wanted(), facts({ units }));
  t.deepEqual(displays(changes), ['systemctl enable iscsid.socket', 'systemctl start iscsid', 'systemctl enable open-iscsi.service']);
  t.deepEqual(iscsiadm.plan(wanted(), facts({ units: {} })), [], 'no systemd: services are not managed');
  t.throws(() => iscsiadm.plan(wanted(), facts({ units: { ...units, 'iscsid.service': { enabled: 'masked', active: 'inactive' } } })), { message: /iscsid\.service is masked/ });
});

const mountedTree = (): BlockNode[] => {
  // The recorded tree, with mpathb's partition mounted as seed 000 mounts it.
  const mount = (n: BlockNode): BlockNode => ({ ...n, mountpoints: n.name === 'mpathb-part1' ? ['/mnt/data_chunk1'] : n.mountpoints, children: n.children.map(mount) });
  return parseLsblk(load('lsblk/chunk1-multipath').stdout).map(mount);
};

test('absent: logging out of a session whose disk is held (multipath) or mounted is destructive', (t) => {
  const p = iscsiadm.validate({ targets: [{ iqn: T1, state: 'absent' }] });
  const changes = iscsiadm.plan(p, facts());
  t.deepEqual(summaries(changes), [`log out of ${T1} at ${P2}, ${P1} (disks sdb, sdc) and delete the node records of ${T1} at ${P2}, ${P1}`]);
  t.deepEqual(displays(changes), [P2, P1].flatMap((x) => [`iscsiadm -m node -T ${T1} -p ${x} --logout`, `iscsiadm -m node -T ${T1} -p ${x} -o delete`]));
  t.deepEqual(changes[0]?.steps.map((s) => (s.kind === 'exec' ? s.command.okCodes : [])), [[0, 21], [0, 21], [0, 21], [0, 21]]);
  t.is(changes[0]?.destructive, `logging out takes away disks in use: /dev/sdb (${P2}) is held by /dev/mapper/mpathb (mpath); /dev/sdc (${P1}) is held by /dev/mapper/mpathb (mpath)`);
  const mounted = iscsiadm.plan(iscsiadm.validate({ targets: [{ iqn: T1, portals: [P1], state: 'absent' }] }), facts({ blockdevs: mountedTree() }));
  t.is(mounted[0]?.destructive, `logging out takes away disks in use: /dev/sdc (${P1}) is held by /dev/mapper/mpathb (mpath); /dev/sdc (${P1}) is mounted on /mnt/data_chunk1 (/dev/mapper/mpathb-part1)`);
  t.regex(iscsiadm.plan(p, facts({ blockdevs: null }))[0]?.destructive ?? '', /lsblk failed: cannot tell whether \/dev\/sdb is in use/);
});

test('absent without a session: only the record goes, not destructive; nothing there: no change', (t) => {
  const changes = iscsiadm.plan(iscsiadm.validate({ targets: [{ iqn: T2, state: 'absent' }] }), facts());
  t.deepEqual(summaries(changes), [`delete the node records of ${T2} at ${P1}`]);
  t.deepEqual(displays(changes), [`iscsiadm -m node -T ${T2} -p ${P1} -o delete`]);
  t.is(changes[0]?.destructive, undefined);
  t.deepEqual(iscsiadm.plan(iscsiadm.validate({ targets: [{ iqn: T2, state: 'absent' }] }), facts({ records: [] })), []);
  const gone = iscsiadm.validate({ targets: [{ iqn: T1, portals: [P1, '10.3.1.2'], state: 'absent' }] });
  t.deepEqual(iscsiadm.plan(gone, facts({ records: [], sessions: [] })), [], 'listed portals of an absent target are never created');
  t.deepEqual(diskUsers(parseLsblk(load('lsblk/chunk1-multipath').stdout), 'sda'), ['mounted on / (/dev/sda1)'], 'a partition mounted counts');
});

test('params: bad IQN, short secret, CHAP in settings, mutual CHAP without CHAP, portals missing, a pair twice', (t) => {
  t.throws(() => iscsiadm.validate({ initiatorName: 'iqn.2024-12.lab' }), { message: /initiatorName/ });
  t.throws(() => wanted({}, { chap: { user: 'chunk1', password: 'short' } }), { message: /password/ });
  t.throws(() => iscsiadm.validate({ settings: { 'node.session.auth.password': 'x' } }), { message: /settings/ });
  t.throws(() => iscsiadm.validate({ targets: [{ iqn: T1, portals: [P1], mutualChap: { user: 'sto1', password: 'labsecret-sto1x' } }] }), { message: /chap/ });
  t.throws(() => iscsiadm.validate({ targets: [{ iqn: T1 }] }), { message: /portals/ });
  t.throws(() => iscsiadm.plan(iscsiadm.validate({ targets: [{ iqn: T1, portals: ['10.3.1.1'] }, { iqn: T1, portals: [P1], state: 'absent' }] }), facts()), { message: /listed twice/ });
  t.throws(() => iscsiadm.plan(wanted(), facts({ recordFiles: [] })), { message: /its file is not under \/etc\/iscsi\/nodes/ });
});

test('schema: every field at every depth has a description', (t) => {
  const walk = (props: Record<string, { description?: string; properties?: object; items?: { properties?: object } }>, at: string): void => {
    for (const [k, v] of Object.entries(props)) {
      t.true((v.description ?? '').length > 10, `${at}${k}`);
      if (v.properties) walk(v.properties as never, `${at}${k}.`);
      if (v.items?.properties) walk(v.items.properties as never, `${at}${k}[].`);
    }
  };
  walk((iscsiadm.schema as { properties: never }).properties, '');
  t.is((iscsiadm.schema as { additionalProperties?: boolean }).additionalProperties, false);
});
