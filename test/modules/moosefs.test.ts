/**
 * The MooseFS modules. Parsers on mfscli 3.0.117's recorded outputs (test/fixtures/mfscli) and on the files of
 * Debian's moosefs 3.0.117-1 packages (test/fixtures/moosefs: examples and units, unpacked from the .debs); the
 * gather scripts run by /bin/sh with the MooseFS tools replaced by functions replaying recordings; plans from
 * nothing, converged (the plan applied by a small simulator plans nothing more), config changed (applied in the same
 * change), metadata never overwritten, disk ownership, and the destructive id reset refused without force.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { converge, DestructiveChangeError } from '../../lib/apply.ts';
import type { Command } from '../../lib/command.ts';
import type { Connection } from '../../lib/connection/types.ts';
import type { HostFacts } from '../../lib/facts.ts';
import type { Change, Module } from '../../lib/module.ts';
import { renderDiff } from '../../lib/textdiff.ts';
import type { FileContentFacts } from '../../modules/copy.ts';
import type { Stat } from '../../modules/file.ts';
import type { ServiceFacts } from '../../modules/service.ts';
import {
  CFG_KEYS,
  chunkserverGatherScript,
  DEFAULT_EXPORTS,
  droppedDisks,
  factsGatherScript,
  initMetadataCommand,
  masterGatherScript,
  mfscliCommand,
  moosefsCgiserv,
  moosefsChunkserver,
  moosefsClient,
  moosefsFacts,
  moosefsMaster,
  moosefsMetalogger,
  parseCfg,
  parseChunkserverGather,
  parseFactsGather,
  parseMasterGather,
  parseMfscli,
  type MoosefsChunkserverFacts,
  type MoosefsClientFacts,
  type MoosefsMasterFacts,
  allAtGoal,
} from '../../modules/moosefs.ts';
import { fixture } from '../helpers/fixtures.ts';
import { runStubbed, type Stubs } from '../helpers/blockdev-stubs.ts';

const mfscli = (name: string) => parseMfscli(fixture(`mfscli/${name}`).stdout);
const debian = (name: string) => fixture(`moosefs/${name}`).stdout;
const summaries = (changes: readonly Change[]) => changes.map((c) => c.summary);
const steps = (changes: readonly Change[]) => changes.flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.display : `put ${s.path}`)));
const written = (changes: readonly Change[], path: string): string => {
  const s = changes.flatMap((c) => c.steps).find((x) => x.kind === 'put' && x.path === path);
  return s?.kind === 'put' ? Buffer.from(s.content).toString('utf8') : '';
};
const tmp = (t: { teardown(f: () => void): void }) => {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-mfs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

// ---------------------------------------------------------------- facts as a host has them, and a simulator

const dir = (owner = 'mfs', group = owner): Stat => ({ type: 'directory', mode: 0o755, uid: 0, gid: 0, owner, group, size: 4096 });
const absent = (path: string): FileContentFacts => ({ path, stat: null, content: null, linkTarget: null });
const file = (path: string, text: string, mode = 0o644, owner = 'root', group = 'root'): FileContentFacts => ({
  path,
  stat: { type: 'file', mode, uid: 0, gid: 0, owner, group, size: Buffer.byteLength(text) },
  content: Buffer.from(text),
  linkTarget: null,
});
const unit = (id: string, activeState = 'inactive', unitFileState = 'enabled'): ServiceFacts => ({ id, loadState: 'loaded', activeState, subState: '', unitFileState, canReload: true, needDaemonReload: false });

/** What the steps of a plan do to the facts (files written, units started, ...): enough to plan again. */
function applied<F extends object>(facts: F, changes: readonly Change[], files: Readonly<Record<string, keyof F>>): F {
  const out: Record<string, unknown> = { ...(facts as Record<string, unknown>) };
  for (const s of changes.flatMap((c) => c.steps)) {
    if (s.kind === 'put') {
      const key = files[s.path];
      if (key !== undefined) out[key as string] = file(s.path, Buffer.from(s.content).toString('utf8'), s.mode ?? 0o644, s.owner, s.group);
      continue;
    }
    const [verb, ...args] = s.command.display.split(' ');
    const svc = out['service'] as ServiceFacts;
    if (verb === 'systemctl' && args[0] === 'start') out['service'] = { ...svc, activeState: 'active' };
    if (verb === 'systemctl' && args[0] === 'stop') out['service'] = { ...svc, activeState: 'inactive' };
    if (verb === 'systemctl' && args[0] === 'enable') out['service'] = { ...svc, unitFileState: 'enabled', loadState: 'loaded' };
    if (verb === 'systemctl' && args[0] === 'daemon-reload' && svc.loadState === 'not-found') out['service'] = { ...svc, loadState: 'loaded', unitFileState: 'disabled' };
  }
  return out as F;
}

// ---------------------------------------------------------------- mfscli

test('mfscli: recorded with moosefs-cli 3.0.117 against a 3.0.117 master', (t) => {
  for (const name of ['SIN-plain', 'SCS-plain', 'SHD-plain', 'SMB-plain', 'SIG-plain', 'no-master', 'facts-3-chunkservers']) {
    t.is(fixture(`mfscli/${name}`).tool, 'moosefs-cli 3.0.117-1');
    t.is(fixture(`mfscli/${name}`).exitCode, 0, 'mfscli exits 0 even without a master');
  }
});

test('mfscli -SIN: the master, its space and chunks, and the chunks-by-copies classes (all zero: no chunk yet)', (t) => {
  const r = mfscli('SIN-plain');
  t.is(r.masterError, null);
  t.deepEqual(r.metadataServers, [{ ip: '10.3.1.100', version: '3.0.117', state: '-', metadataVersion: 4, ramUsed: 207773696, exportsChecksum: 'FFCCFD8ADEFBE2DE' }]);
  t.like(r.info, { version: '3.0.117', totalSpace: 3911155712, availSpace: 3001823232, trashSpace: 0, fsObjects: 1, directories: 1, files: 0, chunks: 0, allChunkCopies: 0, regularChunkCopies: 0 });
  t.is(r.info?.raw['free space'], '3001823232');
  t.deepEqual(r.classes, { missing: 0, endangered: 0, undergoal: 0, stable: 0, overgoal: 0, pendingDeletion: 0, toBeRemoved: 0 });
  t.deepEqual(r.copies, [], 'mfscli prints only the cells of the goal x copies matrix that hold chunks');
  t.deepEqual([r.chunkservers, r.disks, r.metaloggers, r.errors], [[], [], [], []]);
});

test('mfscli -SCS: one chunkserver connected, its id, version, space, not in maintenance', (t) => {
  const r = mfscli('SCS-plain');
  t.deepEqual(r.chunkservers, [
    { host: 'mfsmaster', port: 9422, id: 1, labels: [], version: '3.0.117', load: 0, maintenance: 'maintenance_off', chunks: 0, used: 909332480, total: 3911155712, removal: { status: '-', chunks: 0, used: 0, total: 0 } },
  ]);
  t.deepEqual(r.disconnected, []);
  t.is(r.info, null);
});

test('mfscli -SHD: the disk of the chunkserver by IP:PORT:PATH, ok, no error, its space', (t) => {
  t.deepEqual(mfscli('SHD-plain').disks, [{ chunkserver: '10.3.1.100:9422', path: '/var/lib/mfs-hdd/', chunks: 0, lastError: 'no errors', status: ['ok'], used: 909332480, total: 3911155712, scanning: null }]);
});

test('mfscli -SIG and -SMB: master info alone (no matrix), and no metalogger', (t) => {
  const sig = mfscli('SIG-plain');
  t.like(sig.info, { version: '3.0.117', totalSpace: 3911155712, chunks: 0 });
  t.is(sig.info?.raw['CPU used (system)'], '0.022090790');
  t.is(sig.classes, null);
  t.deepEqual(mfscli('SMB-plain').metaloggers, []);
});

test('mfscli without a master: its message, a DEAD metadata server, no info; the facts say unreachable and a wait fails naming it', (t) => {
  const r = mfscli('no-master');
  t.is(r.masterError, 'Working master servers not found !!! - maybe you are using wrong port number or wrong dns name');
  t.is(r.metadataServers[0]?.state, 'DEAD');
  t.is(r.info, null);
  const out = (stdout: string) => `@@sanbook begin mfscli\n${stdout}\n@@sanbook rc 0\n@@sanbook stderr\n\n@@sanbook end\n`;
  const f = parseFactsGather(out(fixture('mfscli/no-master').stdout), moosefsFacts.validate({ masterHost: '127.0.0.1', masterPort: 9 }), 'master');
  t.deepEqual(f.master, { host: '127.0.0.1', port: 9, reachable: false });
  t.false(f.atGoal);
  t.throws(() => parseFactsGather(out(fixture('mfscli/no-master').stdout), moosefsFacts.validate({ masterHost: '127.0.0.1', masterPort: 9, wait: { chunkservers: 1 } }), 'master'), {
    message: /^moosefs_facts: after waiting up to 120 s on master, master 127\.0\.0\.1:9: no working master at 127\.0\.0\.1:9 \(Working master servers not found/,
  });
});

/** The facts module's one call, recorded on the san playbook's cluster: 3 chunkservers with 2 disks each. */
const FACTS_CALL = fixture('mfscli/facts-3-chunkservers');
const LAB_FACTS = { masterHost: '10.3.1.100' };
/** The stubbed mfscli replays that recording when asked exactly what it was asked on the lab. */
function mfscliStubs(): Stubs {
  return { mfscli: [[FACTS_CALL.command.replace(/^mfscli /, ''), FACTS_CALL]] };
}

test('moosefs_facts on the recorded call (3 chunkservers, 2 disks each): one mfscli call run by /bin/sh, parsed into facts', (t) => {
  const d = tmp(t);
  const p = moosefsFacts.validate(LAB_FACTS);
  t.is(FACTS_CALL.command, mfscliCommand({ masterHost: '10.3.1.100', masterPort: 9421 }).display, 'recorded by the command the module runs');
  t.is(factsGatherScript(p).display.split('\n').filter((l) => l.includes('mfscli -H')).length, 1);
  const f = parseFactsGather(runStubbed(factsGatherScript(p), mfscliStubs(), d), p, 'master');
  t.deepEqual(f.master, { host: '10.3.1.100', port: 9421, reachable: true });
  t.deepEqual([f.masterError, f.errors], [null, []]);
  // mfscli groups the metadata version's digits even with -p ("1 551").
  t.like(f.metadataServers[0], { ip: '10.3.1.100', version: '3.0.117', state: '-', metadataVersion: 1551, ramUsed: 511913984, exportsChecksum: '60031CB7B5B13C8D' });
  t.like(f.info, {
    version: '3.0.117',
    totalSpace: 2805866496,
    availSpace: 2228342784,
    trashSpace: 20971520,
    trashFiles: 5,
    fsObjects: 209,
    directories: 3,
    files: 206,
    chunks: 206,
    allChunkCopies: 412,
    regularChunkCopies: 412,
  });
  t.deepEqual(f.copies, [{ goal: 2, copies: 2, chunks: 206 }], 'every chunk: goal 2, 2 copies');
  t.deepEqual(f.classes, { missing: 0, endangered: 0, undergoal: 0, stable: 206, overgoal: 0, pendingDeletion: 0, toBeRemoved: 0 });
  t.true(f.atGoal);
  t.deepEqual(
    f.chunkservers.map((c) => [c.host, c.port, c.id, c.version, c.maintenance, c.chunks, c.used, c.total]),
    [
      ['10.3.1.101', 9422, 2, '3.0.117', 'maintenance_off', 158, 214327296, 935288832],
      ['10.3.1.102', 9422, 3, '3.0.117', 'maintenance_off', 109, 149151744, 935288832],
      ['10.3.1.103', 9422, 1, '3.0.117', 'maintenance_off', 145, 214044672, 935288832],
    ],
  );
  t.true(f.chunkservers.every((c) => c.labels.length === 0 && c.removal.status === '-' && c.removal.chunks === 0));
  t.is(f.chunkservers.reduce((n, c) => n + c.chunks, 0), f.info?.allChunkCopies ?? -1, 'every copy is on a connected chunkserver');
  t.deepEqual(
    f.disks.map((x) => [x.chunkserver, x.path, x.chunks, x.used, x.total]),
    [
      ['10.3.1.101:9422', '/mnt/data_chunk1/', 79, 138694656, 467644416],
      ['10.3.1.101:9422', '/mnt/data_chunk2/', 79, 75632640, 467644416],
      ['10.3.1.102:9422', '/mnt/data_chunk1/', 51, 70225920, 467644416],
      ['10.3.1.102:9422', '/mnt/data_chunk2/', 59, 78925824, 467644416],
      ['10.3.1.103:9422', '/mnt/data_chunk1/', 73, 142766080, 467644416],
      ['10.3.1.103:9422', '/mnt/data_chunk2/', 72, 71278592, 467644416],
    ],
  );
  t.true(f.disks.every((x) => x.lastError === 'no errors' && x.status.join() === 'ok' && x.scanning === null));
  t.deepEqual([f.disconnected, f.metaloggers], [[], []], 'no metalogger in the san playbook');
  t.deepEqual(moosefsFacts.plan(p, f), [], 'read-only');
});

test('moosefs_facts wait: met at once, or the loop on the host times out and the task names what is missing', (t) => {
  const d = tmp(t);
  const ok = moosefsFacts.validate({ ...LAB_FACTS, wait: { chunkservers: 3, disks: 6, healthy: true, timeoutSeconds: 5 } });
  t.is(parseFactsGather(runStubbed(factsGatherScript(ok), mfscliStubs(), d), ok, 'master').chunkservers.length, 3);
  const four = moosefsFacts.validate({ ...LAB_FACTS, wait: { chunkservers: 4, metaloggers: 1, timeoutSeconds: 1 } });
  t.is(factsGatherScript(four).timeoutMs, 61_000, 'the command may run as long as the wait, and a minute more');
  const started = Date.now();
  const out = runStubbed(factsGatherScript(four), mfscliStubs(), d);
  t.true(Date.now() - started >= 1000, 'it waited');
  t.throws(() => parseFactsGather(out, four, 'master'), {
    message: 'moosefs_facts: after waiting up to 1 s on master, master 10.3.1.100:9421: 3 of 4 chunkservers connected (10.3.1.101:9422, 10.3.1.102:9422, 10.3.1.103:9422); 0 of 1 metaloggers',
  });
});

test('moosefs_facts wait: a clock that ticks over to the next second right after the start still waits the whole timeout', (t) => {
  const d = tmp(t);
  const clock = join(d, 'clock');
  writeFileSync(clock, '0');
  // Each call of date +%s is one second later than the one before: the deadline's start at 1000, the first check at 1001.
  const date = `date() { n=$(cat ${clock}); echo $((n + 1)) > ${clock}; echo $((1000 + n)); }`;
  const one = moosefsFacts.validate({ ...LAB_FACTS, wait: { chunkservers: 4, timeoutSeconds: 1 } });
  const out = runStubbed(factsGatherScript(one), mfscliStubs(), d, date);
  t.is(readFileSync(clock, 'utf8').trim(), '3', 'the clock read at the start, after the first try and after the second');
  t.throws(() => parseFactsGather(out, one, 'master'), { message: /^moosefs_facts: after waiting up to 1 s on master/ });
});

test('moosefs_facts: no mfscli on the host is an error naming moosefs-cli', (t) => {
  const p = moosefsFacts.validate({});
  const out = execFileSync('/bin/sh', ['-c', `command() { return 1; }\n${factsGatherScript(p).script.toString()}`], { encoding: 'utf8' });
  t.throws(() => parseFactsGather(out, p, 'chunk1'), { message: 'moosefs_facts: package moosefs-cli is not installed on chunk1 (no mfscli): install it first (package module)' });
});

// ---------------------------------------------------------------- Debian's files and the templates

test("the keys each daemon knows are the keys of Debian's 3.0.117 example files", (t) => {
  const keys = (text: string) => [...text.matchAll(/^# ?([A-Z_]+) =/gm)].map((m) => m[1]);
  t.deepEqual(keys(debian('example-mfsmaster.cfg')), [...CFG_KEYS.mfsmaster]);
  t.deepEqual(keys(debian('example-mfschunkserver.cfg')), [...CFG_KEYS.mfschunkserver]);
  t.deepEqual(keys(debian('example-mfsmetalogger.cfg')), [...CFG_KEYS.mfsmetalogger]);
});

test("templates render the seed's configs: the examples copied as they are (defaults only) and Debian's exports", (t) => {
  // Seed 000 copied mfsmaster.cfg.sample and mfsexports.cfg.sample: every setting commented out, two exports.
  t.deepEqual([...parseCfg(debian('example-mfsmaster.cfg'))], []);
  const master = moosefsMaster.plan(moosefsMaster.validate({}), masterNothing());
  t.deepEqual([...parseCfg(written(master, '/etc/mfs/mfsmaster.cfg'))], [], 'no setting: the defaults, as the copied sample');
  const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).map((l) => l.trim().split(/\s+/));
  t.deepEqual(lines(written(master, '/etc/mfs/mfsexports.cfg')), lines(debian('example-mfsexports.cfg')));
  t.deepEqual(DEFAULT_EXPORTS.length, 2);
  // The lab's chunkserver (lab/record-storage.ts): the example plus HDD_LEAVE_SPACE_DEFAULT, one directory.
  const cs = moosefsChunkserver.plan(moosefsChunkserver.validate({ masterHost: 'mfsmaster', disks: ['/var/lib/mfs-hdd'], leaveSpaceDefault: '64MiB' }), csNothing(['/var/lib/mfs-hdd']));
  t.deepEqual([...parseCfg(written(cs, '/etc/mfs/mfschunkserver.cfg'))], [['MASTER_HOST', 'mfsmaster'], ['HDD_LEAVE_SPACE_DEFAULT', '64MiB']]);
  t.deepEqual(lines(written(cs, '/etc/mfs/mfshdd.cfg')), [['/var/lib/mfs-hdd']]);
  t.deepEqual(lines(debian('example-mfshdd.cfg')), [], "Debian's mfshdd.cfg lists no directory");
});

test("Debian's units: reload is SIGHUP for the daemons; cgiserv takes its root from /etc/default/moosefs-cgiserv, which the module writes", (t) => {
  for (const u of ['unit-moosefs-master', 'unit-moosefs-chunkserver', 'unit-moosefs-metalogger']) t.regex(debian(u), /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m, u);
  const cgi = debian('unit-moosefs-cgiserv');
  t.regex(cgi, /^EnvironmentFile=-\/etc\/default\/%p$/m);
  const vars = [...(/^ExecStart=(.*)$/m.exec(cgi)?.[1] ?? '').matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]);
  t.deepEqual(vars, ['BIND_HOST', 'BIND_PORT', 'ROOT_PATH']);
  const changes = moosefsCgiserv.plan(moosefsCgiserv.validate({}), { host: 'master', defaults: absent('/etc/default/moosefs-cgiserv'), service: unit('moosefs-cgiserv.service') });
  const text = written(changes, '/etc/default/moosefs-cgiserv');
  t.deepEqual([...parseCfg(text)].map(([k]) => k), vars, 'the file sets every variable of the command line');
  t.is(parseCfg(text).get('ROOT_PATH'), /^Environment=ROOT_PATH=(.*)$/m.exec(cgi)?.[1], "the root Debian's moosefs-cgi fills (mfscgiserv's own default answers 404)");
});

// ---------------------------------------------------------------- master

const MASTER_FILES = { '/etc/mfs/mfsmaster.cfg': 'config', '/etc/mfs/mfsexports.cfg': 'exportsFile' } as const;
function masterNothing(over: Partial<MoosefsMasterFacts> = {}): MoosefsMasterFacts {
  return { config: absent('/etc/mfs/mfsmaster.cfg'), exportsFile: absent('/etc/mfs/mfsexports.cfg'), service: unit('moosefs-master.service', 'inactive', 'disabled'), dataDir: dir(), metadataFiles: [], emptyMetadata: true, memTotalMiB: 960, ...over };
}
const master = (raw: object = {}) => moosefsMaster.validate(raw);
/** The master after its plan from nothing, running on its metadata (metadata.mfs.back while it runs). */
function masterConverged(p = master()): MoosefsMasterFacts {
  const f = applied(masterNothing(), moosefsMaster.plan(p, masterNothing()), MASTER_FILES);
  return { ...f, metadataFiles: ['metadata.mfs.back', 'changelog.0.mfs'] };
}

test('master from nothing: both files, the metadata of a new instance, enabled and started', (t) => {
  const changes = moosefsMaster.plan(master(), masterNothing());
  t.deepEqual(summaries(changes), [
    'create /etc/mfs/mfsmaster.cfg (220 bytes)',
    'create /etc/mfs/mfsexports.cfg (255 bytes)',
    'initialise the metadata of a new MooseFS instance: copy /var/lib/mfs/metadata.mfs.empty to /var/lib/mfs/metadata.mfs (/var/lib/mfs holds no metadata: first start)',
    'enable moosefs-master.service (disabled)',
    'start moosefs-master.service (inactive)',
  ]);
  t.false(changes.some((c) => c.destructive !== undefined));
  const put = changes[0]?.steps[0];
  t.deepEqual(put?.kind === 'put' ? [put.mode, put.owner, put.group] : [], [0o644, 'root', 'root']);
});

test('master converged: nothing planned; the convergence also holds with settings, exports and a secret', (t) => {
  t.deepEqual(moosefsMaster.plan(master(), masterConverged()), []);
  const p = master({ exports: [{ network: '10.3.1.0/24', path: '/', options: ['rw', 'alldirs', 'maproot=0'] }], authCode: 'cluster-code-1', extra: { ATIME_MODE: 4 } });
  t.deepEqual(moosefsMaster.plan(p, masterConverged(p)), []);
});

test('master config changed: written and applied in the same change; reload for exports, restart for a start-time key, none with restart: false', (t) => {
  const running = { ...masterConverged(), service: unit('moosefs-master.service', 'active') };
  const exportsChanged = moosefsMaster.plan(master({ exports: [{ network: '10.3.1.0/24', path: '/', options: ['rw'] }] }), running);
  t.deepEqual(summaries(exportsChanged), ['update /etc/mfs/mfsexports.cfg (232 bytes, was 255); then reload moosefs-master.service']);
  t.deepEqual(steps(exportsChanged), ['put /etc/mfs/mfsexports.cfg', 'systemctl reload moosefs-master.service']);
  t.regex(renderDiff(exportsChanged[0]?.diff ?? { label: '', before: '', after: '' }), /^-\*\t\/\trw,alldirs,admin,maproot=0:0$/m);
  const tuned = moosefsMaster.plan(master({ extra: { CHUNKS_LOOP_MIN_TIME: 600 } }), running);
  t.deepEqual(steps(tuned), ['put /etc/mfs/mfsmaster.cfg', 'systemctl reload moosefs-master.service']);
  const user = moosefsMaster.plan(master({ dataPath: '/var/lib/mfs' }), running);
  t.deepEqual(steps(user), ['put /etc/mfs/mfsmaster.cfg', 'systemctl restart moosefs-master.service'], 'DATA_PATH is read at start only');
  const both = moosefsMaster.plan(master({ extra: { ATIME_MODE: 4 }, exports: [] }), running);
  t.deepEqual(steps(both), ['put /etc/mfs/mfsmaster.cfg', 'put /etc/mfs/mfsexports.cfg', 'systemctl reload moosefs-master.service'], 'one reload after the last file');
  const handler = moosefsMaster.plan(master({ restart: false, exports: [] }), running);
  t.deepEqual(steps(handler), ['put /etc/mfs/mfsexports.cfg']);
  t.regex(handler[0]?.summary ?? '', /restart: false: moosefs-master\.service runs on the old settings until a handler reloads it/);
  const stopped = { ...masterConverged(), service: unit('moosefs-master.service', 'inactive') };
  t.deepEqual(steps(moosefsMaster.plan(master({ exports: [] }), stopped)), ['put /etc/mfs/mfsexports.cfg', 'systemctl start moosefs-master.service'], 'a stopped master reads it when it starts');
});

test('master metadata is never overwritten: any metadata file, or a running master, and no initialisation is planned', (t) => {
  const stopped = { ...masterConverged(), service: unit('moosefs-master.service', 'inactive') };
  for (const files of [['metadata.mfs'], ['metadata.mfs.back'], ['changelog.0.mfs'], ['metadata.mfs.back.1']]) {
    t.false(summaries(moosefsMaster.plan(master(), { ...stopped, metadataFiles: files })).some((s) => s.startsWith('initialise')), files.join());
  }
  const crashed = moosefsMaster.plan(master(), { ...stopped, metadataFiles: ['metadata.mfs.back'] });
  t.deepEqual(summaries(crashed), ['start moosefs-master.service (inactive); /var/lib/mfs has metadata.mfs.back but no metadata.mfs (the master did not stop cleanly): if it does not start, recover with mfsmaster -a']);
  t.deepEqual(moosefsMaster.plan(master(), { ...stopped, service: unit('moosefs-master.service', 'active'), metadataFiles: [] }), [], 'a running master is never initialised');
  t.throws(() => moosefsMaster.plan(master(), masterNothing({ emptyMetadata: false })), { message: '/var/lib/mfs holds no metadata and there is no /var/lib/mfs/metadata.mfs.empty to start a new instance from: is moosefs-master installed?' });
});

test('master metadata initialisation step: refuses (exit 1, nothing written) when metadata appeared since the plan', (t) => {
  const d = tmp(t);
  for (const name of ['metadata.mfs', 'metadata.mfs.back']) {
    writeFileSync(join(d, name), 'OLD');
    const r = spawnSync('/bin/sh', ['-c', initMetadataCommand(d, 'mfs', 'mfs').script.toString()], { encoding: 'utf8' });
    t.is(r.status, 1);
    t.is(r.stderr, `${d}/${name} exists: the metadata is not initialised\n`);
    t.is(readFileSync(join(d, name), 'utf8'), 'OLD');
    rmSync(join(d, name));
  }
});

test('master: memory under minMemoryMiB refused naming it; bad exports and extra keys are errors naming them', (t) => {
  t.throws(() => moosefsMaster.plan(master(), masterNothing({ memTotalMiB: 480 })), { message: /this host has 480 MiB \(MemTotal\), under minMemoryMiB 768/ });
  t.notThrows(() => moosefsMaster.plan(master({ minMemoryMiB: 0 }), masterNothing({ memTotalMiB: 480 })));
  t.throws(() => moosefsMaster.plan(master({ exports: [{ network: '*', path: '/', options: ['rw', 'password=x'] }] }), masterNothing()), { message: /export \* \/: password is not supported/ });
  t.throws(() => moosefsMaster.plan(master({ extra: { HDD_LEAVE_SPACE_DEFAULT: '1G' } }), masterNothing()), { message: /^extra\.HDD_LEAVE_SPACE_DEFAULT is not a setting of mfsmaster\.cfg/ });
  t.throws(() => moosefsMaster.plan(master({ dataPath: '/srv/mfs', extra: { DATA_PATH: '/x' } }), masterNothing()), { message: 'extra.DATA_PATH is also given by a typed param: give it once' });
  t.throws(() => moosefsMaster.plan(master({ extra: { EXPORTS_FILENAME: '/x' } }), masterNothing()), { message: 'extra.EXPORTS_FILENAME: the module sets EXPORTS_FILENAME itself' });
  t.throws(() => master({ extra: { lower: 1 } }));
  t.throws(() => master({ exports: [{ network: '10.3.1.0/24 rw', path: '/' }] }));
  t.throws(() => master({ disks: ['/mnt/x'] }), { message: /disks/ }, 'a chunkserver param is not a master param');
});

test('master AUTH_CODE: a secret in the file only (mode 0640 root:mfs), *** in the diff, an old code masked too', (t) => {
  const old = file('/etc/mfs/mfsmaster.cfg', 'AUTH_CODE = old-cluster-code\n');
  const changes = moosefsMaster.plan(master({ authCode: 'new-cluster-code' }), { ...masterConverged(), config: old });
  const put = changes[0]?.steps[0];
  t.deepEqual(put?.kind === 'put' ? [put.mode, put.owner, put.group] : [], [0o640, 'root', 'mfs']);
  t.true(written(changes, '/etc/mfs/mfsmaster.cfg').includes('AUTH_CODE = new-cluster-code\n'));
  const diff = renderDiff(changes[0]?.diff ?? { label: '', before: '', after: '' });
  t.false(diff.includes('new-cluster-code') || diff.includes('old-cluster-code'));
  t.regex(diff, /^ AUTH_CODE = \*\*\*$/m, 'the old code is masked as well: the line shows as *** on both sides');
});

test('master gather: /bin/sh runs it; a missing moosefs-master is an error naming the package; the facts of a stubbed host', (t) => {
  const d = tmp(t);
  const p = master({ dataPath: d });
  const none = execFileSync('/bin/sh', ['-c', `command() { return 1; }\n${masterGatherScript(p).script.toString()}`], { encoding: 'utf8' });
  t.throws(() => parseMasterGather(none, p, 'master'), { message: 'moosefs_master: package moosefs-master (no mfsmaster) not installed on master: install it first (package module)' });
  writeFileSync(join(d, 'metadata.mfs.back'), 'x');
  writeFileSync(join(d, 'metadata.mfs.empty'), 'x');
  const stubs: Stubs = { mfsmaster: [], systemctl: [['show *', fixture('service/running-enabled')]] };
  const f = parseMasterGather(runStubbed(masterGatherScript(p), stubs, d), p, 'master');
  t.deepEqual(f.metadataFiles, ['metadata.mfs.back'], 'metadata.mfs.empty is not metadata');
  t.is(f.dataDir?.type, 'directory');
  t.true((f.memTotalMiB ?? 0) > 0);
  t.is(f.service.activeState, 'active');
});

// ---------------------------------------------------------------- chunkserver

const CS_FILES = { '/etc/mfs/mfschunkserver.cfg': 'config', '/etc/mfs/mfshdd.cfg': 'hdd', '/etc/systemd/system/moosefs-chunkserver.service.d/sanbook-mounts.conf': 'dropIn' } as const;
const DISKS = ['/mnt/data_chunk1', '/mnt/data_chunk2'];
function csNothing(disks = DISKS, over: Partial<MoosefsChunkserverFacts> = {}): MoosefsChunkserverFacts {
  return {
    config: absent('/etc/mfs/mfschunkserver.cfg'),
    hdd: absent('/etc/mfs/mfshdd.cfg'),
    dropIn: absent(CS_FILES_DROP_IN),
    service: unit('moosefs-chunkserver.service', 'inactive', 'disabled'),
    dataDir: dir(),
    disks: disks.map((path) => ({ path, stat: dir('root'), mountTarget: path, metaid: null })),
    csid: null,
    refusedBy: null,
    ...over,
  };
}
const CS_FILES_DROP_IN = '/etc/systemd/system/moosefs-chunkserver.service.d/sanbook-mounts.conf';
const chunk = (raw: object = {}) => moosefsChunkserver.validate({ masterHost: '10.3.1.100', disks: DISKS, ...raw });
function csConverged(p = chunk()): MoosefsChunkserverFacts {
  const f = applied(csNothing(p.disks), moosefsChunkserver.plan(p, csNothing(p.disks)), CS_FILES);
  return { ...f, disks: f.disks.map((d) => ({ ...d, stat: dir() })) };
}

test('chunkserver from nothing: ordered after its mounts, disks chowned to mfs, both files, enabled and started', (t) => {
  const changes = moosefsChunkserver.plan(chunk({ leaveSpaceDefault: '64MiB' }), csNothing());
  t.deepEqual(summaries(changes), [
    `create ${CS_FILES_DROP_IN} (333 bytes): the chunkserver starts after the mounts of /mnt/data_chunk1, /mnt/data_chunk2; daemon-reload`,
    'chown mfs:mfs disk /mnt/data_chunk1 (it is owned by root:root)',
    'chown mfs:mfs disk /mnt/data_chunk2 (it is owned by root:root)',
    'create /etc/mfs/mfschunkserver.cfg (297 bytes)',
    'create /etc/mfs/mfshdd.cfg (302 bytes)',
    'enable moosefs-chunkserver.service (disabled)',
    'start moosefs-chunkserver.service (inactive)',
  ]);
  t.deepEqual(steps(changes).slice(0, 5), [
    'mkdir -p -- /etc/systemd/system/moosefs-chunkserver.service.d',
    `put ${CS_FILES_DROP_IN}`,
    'systemctl daemon-reload',
    'chown mfs:mfs -- /mnt/data_chunk1',
    'chown mfs:mfs -- /mnt/data_chunk2',
  ]);
  t.regex(written(changes, CS_FILES_DROP_IN), /^\[Unit\]\nRequiresMountsFor=\/mnt\/data_chunk1 \/mnt\/data_chunk2\n$/m);
  t.deepEqual([...parseCfg(written(changes, '/etc/mfs/mfschunkserver.cfg'))], [['MASTER_HOST', '10.3.1.100'], ['HDD_LEAVE_SPACE_DEFAULT', '64MiB']]);
});

test('chunkserver converged: nothing planned', (t) => {
  t.deepEqual(moosefsChunkserver.plan(chunk(), csConverged()), []);
  const p = chunk({ masterPort: 9420, authCode: 'cluster-code-1', extra: { LABELS: 'A' }, requireMounts: true });
  t.deepEqual(moosefsChunkserver.plan(p, csConverged(p)), []);
});

test('chunkserver config changed while it runs: reload in the same change (HDD_LEAVE_SPACE_DEFAULT, a new disk), restart for WORKING_USER', (t) => {
  const running = { ...csConverged(), service: unit('moosefs-chunkserver.service', 'active') };
  t.deepEqual(steps(moosefsChunkserver.plan(chunk({ leaveSpaceDefault: '1GiB' }), running)), ['put /etc/mfs/mfschunkserver.cfg', 'systemctl reload moosefs-chunkserver.service']);
  const user = moosefsChunkserver.plan(chunk({ workingUser: 'mfs' }), running);
  t.regex(user[0]?.summary ?? '', /; then restart moosefs-chunkserver\.service$/);
  const three = [...DISKS, '/mnt/data_chunk3'];
  const more = moosefsChunkserver.plan(chunk({ disks: three }), { ...running, disks: three.map((path) => ({ path, stat: dir(), mountTarget: path, metaid: null })) });
  t.deepEqual(steps(more), [
    'mkdir -p -- /etc/systemd/system/moosefs-chunkserver.service.d',
    `put ${CS_FILES_DROP_IN}`,
    'systemctl daemon-reload',
    'put /etc/mfs/mfshdd.cfg',
    'systemctl reload moosefs-chunkserver.service',
  ]);
});

test('chunkserver: a disk dropped from mfshdd.cfg is destructive (its chunks become unavailable); prefixes and limits are read', (t) => {
  const running = { ...csConverged(), service: unit('moosefs-chunkserver.service', 'active') };
  const one = chunk({ disks: ['/mnt/data_chunk1'] });
  const changes = moosefsChunkserver.plan(one, { ...running, disks: running.disks.slice(0, 1) });
  const hdd = changes.find((c) => c.steps.some((s) => s.kind === 'put' && s.path === '/etc/mfs/mfshdd.cfg'));
  t.regex(hdd?.summary ?? '', /: \/mnt\/data_chunk2 no longer used; then reload moosefs-chunkserver\.service$/);
  t.regex(hdd?.destructive ?? '', /^the chunks on \/mnt\/data_chunk2 become unavailable/);
  t.false(changes.some((c) => c !== hdd && c.destructive !== undefined), 'the drop-in change is not');
  const marked = moosefsChunkserver.plan(chunk({ removing: ['/mnt/data_chunk2'] }), running);
  t.deepEqual(steps(marked), ['put /etc/mfs/mfshdd.cfg', 'systemctl reload moosefs-chunkserver.service']);
  t.false(marked.some((c) => c.destructive !== undefined), 'marking for removal loses nothing');
  t.true(written(marked, '/etc/mfs/mfshdd.cfg').endsWith('\n/mnt/data_chunk1\n*/mnt/data_chunk2\n'));
  t.throws(() => moosefsChunkserver.plan(chunk({ removing: ['/mnt/other'] }), running), { message: 'removing: /mnt/other is not among the disks (a disk is marked for removal while it is still listed)' });
  t.deepEqual(droppedDisks('# disks\n*/mnt/hd2 -5GiB\n~/mnt/hd7/\n/mnt/hd1\n', ['/mnt/hd1', '/mnt/hd7']), ['/mnt/hd2']);
});

test('chunkserver disks: ownership fixed, a missing mount or a directory of / refused naming it, other directories created', (t) => {
  const disk = (over: object) => csNothing(DISKS, { disks: [{ path: '/mnt/data_chunk1', stat: dir('root', 'root'), mountTarget: '/mnt/data_chunk1', metaid: null, ...over }] });
  const one = chunk({ disks: ['/mnt/data_chunk1'] });
  t.true(steps(moosefsChunkserver.plan(one, disk({}))).includes('chown mfs:mfs -- /mnt/data_chunk1'));
  t.false(steps(moosefsChunkserver.plan(one, disk({ stat: dir() }))).some((s) => s.startsWith('chown')), 'already mfs:mfs');
  t.throws(() => moosefsChunkserver.plan(one, disk({ stat: null })), { message: 'disk /mnt/data_chunk1 does not exist: mount its filesystem there first (requireMounts)' });
  t.throws(() => moosefsChunkserver.plan(one, disk({ mountTarget: '/' })), { message: 'disk /mnt/data_chunk1 is on the root filesystem, not on a mounted disk: mount it first (systemd_mount), or set requireMounts: false' });
  t.notThrows(() => moosefsChunkserver.plan(chunk({ disks: ['/mnt/data_chunk1'], requireMounts: false }), disk({ mountTarget: '/' })));
  const lab = chunk({ disks: ['/var/lib/mfs-hdd'] });
  const created = moosefsChunkserver.plan(lab, csNothing(['/var/lib/mfs-hdd'], { disks: [{ path: '/var/lib/mfs-hdd', stat: null, mountTarget: null, metaid: null }] }));
  t.true(summaries(created).includes('create disk /var/lib/mfs-hdd owned by mfs:mfs'), 'not under /mnt: requireMounts is false by default');
  t.throws(() => moosefsChunkserver.plan(one, disk({ stat: { ...dir(), type: 'file' } })), { message: 'disk /mnt/data_chunk1 is not a directory (file)' });
});

const OLD_ID = '5B28ECE4FC168CA4';
const NEW_ID = '5B5F1B3FD4FCC69E';
const heldBy = (metaid: string | null, over: Partial<MoosefsChunkserverFacts> = {}): MoosefsChunkserverFacts => {
  const f = csConverged();
  return { ...f, service: unit('moosefs-chunkserver.service', 'failed'), csid: metaid === null ? null : { id: 1, metaid }, disks: f.disks.map((d) => ({ ...d, metaid })), ...over };
};

test('chunkserver of a re-created master: clearing its ids is destructive; planned from masterMetaid or from the journal', (t) => {
  const changes = moosefsChunkserver.plan(chunk({ masterMetaid: NEW_ID.toLowerCase() }), heldBy(OLD_ID));
  t.deepEqual(summaries(changes), [
    `clear the instance ids of this chunkserver (metadata id ${OLD_ID}; the master's is ${NEW_ID}): stop moosefs-chunkserver.service, remove /var/lib/mfs/chunkserverid.mfs /mnt/data_chunk1/.metaid /mnt/data_chunk2/.metaid`,
    'start moosefs-chunkserver.service (failed)',
  ]);
  t.is(changes[0]?.destructive, `the chunks on /mnt/data_chunk1, /mnt/data_chunk2 belong to the instance with metadata id ${OLD_ID}: the master of ${NEW_ID} does not know them and has them deleted`);
  t.deepEqual(steps(changes), ['systemctl stop moosefs-chunkserver.service', 'rm -f -- /var/lib/mfs/chunkserverid.mfs /mnt/data_chunk1/.metaid /mnt/data_chunk2/.metaid', 'systemctl reset-failed moosefs-chunkserver.service', 'systemctl start moosefs-chunkserver.service']);
  t.truthy(moosefsChunkserver.plan(chunk(), heldBy(OLD_ID, { refusedBy: NEW_ID }))[0]?.destructive, 'the journal says the master sent another id');
  t.deepEqual(moosefsChunkserver.plan(chunk({ masterMetaid: OLD_ID }), { ...heldBy(OLD_ID), service: unit('moosefs-chunkserver.service', 'active') }), [], 'same instance');
  t.deepEqual(summaries(moosefsChunkserver.plan(chunk({ masterMetaid: NEW_ID }), heldBy(null))), ['start moosefs-chunkserver.service (failed)'], 'no id held yet');
});

test('chunkserver id reset through converge: refused without force (nothing runs), done with force, then converged', async (t) => {
  const ran: string[] = [];
  const conn = { host: 'chunk1', exec: async (c: Command) => (ran.push(c.display), { exitCode: 0, stdout: '', stderr: '', stdoutBytes: Buffer.alloc(0), signal: null, timedOut: false, durationMs: 0 }), put: async () => {}, close: async () => {}, commandCount: 0 } as unknown as Connection;
  const queue = [heldBy(OLD_ID), heldBy(OLD_ID), { ...heldBy(null), service: unit('moosefs-chunkserver.service', 'active') }];
  const module = { ...moosefsChunkserver, gather: async () => queue.shift() ?? heldBy(null) } as Module<ReturnType<typeof chunk>, MoosefsChunkserverFacts, unknown>;
  const ctx = { host: 'chunk1', facts: { systemd: true } as unknown as HostFacts };
  const p = chunk({ masterMetaid: NEW_ID });
  const e = await t.throwsAsync(converge(conn, module, p, ctx), { instanceOf: DestructiveChangeError });
  t.regex(e?.message ?? '', /refused destructive change/);
  t.deepEqual(ran, []);
  const done = await converge(conn, module, p, ctx, { force: true });
  t.true(done.changed);
  t.deepEqual(ran, ['systemctl stop moosefs-chunkserver.service', 'rm -f -- /var/lib/mfs/chunkserverid.mfs /mnt/data_chunk1/.metaid /mnt/data_chunk2/.metaid', 'systemctl reset-failed moosefs-chunkserver.service', 'systemctl start moosefs-chunkserver.service']);
});

/** chunk1's id files read by od (recorded on the san playbook's cluster): chunkserverid.mfs (id, metadata id), .metaid. */
const CSID_OD = fixture('moosefs/chunkserverid-od');
const METAID_OD = fixture('moosefs/metaid-od');
/** The metadata id both hold, as MooseFS prints it (%016X). */
const RECORDED_ID = '6B0202F984659E73';
const RECORDED_DATA = '/var/lib/mfs';
const RECORDED_DISK = '/mnt/data_chunk1';

/**
 * A chunkserver's files: `disk` holds a .metaid and `data` a chunkserverid.mfs, with the bytes recorded on chunk1;
 * od is a stub replaying the recordings for exactly the recorded commands, the lab's paths swapped for these.
 */
function recordedIds(disk: string, data: string): Stubs['od'] {
  mkdirSync(disk, { recursive: true });
  mkdirSync(data, { recursive: true });
  const bytes = (od: string) => Buffer.from(od.replace(/\s+/g, ''), 'hex');
  writeFileSync(join(disk, '.metaid'), bytes(METAID_OD.stdout));
  writeFileSync(join(data, 'chunkserverid.mfs'), bytes(CSID_OD.stdout));
  const args = (command: string, from: string, to: string) => command.replace(/^od /, '').replace(from, to);
  return [
    [args(METAID_OD.command, RECORDED_DISK, disk), METAID_OD],
    [args(CSID_OD.command, RECORDED_DATA, data), CSID_OD],
  ];
}

test('chunkserver gather by /bin/sh: disk stat, mount, .metaid and chunkserverid.mfs (recorded od), the refusal in the journal', (t) => {
  const d = tmp(t);
  const disk = join(d, 'disk1');
  const data = join(d, 'data');
  const p = moosefsChunkserver.validate({ masterHost: '10.3.1.100', disks: [disk, join(d, 'nothing')], dataPath: data });
  // The journal line as mfschunkserver 3.0.117 formats it (its format string, with these two ids): not recorded.
  const refusal = `MATOCS_MASTER_ACK - wrong meta data id (file chunkserverid.mfs:${RECORDED_ID} ; received from master:${NEW_ID}). Can't connect to master\n`;
  const stubs: Stubs = {
    mfschunkserver: [],
    od: recordedIds(disk, data),
    systemctl: [['show *', fixture('service/running-enabled')]],
    findmnt: [['-n -o TARGET -T *', { stdout: '/\n', exitCode: 0 }]],
    journalctl: [['*', { stdout: `connected to Master\n${refusal}`, exitCode: 0 }]],
  };
  const f = parseChunkserverGather(runStubbed(chunkserverGatherScript(p), stubs, d), p, 'chunk1');
  t.deepEqual(f.disks.map((x) => [x.path, x.stat?.type ?? null, x.mountTarget, x.metaid]), [[disk, 'directory', '/', RECORDED_ID], [join(d, 'nothing'), null, null, null]]);
  t.deepEqual(f.csid, { id: 2, metaid: RECORDED_ID });
  t.is(f.refusedBy, NEW_ID);
  t.is(f.config.stat, null);
  t.is(f.dataDir?.type, 'directory');
});

test('chunkserver gather: a disk stat cannot read is an error naming it (not "absent": an XFS that shut down gives EIO)', (t) => {
  const d = tmp(t);
  writeFileSync(join(d, 'file'), 'x');
  const bad = join(d, 'file', 'disk'); // stat fails with ENOTDIR here, as it fails with EIO on a shut-down XFS
  const p = moosefsChunkserver.validate({ masterHost: '10.3.1.100', disks: [bad], dataPath: join(d, 'data') });
  const stubs: Stubs = { mfschunkserver: [], systemctl: [['show *', fixture('service/running-enabled')]], journalctl: [['*', { stdout: '', exitCode: 0 }]] };
  t.throws(() => parseChunkserverGather(runStubbed(chunkserverGatherScript(p), stubs, d), p, 'chunk1'), {
    message: new RegExp(`^moosefs_chunkserver: reading disk ${bad} failed on chunk1: stat: cannot statx? '${bad}': Not a directory`),
  });
});

test("chunk1's recorded id files: chunkserver id 2 (the master's id of 10.3.1.101), the same metadata id in both, upper case", (t) => {
  t.is(CSID_OD.command, `od -A n -t x1 -v -- ${RECORDED_DATA}/chunkserverid.mfs`);
  t.is(METAID_OD.command, `od -A n -t x1 -v -- ${RECORDED_DISK}/.metaid`);
  const script = chunkserverGatherScript(chunk()).display;
  t.true(script.includes('od -A n -t x1 -v -- "$1/.metaid"') && script.includes('od -A n -t x1 -v -- "$1"'), 'the gather runs the recorded od');
  const d = tmp(t);
  const p = chunk({ disks: [join(d, 'data_chunk1')], dataPath: join(d, 'mfs') });
  const stubs: Stubs = {
    mfschunkserver: [],
    od: recordedIds(join(d, 'data_chunk1'), join(d, 'mfs')),
    systemctl: [['show *', fixture('service/running-enabled')]],
    findmnt: [['-n -o TARGET -T *', { stdout: '/\n', exitCode: 0 }]],
    journalctl: [['*', { stdout: 'connected to Master\n', exitCode: 0 }]],
  };
  const f = parseChunkserverGather(runStubbed(chunkserverGatherScript(p), stubs, d), p, 'chunk1');
  t.deepEqual(f.csid, { id: 2, metaid: RECORDED_ID }, 'chunkserverid.mfs: 2 bytes of id (0x0002), then the 8 of the metadata id');
  t.is(f.disks[0]?.metaid, RECORDED_ID, '.metaid: the same 8 bytes');
  t.is(f.refusedBy, null);
  const master = parseMfscli(FACTS_CALL.stdout).chunkservers.find((c) => c.host === '10.3.1.101');
  t.is(f.csid?.id ?? null, master?.id ?? null, 'chunk1 (10.3.1.101) is chunkserver 2 for the master, recorded in the same run');
  t.deepEqual(steps(moosefsChunkserver.plan(chunk({ masterMetaid: RECORDED_ID.toLowerCase() }), { ...heldBy(RECORDED_ID), service: unit('moosefs-chunkserver.service', 'active') })), [], 'its own instance: nothing to clear');
});

// ---------------------------------------------------------------- metalogger, cgiserv, client

test('metalogger: from nothing, converged, a new master host reloaded in the same change', (t) => {
  const p = moosefsMetalogger.validate({ masterHost: '10.3.1.100' });
  const nothing = { config: absent('/etc/mfs/mfsmetalogger.cfg'), service: unit('moosefs-metalogger.service', 'inactive', 'disabled'), dataDir: dir() };
  const changes = moosefsMetalogger.plan(p, nothing);
  t.deepEqual(summaries(changes), ['create /etc/mfs/mfsmetalogger.cfg (261 bytes)', 'enable moosefs-metalogger.service (disabled)', 'start moosefs-metalogger.service (inactive)']);
  const done = applied(nothing, changes, { '/etc/mfs/mfsmetalogger.cfg': 'config' });
  t.deepEqual(moosefsMetalogger.plan(p, done), []);
  t.deepEqual(steps(moosefsMetalogger.plan(moosefsMetalogger.validate({ masterHost: '10.3.1.101' }), done)), ['put /etc/mfs/mfsmetalogger.cfg', 'systemctl reload moosefs-metalogger.service']);
  t.throws(() => moosefsMetalogger.plan(moosefsMetalogger.validate({ masterHost: 'm', extra: { HDD_TEST_SPEED: 1 } }), nothing), { message: /^extra\.HDD_TEST_SPEED is not a setting of mfsmetalogger\.cfg/ });
});

test('cgiserv: its defaults file, restarted in the same change when it changes, the url of the page', (t) => {
  const nothing = { host: 'master', defaults: absent('/etc/default/moosefs-cgiserv'), service: unit('moosefs-cgiserv.service', 'active') };
  const p = moosefsCgiserv.validate({ masterHost: '10.3.1.100' });
  const changes = moosefsCgiserv.plan(p, nothing);
  t.deepEqual(steps(changes), ['put /etc/default/moosefs-cgiserv', 'systemctl restart moosefs-cgiserv.service']);
  const done = applied(nothing, changes, { '/etc/default/moosefs-cgiserv': 'defaults' });
  t.deepEqual(moosefsCgiserv.plan(p, done), []);
  t.is(moosefsCgiserv.output?.(p, done).url, 'http://master:9425/mfs.cgi?masterhost=10.3.1.100');
});

const WHERE = '/mnt/mfs';
const MOUNT_UNIT = '/etc/systemd/system/mnt-mfs.mount';
const client = (raw: object = {}) => moosefsClient.validate({ where: WHERE, masterHost: '10.3.1.100', ...raw });
const clientNothing = (): MoosefsClientFacts => ({ unitFile: absent(MOUNT_UNIT), service: { ...unit('mnt-mfs.mount', 'inactive', ''), loadState: 'not-found' }, mounted: null });
function clientConverged(p = client()): MoosefsClientFacts {
  const f = applied(clientNothing(), moosefsClient.plan(p, clientNothing()), { [MOUNT_UNIT]: 'unitFile' });
  return { ...f, mounted: { source: '10.3.1.100:9421', fstype: 'fuse.mfs', options: 'rw,nosuid,nodev,relatime,user_id=0,group_id=0,allow_other' } };
}

test('client from nothing: the mount unit (mfsmount, fuse, _netdev), enabled and mounted', (t) => {
  const changes = moosefsClient.plan(client({ subfolder: '/data', options: ['mfscachemode=AUTO'] }), clientNothing());
  t.deepEqual(summaries(changes), [`create ${MOUNT_UNIT} (486 bytes); daemon-reload`, 'enable mnt-mfs.mount (unknown)', 'start mnt-mfs.mount (inactive) (mount 10.3.1.100:/data on /mnt/mfs)']);
  const text = written(changes, MOUNT_UNIT);
  t.regex(text, /^\[Mount\]\nWhat=mfsmount\nWhere=\/mnt\/mfs\nType=fuse\nOptions=rw,mfsmaster=10\.3\.1\.100,mfsport=9421,mfssubfolder=\/data,_netdev,mfscachemode=AUTO\n$/m);
  t.regex(text, /^\[Install\]\nWantedBy=remote-fs\.target$/m);
  t.regex(text, /^After=network-online\.target$/m);
});

test('client converged; another master mounted there is remounted only with force; a non-FUSE mount is an error; a mount by hand is adopted', (t) => {
  t.deepEqual(moosefsClient.plan(client(), clientConverged()), []);
  const other = moosefsClient.plan(client({ masterHost: '10.3.1.200' }), clientConverged());
  t.deepEqual(summaries(other), [`update ${MOUNT_UNIT} (460 bytes, was 460); daemon-reload`, 'remount /mnt/mfs from 10.3.1.200:9421 (it is mounted from 10.3.1.100:9421, not 10.3.1.200:9421): systemctl restart mnt-mfs.mount']);
  t.is(other[1]?.destructive, '/mnt/mfs has 10.3.1.100:9421 (fuse.mfs) mounted: unmounting it cuts off whoever uses it (their open files fail)');
  const options = moosefsClient.plan(client({ options: ['ro'] }), clientConverged());
  t.truthy(options[1]?.destructive, 'new options take a remount of a FUSE mount');
  t.throws(() => moosefsClient.plan(client(), { ...clientConverged(), mounted: { source: '/dev/sdb1', fstype: 'xfs', options: 'rw' } }), { message: '/mnt/mfs has /dev/sdb1 (xfs) mounted, not MooseFS: unmount it first, or mount MooseFS elsewhere' });
  const byHand = moosefsClient.plan(client(), { ...clientNothing(), mounted: clientConverged().mounted });
  t.deepEqual(summaries(byHand), [`create ${MOUNT_UNIT} (460 bytes); daemon-reload`, 'enable mnt-mfs.mount (unknown)']);
  t.throws(() => moosefsClient.plan(client({ options: ['mfsmaster=x'] }), clientNothing()), { message: /option mfsmaster=x is set by the module/ });
});

// ---------------------------------------------------------------- schemas

test('every MooseFS module: a closed schema, camelCase params, each described; examples valid', (t) => {
  for (const m of [moosefsMaster, moosefsChunkserver, moosefsMetalogger, moosefsCgiserv, moosefsClient, moosefsFacts]) {
    const schema = m.schema as { type?: string; additionalProperties?: unknown; properties?: Record<string, { description?: unknown }> };
    t.is(schema.type, 'object');
    t.is(schema.additionalProperties, false);
    for (const [key, prop] of Object.entries(schema.properties ?? {})) {
      t.regex(key, /^[a-z][a-zA-Z0-9]*$/);
      t.true(typeof prop.description === 'string' && prop.description.length > 10, `${m.name}.${key}`);
    }
    for (const e of m.examples ?? []) t.notThrows(() => m.validate(e.params), `${m.name}: ${e.title}`);
  }
  t.throws(() => moosefsChunkserver.validate({ masterHost: 'm', disks: [] }));
  t.throws(() => moosefsChunkserver.validate({ masterHost: 'm', disks: ['relative'] }));
  t.throws(() => moosefsChunkserver.validate({ masterHost: 'm', disks: ['/mnt/../etc'] }));
  t.throws(() => moosefsChunkserver.validate({ masterHost: 'm', disks: ['/mnt/a b'] }), undefined, 'a blank would split RequiresMountsFor=');
  t.throws(() => moosefsClient.validate({ where: '/mnt/mfs', masterHost: 'fd00::1' }), undefined, 'MooseFS 3.0 speaks IPv4');
  t.throws(() => moosefsChunkserver.validate({ masterHost: 'm', disks: ['/mnt/a'], masterMetaid: 'xyz' }));
  t.throws(() => moosefsChunkserver.validate({ masterHost: 'm', disks: ['/mnt/a'], leaveSpaceDefault: '5 GiB' }));
  t.is(String(moosefsChunkserver.validate({ masterHost: 'm', disks: ['/mnt/a'], authCode: 'cluster-code-1' }).authCode), '***');
});

test('mfscli on the san playbook\'s cluster (recorded on the lab): 3 chunkservers, 2 disks each, every chunk at its goal', (t) => {
  const r = mfscli('cluster-3-chunkservers');
  t.is(r.masterError, null);
  t.deepEqual(r.errors, []);
  t.deepEqual(r.chunkservers.map((c) => `${c.host}:${c.port} ${c.version}`), ['10.3.1.101:9422 3.0.117', '10.3.1.102:9422 3.0.117', '10.3.1.103:9422 3.0.117']);
  t.deepEqual([...new Set(r.disks.map((d) => d.path))].sort(), ['/mnt/data_chunk1/', '/mnt/data_chunk2/']);
  t.is(r.disks.length, 6);
  t.true(r.disks.every((d) => d.status.includes('ok') && (d.total ?? 0) > (d.used ?? 0)));
  t.true(allAtGoal(r));
  t.deepEqual(r.copies, [{ goal: 2, copies: 2, chunks: 1 }]);
});
