// targetcli: parsers on configfs dumps, saveconfig.json and prefs.bin recorded on the lab (targetcli-fb 2.1.53,
// Debian 12 kernel 6.1), and plans against those real states.
import test from 'ava';
import { fixture as recording } from '../helpers/fixtures.ts';
import { configKey, parseConfigfs, parseSaveconfig, pickledPref, type LioState } from '../../modules/targetcli/model.ts';
import { lioWwid, splitGather, targetcli, unitSerial, type TargetcliFacts } from '../../modules/targetcli.ts';
import { parseMapsJson } from '../../modules/multipath_conf.ts';
import type { Change } from '../../lib/module.ts';
import type { Command } from '../../lib/command.ts';
import type { Connection } from '../../lib/connection/types.ts';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStubbed } from '../helpers/blockdev-stubs.ts';

const fixture = (name: string) => recording(`targetcli/${name}`);
const configfs = (name: string): LioState => parseConfigfs(fixture(name).stdout);

const T1 = 'iqn.2024-12.tp2.b3:data-chunk1';
const T2 = 'iqn.2024-12.tp2.b3:data-chunk2';
const CHUNK1 = 'iqn.2024-12.tp2.b3:chunk1';
const CHUNK2 = 'iqn.2024-12.tp2.b3:chunk2';

interface RawChap {
  user: string;
  password: string;
}
interface RawAcl {
  initiator: string;
  chap?: RawChap;
  mutualChap?: RawChap;
  mappedLuns?: { lun: number; writeProtect?: boolean }[];
}
interface RawTarget {
  iqn: string;
  portals: { ip: string }[];
  luns: { backstore: string }[];
  acls: RawAcl[];
  authentication?: boolean;
}

/** The params that describe what the recorded batch (batch-ok.json) built. */
const recorded = (): { backstores: object[]; targets: RawTarget[]; discoveryAuth: object } => ({
  backstores: [
    { name: 'data1', path: '/dev/md/data1' },
    { name: 'f1', type: 'fileio', path: '/var/lib/f1.img', size: '64M', writeBack: false },
  ],
  targets: [
    {
      iqn: T1,
      portals: [{ ip: '10.3.1.1' }, { ip: '10.3.2.1' }],
      luns: [{ backstore: 'data1' }],
      acls: [{ initiator: CHUNK1, chap: { user: 'chunk1', password: 'labsecret-chunk1' }, mutualChap: { user: 'sto1', password: 'labsecret-sto1x' } }],
    },
    {
      iqn: T2,
      portals: [{ ip: '10.3.1.1' }],
      luns: [{ backstore: 'f1' }],
      acls: [{ initiator: CHUNK2, mappedLuns: [{ lun: 0, writeProtect: true }] }],
      authentication: false,
    },
  ],
  discoveryAuth: { enabled: true, chap: { user: 'discover', password: 'labsecret-disc' } },
});

const facts = (running: LioState, over: Partial<TargetcliFacts> = {}): TargetcliFacts => ({
  running,
  saved: running,
  prefs: { autoAddDefaultPortal: true, autoEnableTpgt: true },
  service: { name: 'rtslib-fb-targetctl', enabled: true },
  savePath: '/etc/rtslib-fb-target/saveconfig.json',
  ...over,
});
const summaries = (changes: readonly Change[]) => changes.map((c) => c.summary);
const batchOf = (changes: readonly Change[]): string => {
  const step = changes.flatMap((c) => c.steps).find((s) => s.kind === 'exec');
  return step?.kind === 'exec' ? (step.command.stdin?.toString('utf8') ?? '') : '';
};

test('configfs: target core not loaded', (t) => {
  const s = configfs('configfs-absent');
  t.false(s.loaded);
  t.is(s.targets.size, 0);
});

test('configfs: loaded, nothing configured', (t) => {
  const s = configfs('configfs-empty');
  t.true(s.loaded);
  t.is(s.backstores.size, 0);
  t.is(s.targets.size, 0);
  t.false(s.discoveryAuth.enabled);
});

test('configfs: the seed-like configuration', (t) => {
  const s = configfs('configfs-configured');
  t.deepEqual([...s.backstores.keys()].sort(), ['block/data1', 'fileio/f1']);
  t.is(s.backstores.get('block/data1')?.dev, '/dev/md/data1');
  t.is(s.backstores.get('fileio/f1')?.size, 67108864);
  t.false(s.backstores.get('fileio/f1')?.writeBack);
  const t1 = s.targets.get(T1)?.get(1);
  t.truthy(t1);
  t.deepEqual(t1?.portals, ['10.3.1.1:3260', '10.3.2.1:3260']);
  t.is(t1?.luns.get(0), 'block/data1');
  t.is(t1?.attributes.authentication, 1);
  t.is(t1?.attributes.generate_node_acls, 0);
  t.true(t1?.enabled);
  const acl = t1?.acls.get(CHUNK1);
  t.is(acl?.userid, 'chunk1');
  t.is(acl?.password, 'labsecret-chunk1');
  t.is(acl?.mutualUserid, 'sto1');
  t.is(acl?.mutualPassword, 'labsecret-sto1x');
  t.false(acl?.session);
  t.deepEqual(acl?.mappedLuns.get(0), { tpgLun: 0, writeProtect: false });
  const t2 = s.targets.get(T2)?.get(1);
  t.is(t2?.luns.get(0), 'fileio/f1');
  t.deepEqual(t2?.acls.get(CHUNK2)?.mappedLuns.get(0), { tpgLun: 0, writeProtect: true });
  t.is(t2?.acls.get(CHUNK2)?.password, '');
  t.true(s.discoveryAuth.enabled);
  t.is(s.discoveryAuth.userid, 'discover');
  t.is(s.discoveryAuth.mutualUserid, '', 'configfs says NULL for an unset discovery credential');
});

test('configfs: an initiator logged in', (t) => {
  const s = configfs('configfs-session');
  t.true(s.targets.get(T1)?.get(1)?.acls.get(CHUNK1)?.session);
  t.false(s.targets.get(T2)?.get(1)?.acls.get(CHUNK2)?.session ?? true);
});

test('saveconfig.json holds the same configuration as configfs', (t) => {
  const saved = parseSaveconfig(fixture('saveconfig').stdout);
  t.is(saved.targets.get(T1)?.get(1)?.acls.get(CHUNK1)?.password, 'labsecret-chunk1');
  t.is(configKey(saved), configKey(configfs('configfs-configured')));
});

test('prefs.bin: the pickled booleans', (t) => {
  const b64 = fixture('prefs-base64').stdout;
  t.true(pickledPref(b64, 'auto_add_default_portal', false));
  t.true(pickledPref(b64, 'auto_save_on_exit', false));
  t.false(pickledPref(b64, 'no_such_pref', false));
  t.true(pickledPref('', 'auto_add_default_portal', true), 'no prefs file: the default');
});

test('gather where targetcli is installed but LIO not loaded: the state is empty, not a broken gather; not installed: a clear error', async (t) => {
  // The real gather script under /bin/sh; this machine has no /sys/kernel/config/target, so the dump says
  // ABSENT. systemctl is a stub. (Before: the dump's early exit ended the whole script, "expected 4 parts".)
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-lio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.false(existsSync('/sys/kernel/config/target'), 'this test needs a machine without LIO');
  const conn = (installed: boolean): Connection =>
    ({
      exec: async (c: Command) => ({
        exitCode: 0,
        stdout: runStubbed(c, { systemctl: [['*', { stdout: 'disabled\n', exitCode: 1 }]], ...(installed ? { targetcli: [['*', { stdout: '', exitCode: 0 }]] } : {}) }, dir),
        stderr: '',
      }),
    }) as unknown as Connection;
  const debianFacts = { os: { id: 'debian', like: ['debian'], versionId: '12', prettyName: 'Debian 12', family: 'debian' as const }, kernel: '', arch: '', uid: 0, user: 'root', hostname: 'sto1', packageManager: 'apt' as const, systemd: true };
  const facts = await targetcli.gather(conn(true), targetcli.validate({}), { host: 'h', facts: debianFacts });
  t.false(facts.running.loaded);
  t.is(facts.running.targets.size, 0);
  t.false(facts.service.enabled);
  // Not installed at all (check mode before the package task): a clear error, so the task is not plannable yet.
  await t.throwsAsync(targetcli.gather(conn(false), targetcli.validate({}), { host: 'h', facts: debianFacts }), {
    message: 'targetcli is not installed on h (install the targetcli-fb package first)',
  });
});

test('gather output splits into its four parts', (t) => {
  const parts = splitGather(`D\tcore/x\n@@sanbook-targetcli@@\n{}\n@@sanbook-targetcli@@\nAAAA\n@@sanbook-targetcli@@\nenabled\n`);
  t.is(parts.configfs, 'D\tcore/x\n');
  t.is(parts.saved, '{}\n');
  t.is(parts.prefs, 'AAAA');
  t.is(parts.enabled, 'enabled');
  t.throws(() => splitGather('only one part'), { message: /expected 4 parts/ });
});

test('plan: converged on the recorded state', (t) => {
  const changes = targetcli.plan(targetcli.validate(recorded()), facts(configfs('configfs-configured')));
  t.deepEqual(summaries(changes), []);
});

test('plan: from nothing, one targetcli batch that rebuilds the recorded state', (t) => {
  const changes = targetcli.plan(targetcli.validate(recorded()), facts(configfs('configfs-empty')));
  const execs = changes.flatMap((c) => c.steps).filter((s) => s.kind === 'exec');
  t.is(execs.length, 1, 'one targetcli invocation');
  const batch = batchOf(changes).split('\n');
  t.deepEqual(batch.slice(0, 5), [
    '/backstores/block create name=data1 dev=/dev/md/data1',
    '/backstores/fileio create name=f1 file_or_dev=/var/lib/f1.img size=64M write_back=false',
    '/iscsi set discovery_auth enable=1 userid=discover password=labsecret-disc',
    `/iscsi create ${T1}`,
    `/iscsi create ${T2}`,
  ]);
  // The default portal targetcli adds to the first new target is removed before the storage portals bind.
  const del = batch.indexOf(`/iscsi/${T1}/tpg1/portals delete 0.0.0.0 3260`);
  const bind = batch.indexOf(`/iscsi/${T1}/tpg1/portals create 10.3.1.1 3260`);
  t.true(del > 0 && bind > del);
  t.true(batch.includes(`/iscsi/${T1}/tpg1/acls/${CHUNK1} set auth userid=chunk1 password=labsecret-chunk1 mutual_userid=sto1 mutual_password=labsecret-sto1x`));
  t.true(batch.includes(`/iscsi/${T2}/tpg1/acls/${CHUNK2} create mapped_lun=0 tpg_lun_or_backstore=0 write_protect=1`));
  t.is(batch.filter((l) => l !== '').at(-1), 'saveconfig');
  t.false(changes.some((c) => c.destructive));
});

test('plan: secrets are in the batch on stdin only, never in what is shown', (t) => {
  const changes = targetcli.plan(targetcli.validate(recorded()), facts(configfs('configfs-empty')));
  const step = changes.flatMap((c) => c.steps).find((s) => s.kind === 'exec');
  if (step?.kind !== 'exec') return t.fail('no exec step');
  t.true(step.command.secretStdin);
  for (const secret of ['labsecret-chunk1', 'labsecret-sto1x', 'labsecret-disc']) {
    t.false(step.command.display.includes(secret));
    t.false(step.command.script.toString('utf8').includes(secret));
    t.false(JSON.stringify(changes.map((c) => c.summary)).includes(secret));
  }
  t.regex(step.command.display, /password=\*\*\*/);
});

test('plan: a CHAP secret changed by hand is corrected', (t) => {
  const p = recorded();
  const acl = p.targets[0]?.acls[0];
  if (!acl?.chap) return t.fail();
  acl.chap.password = 'another-secret-1';
  const changes = targetcli.plan(targetcli.validate(p), facts(configfs('configfs-configured')));
  t.deepEqual(summaries(changes), [`${T1}: ${CHUNK1}: set CHAP (password changed)`]);
  t.regex(batchOf(changes), /set auth userid=chunk1 password=another-secret-1 mutual_userid=sto1 mutual_password=labsecret-sto1x\nsaveconfig/);
});

test('plan: a removed ACL is put back with its LUN and CHAP', (t) => {
  const p = recorded();
  p.targets[0]?.acls.push({ initiator: 'iqn.2024-12.tp2.b3:chunk3', chap: { user: 'chunk3', password: 'labsecret-chunk3' }, mutualChap: { user: 'sto1', password: 'labsecret-sto1x' } });
  const changes = targetcli.plan(targetcli.validate(p), facts(configfs('configfs-configured')));
  t.deepEqual(summaries(changes), [
    `${T1}: allow iqn.2024-12.tp2.b3:chunk3`,
    `${T1}: iqn.2024-12.tp2.b3:chunk3: map LUN 0 as 0`,
    `${T1}: iqn.2024-12.tp2.b3:chunk3: set CHAP (new)`,
  ]);
});

test('plan: a LUN on the wrong backstore is re-pointed; with a session it is destructive', (t) => {
  const p = recorded();
  const t1 = p.targets[0];
  if (!t1) return t.fail();
  t1.luns = [{ backstore: 'f1' }];
  const idle = targetcli.plan(targetcli.validate(p), facts(configfs('configfs-configured')));
  t.deepEqual(summaries(idle), [`${T1}: remove LUN 0 (block/data1, wanted fileio/f1)`, `${T1}: LUN 0 -> fileio/f1`, `${T1}: ${CHUNK1}: map LUN 0 as 0`]);
  t.false(idle.some((c) => c.destructive));
  const busy = targetcli.plan(targetcli.validate(p), facts(configfs('configfs-session')));
  t.regex(busy.find((c) => c.destructive)?.destructive ?? '', /LUN 0 points at block\/data1, not fileio\/f1.*iqn\.2024-12\.tp2\.b3:chunk1 is logged in/);
});

test('plan: deleting a target an initiator is logged in to is destructive', (t) => {
  const absent = targetcli.validate({ state: 'absent', targets: [{ iqn: T1 }, { iqn: T2 }] });
  const changes = targetcli.plan(absent, facts(configfs('configfs-session')));
  t.deepEqual(summaries(changes), [`delete target ${T1}`, `delete target ${T2}`]);
  t.regex(changes[0]?.destructive ?? '', /chunk1 is logged in/);
  t.is(changes[1]?.destructive, undefined);
  t.deepEqual(targetcli.plan(absent, facts(configfs('configfs-empty'))), []);
});

test('plan: unsaved running configuration is saved; a disabled restore service is enabled', (t) => {
  const running = configfs('configfs-configured');
  const changes = targetcli.plan(targetcli.validate(recorded()), facts(running, { saved: configfs('configfs-empty'), service: { name: 'rtslib-fb-targetctl', enabled: false } }));
  t.deepEqual(summaries(changes), ['save the running configuration to /etc/rtslib-fb-target/saveconfig.json (it differs from the saved one)', 'enable rtslib-fb-targetctl (restores the targets at boot)']);
  t.is(batchOf(changes), 'saveconfig\n');
});

test('plan: with specific portals already bound, a new target gets no default portal to remove', (t) => {
  const p = recorded();
  p.targets.push({ iqn: 'iqn.2024-12.tp2.b3:data-chunk3', portals: [{ ip: '10.3.1.1' }], luns: [{ backstore: 'data1' }], acls: [] });
  const changes = targetcli.plan(targetcli.validate(p), facts(configfs('configfs-configured')));
  t.false(batchOf(changes).includes('delete 0.0.0.0'));
  t.true(batchOf(changes).includes('/iscsi/iqn.2024-12.tp2.b3:data-chunk3/tpg1/portals create 10.3.1.1 3260'));
});

test('params: a bad IQN and a short CHAP secret are refused', (t) => {
  t.throws(() => targetcli.validate({ targets: [{ iqn: 'iqn.2024-12.lab:b' }] }), { message: /iqn/ });
  t.throws(() => targetcli.validate({ targets: [{ iqn: T1, acls: [{ initiator: CHUNK1, chap: { user: 'u', password: 'short' } }] }] }), { message: /password/ });
});

test('plan: empty CHAP fields are written key="" (targetcli would take the next word as the value of key=)', (t) => {
  const p = recorded();
  const acl = p.targets[0]?.acls[0];
  if (!acl) return t.fail();
  delete acl.mutualChap;
  const changes = targetcli.plan(targetcli.validate(p), facts(configfs('configfs-configured')));
  t.deepEqual(summaries(changes), [`${T1}: ${CHUNK1}: set CHAP (mutual user, mutual password changed)`]);
  t.regex(batchOf(changes), /set auth userid=chunk1 password=labsecret-chunk1 mutual_userid="" mutual_password=""\n/);
  delete acl.chap;
  const none = targetcli.plan(targetcli.validate({ ...p, targets: [{ ...p.targets[0], authentication: false }, p.targets[1]] }), facts(configfs('configfs-configured')));
  t.true(summaries(none).includes(`${T1}: ${CHUNK1}: remove CHAP`));
  t.regex(batchOf(none), /set auth userid="" password="" mutual_userid="" mutual_password=""\n/);
});

test('wwn: the recorded serial gives the WWID multipath recorded for that LUN', (t) => {
  const state = configfs('configfs-session');
  const maps = parseMapsJson(recording('multipath/maps-json').stdout);
  const serials = [...state.backstores.values()].map((b) => b.wwn ?? '');
  const wwids = maps.map((m) => m.wwid);
  t.true(wwids.length > 0);
  for (const w of wwids) t.true(serials.some((s) => s !== '' && lioWwid(s) === w), `${w} from one of ${serials.join(', ')}`);
  t.throws(() => lioWwid('not-a-uuid'), { message: /not a LIO unit serial/ });
});

test('wwn: unitSerial is stable, UUID-shaped and differs by name', (t) => {
  const a = unitSerial('sto1/data-chunk1');
  t.is(a, unitSerial('sto1/data-chunk1'));
  t.not(a, unitSerial('sto2/data-chunk1'));
  t.regex(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.regex(lioWwid(a), /^36001405[0-9a-f]{25}$/);
});

test('plan: a wanted unit serial is passed at creation; another serial on the host re-creates the backstore', (t) => {
  const have = [...configfs('configfs-configured').backstores.values()].find((b) => b.name === 'data1')?.wwn;
  if (!have) return t.fail('the recorded backstore has a serial');
  const p = recorded();
  const same = targetcli.validate({ ...p, backstores: [{ name: 'data1', path: '/dev/md/data1', wwn: have.toUpperCase() }, p.backstores[1]] });
  t.deepEqual(summaries(targetcli.plan(same, facts(configfs('configfs-configured')))), []);
  const serial = unitSerial('sto1/data1');
  const other = targetcli.validate({ ...p, backstores: [{ name: 'data1', path: '/dev/md/data1', wwn: serial }, p.backstores[1]] });
  const changes = targetcli.plan(other, facts(configfs('configfs-configured')));
  t.regex(summaries(changes)[0] ?? '', /re-create backstore block\/data1 \(its unit serial is/);
  t.regex(batchOf(changes), new RegExp(`/backstores/block create name=data1 dev=/dev/md/data1 wwn=${serial}`));
  t.regex(batchOf(targetcli.plan(other, facts(configfs('configfs-empty')))), new RegExp(`wwn=${serial}`));
  t.throws(() => targetcli.validate({ backstores: [{ name: 'x', path: '/dev/md/x', wwn: 'abc' }] }), { message: /wwn/ });
});
