/**
 * The tgt module: params, the conf file it renders, and plans on facts built from the recorded show output
 * (test/fixtures/tgt). The parsers on every recording, the gather script and the refusals through runModule
 * are in tgt-fixtures.test.ts.
 */
import test from 'ava';
import { fixture } from '../helpers/fixtures.ts';
import type { Change } from '../../lib/module.ts';
import { renderDiff } from '../../lib/textdiff.ts';
import {
  addressAdmits,
  DROP_IN,
  DROP_IN_TEXT,
  parseGather,
  parseShowTarget,
  renderConf,
  splitGather,
  tgt,
  wantedTargets,
  type TgtFacts,
  type TgtParams,
} from '../../modules/tgt.ts';
import { MARK as MARK_FOR_TESTS } from '../../modules/tgt/parse.ts';

const T1 = 'iqn.2024-12.tp2.b3:tgt-t1';
const T2 = 'iqn.2024-12.tp2.b3:tgt-t2';
const CHUNK1 = 'iqn.2024-12.tp2.b3:chunk1';
const IMG = '/var/lib/tgt-t1.img';
const OLD = 'labsecret-old1';
const NEW = 'labsecret-new1';

const recordedShow = (name: string) => parseShowTarget(fixture(`tgt/${name}`).stdout);

const target = (over: object = {}) => ({ iqn: T1, backingStores: [IMG], allowAll: true, initiatorNames: [CHUNK1], incomingUsers: [{ user: 'tgtuser', password: OLD }], ...over });
const task = (targets: object[], extra: object = {}): TgtParams => tgt.validate({ name: 'lab', targets, ...extra });
const conf = (p: TgtParams) => ({ text: renderConf(p.name, wantedTargets(p.targets ?? [])).content, mode: '600' });
const facts = (confOf: TgtParams | null, over: Partial<TgtFacts> = {}): TgtFacts => ({
  conf: confOf ? conf(confOf) : null,
  running: true,
  error: '',
  targets: recordedShow('show-target'),
  service: { active: 'active', enabled: 'enabled' },
  stores: { [IMG]: 'file', '/var/lib/a.img': 'file', '/var/lib/b.img': 'file', '/dev/md/data1': 'block' },
  ...over,
});
const summaries = (changes: readonly Change[]) => changes.map((c) => c.summary);
const commands = (changes: readonly Change[]) => changes.flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.display : `put ${s.path}`)));
const written = (changes: readonly Change[]) => changes.flatMap((c) => c.steps).map((s) => (s.kind === 'put' ? String(s.content) : '')).join('');

test('params: CHAP secrets are Secrets, 12+ characters, no blanks or quotes; names and paths are checked', (t) => {
  const p = task([target()]);
  t.is(String(p.targets?.[0]?.incomingUsers?.[0]?.password), '***');
  const bad = (over: object) => t.throws(() => task([target(over)]));
  bad({ incomingUsers: [{ user: 'u', password: 'short' }] });
  bad({ incomingUsers: [{ user: 'u', password: 'has a blank inside' }] });
  bad({ incomingUsers: [{ user: 'u', password: "quote'inside12" }] });
  bad({ incomingUsers: [{ user: 'u', password: 'hash#inside1234' }] });
  bad({ outgoingUser: { user: 'u v', password: NEW } });
  bad({ iqn: 'iqn.2024-12.nodomain' });
  bad({ backingStores: ['relative/path'] });
  bad({ backingStores: ['/dev/$(reboot)'] });
  bad({ initiatorAddresses: ['ALL'] });
  bad({ initiatorNames: [CHUNK1, CHUNK1] });
  t.throws(() => tgt.validate({ name: '../etc/passwd' }));
  t.notThrows(() => task([target({ initiatorAddresses: ['10.3.1.0/24', 'fd00::1'] })]));
});

test('the ACL rule: neither names nor addresses is refused unless allowAll says so', (t) => {
  t.throws(() => wantedTargets(task([{ iqn: T1, backingStores: [IMG] }]).targets ?? []), { message: /give initiatorNames and\/or initiatorAddresses, or allowAll: true/ });
  t.throws(() => wantedTargets(task([{ iqn: T1, backingStores: [IMG], allowAll: false }]).targets ?? []), { message: /allowAll: true/ });
  const [all] = wantedTargets(task([{ iqn: T1, backingStores: [IMG], allowAll: true }]).targets ?? []);
  t.deepEqual(all?.addresses, ['ALL']);
  const [byName] = wantedTargets(task([target({ allowAll: undefined })]).targets ?? []);
  t.deepEqual([byName?.addresses, byName?.names], [['0.0.0.0/32'], [CHUNK1]]);
  const [byAddress] = wantedTargets(task([target({ allowAll: undefined, initiatorAddresses: ['10.3.1.101'] })]).targets ?? []);
  t.deepEqual(byAddress?.addresses, ['10.3.1.101'], 'an address is given: no 0.0.0.0/32');
});

test('task-level checks: a store twice, a target twice, one user with two passwords, in and out at once', (t) => {
  const w = (targets: object[]) => () => wantedTargets(task(targets).targets ?? []);
  t.throws(w([target(), target({ iqn: T2 })]), { message: /backing store \/var\/lib\/tgt-t1.img is exported twice/ });
  t.throws(w([target(), target()]), { message: /listed twice/ });
  t.throws(w([target(), target({ iqn: T2, backingStores: ['/dev/md/data1'], incomingUsers: [{ user: 'tgtuser', password: NEW }] })]), { message: /tgtuser has two passwords/ });
  t.throws(w([target({ outgoingUser: { user: 'tgtuser', password: NEW } })]), { message: /both an incoming and the outgoing/ });
});

test('the conf file: LUN N is the Nth path (block form: plain lines would be numbered alphabetically), secrets only in the content', (t) => {
  const p = task([target({ backingStores: ['/var/lib/b.img', '/var/lib/a.img'], allowAll: undefined, outgoingUser: { user: 'mutual', password: NEW } })]);
  const r = renderConf(p.name, wantedTargets(p.targets ?? []));
  t.true(r.content.includes('    <backing-store /var/lib/b.img>\n        lun 1\n    </backing-store>\n    <backing-store /var/lib/a.img>\n        lun 2\n'));
  t.false(/^\s*backing-store /m.test(r.content));
  t.true(r.content.includes(`    incominguser tgtuser ${OLD}\n    outgoinguser mutual ${NEW}\n`));
  t.true(r.content.includes(`    initiator-address 0.0.0.0/32\n    initiator-name ${CHUNK1}\n</target>\n`));
  t.true(r.display.includes('    incominguser tgtuser ***\n    outgoinguser mutual ***\n'));
  t.false(r.display.includes(OLD) || r.display.includes(NEW));
});

test('a changed password: file rewritten, account re-created with its target offline meanwhile, target updated; no secret shown', (t) => {
  const changes = tgt.plan(task([target({ incomingUsers: [{ user: 'tgtuser', password: NEW }] })]), facts(task([target()])));
  t.deepEqual(summaries(changes), [
    'update /etc/tgt/conf.d/lab.conf (1 target; CHAP password of tgtuser changed)',
    `re-create CHAP account tgtuser (its password changed); ${T1} offline until updated`,
    `update target ${T1} (tid 1): CHAP account tgtuser re-created`,
  ]);
  t.deepEqual(commands(changes), [
    'put /etc/tgt/conf.d/lab.conf',
    'tgtadm --lld iscsi --op update --mode target --tid 1 -n state -v offline',
    'tgtadm --lld iscsi --mode account --op delete --user tgtuser',
    `tgt-admin --update ${T1} -c /etc/tgt/conf.d/lab.conf`,
  ]);
  const put = changes[0]?.steps[0];
  t.deepEqual(put?.kind === 'put' ? [put.mode, put.owner, put.group] : [], [0o600, 'root', 'root']);
  t.true(written(changes).includes(`incominguser tgtuser ${NEW}`), 'the file holds the clear secret');
  const shown = [
    ...summaries(changes),
    ...commands(changes),
    ...changes.flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.script.toString('utf8') : ''))),
    ...changes.map((c) => (c.diff ? renderDiff(c.diff) + c.diff.before + c.diff.after : '')),
  ].join('\n');
  t.false(shown.includes(NEW), 'the new secret is nowhere but in the file');
  t.false(shown.includes(OLD), 'nor the old one');
  t.true(changes.every((c) => c.destructive === undefined), 'nobody is logged in');
});

test('a changed password with chunk1 logged in is destructive (it logs in again with the old one)', (t) => {
  const changes = tgt.plan(task([target({ incomingUsers: [{ user: 'tgtuser', password: NEW }] })]), facts(task([target()]), { targets: recordedShow('show-target-session') }));
  t.is(changes[2]?.destructive, `target ${T1} is in use by ${CHUNK1} (10.3.1.101): CHAP account tgtuser re-created`);
});

test('the diff of the conf file shows the ACL change and masks passwords on both sides', (t) => {
  const changes = tgt.plan(task([target({ allowAll: undefined, incomingUsers: [{ user: 'tgtuser', password: NEW }] })]), facts(task([target()])));
  const diff = changes[0]?.diff ? renderDiff(changes[0].diff) : '';
  t.regex(diff, /^-    initiator-address ALL$/m);
  t.regex(diff, /^\+    initiator-address 0\.0\.0\.0\/32$/m);
  t.regex(diff, /^ {5}incominguser tgtuser \*\*\*$/m);
  t.false(diff.includes(NEW) || diff.includes(OLD));
});

test('no conf file yet (adopting a target): the account is re-created from the file, since tgtd never shows passwords', (t) => {
  const changes = tgt.plan(task([target()]), facts(null));
  t.deepEqual(summaries(changes), [
    'create /etc/tgt/conf.d/lab.conf (1 target)',
    `re-create CHAP account tgtuser (tgtd does not show passwords: it is made from the conf file); ${T1} offline until updated`,
    `update target ${T1} (tid 1): CHAP account tgtuser re-created`,
  ]);
});

test('a new target beside the recorded one; a target dropped from the file is deleted', (t) => {
  const both = task([target(), target({ iqn: T2, backingStores: ['/dev/md/data1'], incomingUsers: [] })]);
  const add = tgt.plan(both, facts(task([target()])));
  t.deepEqual(summaries(add), ['update /etc/tgt/conf.d/lab.conf (2 targets)', `create target ${T2} (LUNs 1 /dev/md/data1; ACL ALL, ${CHUNK1})`]);
  t.deepEqual(commands(add).slice(1), [`tgt-admin --update ${T2} -c /etc/tgt/conf.d/lab.conf`]);
  const drop = tgt.plan(task([target({ iqn: T2, backingStores: ['/dev/md/data1'], incomingUsers: [] })]), facts(task([target()])));
  t.deepEqual(summaries(drop).slice(1), [`create target ${T2} (LUNs 1 /dev/md/data1; ACL ALL, ${CHUNK1})`, `delete target ${T1} (tid 1, no longer in /etc/tgt/conf.d/lab.conf)`]);
  t.is(commands(drop)[2], `tgt-admin --delete ${T1}`);
});

test('accounts are global: re-creating one bound to a target this task does not manage is refused', (t) => {
  const other = recordedShow('show-target').map((x) => ({ ...x, iqn: 'iqn.2024-12.tp2.b3:other', tid: 2 }));
  const p = task([target({ iqn: T2, backingStores: ['/dev/md/data1'] })]);
  t.throws(() => tgt.plan(p, facts(null, { targets: other })), { message: /tgtuser is also bound to target iqn\.2024-12\.tp2\.b3:other, which this task does not manage/ });
});

test('tgtd not running: the file, then enable and start (which loads it); nothing live is planned', (t) => {
  const changes = tgt.plan(task([target()]), facts(null, { running: false, error: 'down', targets: [], service: { active: 'inactive', enabled: 'disabled' } }));
  t.deepEqual(summaries(changes), [
    'create /etc/tgt/conf.d/lab.conf (1 target)',
    'enable tgt (disabled): it loads the targets at boot',
    'start tgt (tgtd is not running): it loads the targets of /etc/tgt/conf.d',
  ]);
  t.throws(() => tgt.plan(task([target()]), facts(null, { running: false, error: 'no socket', service: { active: 'active', enabled: 'enabled' } })), { message: /tgt is active but tgtd does not answer: no socket/ });
  t.throws(() => tgt.plan(task([target()]), facts(null, { service: { active: 'inactive', enabled: 'masked' } })), { message: /masked/ });
});

test('the file holds secrets: a wrong mode is corrected even when the content is right', (t) => {
  const p = task([target()]);
  t.deepEqual(commands(tgt.plan(p, facts(p, { conf: { ...conf(p), mode: '644' } }))), ['chmod 0600 -- /etc/tgt/conf.d/lab.conf']);
});

test('LUNs, accounts and state drift on an idle target are updated, not destructive', (t) => {
  const [live] = recordedShow('show-target');
  if (!live) throw new Error('fixture');
  const p = task([target({ backingStores: ['/dev/md/data1'], outgoingUser: { user: 'mutual', password: NEW } })]);
  const changes = tgt.plan(p, facts(p, { targets: [{ ...live, state: 'offline' }] }));
  t.deepEqual(summaries(changes), [
    `update target ${T1} (tid 1): LUNs 1 ${IMG} -> 1 /dev/md/data1; CHAP accounts tgtuser -> tgtuser, mutual (outgoing); state is offline`,
  ]);
  t.is(changes[0]?.destructive, undefined);
});

test('ipv6Portal false: the seed-001 drop-in and the live [::] portal removed; true: the reverse; converged', (t) => {
  const p = task([target()], { ipv6Portal: false });
  const off = tgt.plan(p, facts(p, { dropIn: null, portals: ['[::]:3260', '0.0.0.0:3260'] }));
  t.deepEqual(commands(off), ['mkdir -p -- /etc/systemd/system/tgt.service.d', `put ${DROP_IN}`, 'systemctl daemon-reload', `tgtadm --lld iscsi --op delete --mode portal --param 'portal=[::]:3260'`]);
  t.regex(DROP_IN_TEXT, /^ExecStartPost=-\/usr\/sbin\/tgtadm --lld iscsi --op delete --mode portal --param portal=\[::\]:3260$/m);
  t.deepEqual(tgt.plan(p, facts(p, { dropIn: DROP_IN_TEXT, portals: ['0.0.0.0:3260'] })), []);
  const on = task([target()], { ipv6Portal: true });
  t.deepEqual(commands(tgt.plan(on, facts(on, { dropIn: DROP_IN_TEXT, portals: ['0.0.0.0:3260'] }))), [
    `rm -f -- ${DROP_IN}`,
    'systemctl daemon-reload',
    `tgtadm --lld iscsi --op new --mode portal --param 'portal=[::]:3260'`,
  ]);
  t.deepEqual(tgt.plan(on, facts(on, { dropIn: null, portals: ['[::]:3260', '0.0.0.0:3260'] })), []);
});

test('address ACLs: ALL, exact, IPv4 CIDR; 0.0.0.0/32 admits no real peer', (t) => {
  t.true(addressAdmits('ALL', '10.3.1.101'));
  t.true(addressAdmits('10.3.1.101', '10.3.1.101'));
  t.true(addressAdmits('10.3.1.0/24', '10.3.1.101'));
  t.false(addressAdmits('10.3.2.0/24', '10.3.1.101'));
  t.false(addressAdmits('0.0.0.0/32', '10.3.1.101'));
  t.true(addressAdmits('0.0.0.0/0', '10.3.1.101'));
  t.false(addressAdmits('fd00::/64', 'fd00::1'), 'IPv6 prefixes are not evaluated: treated as not admitting (the safe side)');
});

test('gather output: the conf file (base64) and the drop-in are decoded; a part missing is an error', (t) => {
  const p = task([target()], { ipv6Portal: false });
  const text = conf(p).text;
  const show = fixture('tgt/show-target').stdout;
  const out = [
    `${MARK_FOR_TESTS} conf`, '600', Buffer.from(text).toString('base64'),
    `${MARK_FOR_TESTS} show`, '0', show,
    `${MARK_FOR_TESTS} active`, 'active',
    `${MARK_FOR_TESTS} enabled`, 'enabled',
    `${MARK_FOR_TESTS} dropin`, 'present', Buffer.from(DROP_IN_TEXT).toString('base64'),
    `${MARK_FOR_TESTS} portals`,
    `${MARK_FOR_TESTS} stores`, `file ${IMG}`, '',
  ].join('\n');
  const f = parseGather(out, p);
  t.deepEqual(f.conf, { mode: '600', text });
  t.is(f.dropIn, DROP_IN_TEXT);
  t.deepEqual(f.portals, []);
  t.deepEqual(f.stores, { [IMG]: 'file' });
  t.deepEqual(f.targets, recordedShow('show-target'));
  t.deepEqual(tgt.plan(p, f), [], 'converged on what it reads back');
  t.throws(() => splitGather(out, ['conf', 'nope']), { message: /lacks its part\(s\) nope/ });
  t.throws(() => parseGather(out.replace(`${MARK_FOR_TESTS} stores`, 'x'), p), { message: /lacks its part\(s\) stores/ });
});
