/**
 * failover: the script's quoting, gather + plan in check mode on recorded outputs, and the script itself run by
 * /bin/sh on a plain temp directory: the writer and the read-back for real; `ip`, `multipathd` and `findmnt`
 * replaced by shell functions where a test runs the link phases (nothing touches a link or a device here).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { runModule } from '../lib/apply.ts';
import { quote, type Command } from '../lib/command.ts';
import type { Connection, ExecResult } from '../lib/connection/types.ts';
import { hostFactsCommand, type HostFacts } from '../lib/facts.ts';
import { Inventory } from '../lib/inventory.ts';
import { runPlaybook } from '../lib/runner.ts';
import { figureLines, failoverPlaybook } from '../playbooks/failover.ts';
import {
  ALL_PHASES,
  failover,
  failoverCommand,
  failoverPaths,
  failoverScript,
  gatherScript,
  LOCAL_PHASES,
  parseGather,
  parseIpLink,
  parseResultFile,
  parseWriteLog,
  resultWrites,
  scriptParams,
  summarize,
  writeFigures,
  type FailoverParams,
  type Phase,
  type ScriptOptions,
} from '../modules/failover.ts';
import { fixture, runStubbed, type Stubs } from './helpers/blockdev-stubs.ts';
import { makeTmpDir } from './helpers/tmpdir.ts';

const MOUNT = '/mnt/chunk1'; // where the recorded findmnt saw chunk1's multipath partition mounted
const stubs = (link = 'failover/ip-link-up', maps = 'multipath/maps-json', findmnt = 'findmnt/mounted'): Stubs => ({
  findmnt: [['*', fixture(findmnt)]],
  lsblk: [['*', fixture('lsblk/chunk1-multipath')]],
  multipathd: [['show maps json', fixture(maps)]],
  ip: [['*', fixture(link)]],
});

/** A connection whose commands run under /bin/sh with the tools stubbed (see blockdev-stubs.ts). */
class StubConnection implements Connection {
  readonly host = 'chunk1';
  commandCount = 0;
  constructor(
    readonly stubs: Stubs,
    readonly dir: string,
  ) {}
  async exec(command: Command): Promise<ExecResult> {
    this.commandCount++;
    const stdout = command === hostFactsCommand ? FACTS.stdout : runStubbed(command, this.stubs, this.dir);
    return { exitCode: 0, stdout, stderr: '', stdoutBytes: Buffer.from(stdout), signal: null, timedOut: false, durationMs: 0 };
  }
  async put(): Promise<void> {
    throw new Error('the failover module writes no file through the connection');
  }
  async close(): Promise<void> {}
}

const FACTS = fixture('facts/debian12-container');
const hostFacts = { systemd: true, os: { family: 'debian' } } as unknown as HostFacts;

test('params: defaults, and the schema refuses what would not be safe', (t) => {
  const p = failover.validate({ mount: '/mnt/data_chunk1', interface: 'enp0s9' });
  t.like(p, { downSeconds: 15, leadSeconds: 3, settleTimeoutSeconds: 120, writeIntervalMs: 100, blockBytes: 4096, file: '.sanbook-failover', requirePass: true });
  for (const bad of [
    { mount: 'mnt', interface: 'eth1' },
    { mount: '/mnt/../etc', interface: 'eth1' },
    { mount: '/mnt/x', interface: 'eth1 eth2' },
    { mount: '/mnt/x', interface: 'a/b' },
    { mount: '/mnt/x', interface: 'averyveryverylongname' },
    { mount: '/mnt/x', interface: 'eth1', blockBytes: 1000 },
    { mount: '/mnt/x', interface: 'eth1', downSeconds: 0 },
    { mount: '/mnt/x', interface: 'eth1', file: '../x' },
    { mount: '/mnt/x', interface: 'eth1', verbose: true },
  ]) {
    t.throws(() => failover.validate(bad), undefined, JSON.stringify(bad));
  }
});

test('script: every param is quoted; the step shows one line and has a timeout covering every phase', (t) => {
  const p = scriptParams(failover.validate({ mount: '/mnt/$(touch /tmp/x)', interface: 'e$(reboot)', file: "it's `id`" }));
  const script = failoverScript(p, failoverPaths(p.mount)).script.toString();
  t.true(script.includes(`mount='/mnt/$(touch /tmp/x)'; iface='e$(reboot)'; data='/mnt/$(touch /tmp/x)/it'\\''s \`id\`'`));
  t.true(script.includes(`run=${quote(failoverPaths(p.mount).runDir)}; result=${quote(failoverPaths(p.mount).resultFile)}; require=1`));
  t.false(/[^'"]\$\(touch/.test(script.replace(/'[^']*'/g, "''")), 'no unquoted $(touch');
  const step = failoverCommand(p, failoverPaths(p.mount));
  t.false(step.display.includes('\n'));
  t.true((step.timeoutMs ?? 0) >= (3 + 15 + 120) * 1000);
  t.true(script.endsWith(`${['prepare', 'precheck', 'start_monitor', 'start_writing', 'cut_link', 'settle_paths', 'stop_writing', 'verify_blocks', 'report'].join('\n')}\n`));
});

test('check mode: one gather round trip, one action planned with the script, nothing run', async (t) => {
  const dir = await makeTmpDir(t);
  const conn = new StubConnection(stubs(), dir);
  const r = await runModule(conn, failover, { mount: MOUNT, interface: 'eth0' }, { check: true, facts: hostFacts });
  t.true(r.changed);
  t.is(conn.commandCount, 1);
  t.deepEqual(r.log, []);
  t.is(r.changes.length, 1);
  const change = r.changes[0];
  t.is(change?.summary, 'cut eth0 for 15 s while writing to /mnt/chunk1, then wait for every path to be active (at most 120 s; /mnt/chunk1 is on mpathb)');
  t.true(change?.action);
  t.is(change?.destructive, undefined);
  t.like(r.output, { host: 'chunk1', mount: MOUNT, source: '/dev/mapper/mpathb-part1', map: 'mpathb', result: null, summary: null });
  t.deepEqual(r.output.paths, [{ name: 'mpathb', active: 2, total: 2 }]);
});

test('playbook: check mode on the chunks group plans the test on each host; a host without failover_interface is bad input', async (t) => {
  const dir = await makeTmpDir(t);
  const inventory = (vars: Record<string, unknown>) =>
    Inventory.fromObject({ all: { children: { chunks: { hosts: { chunk1: { ansible_host: '10.3.1.101', ...vars } } } } } }, 'test');
  const { book, outputs } = failoverPlaybook();
  const conns: StubConnection[] = [];
  const connect = async (): Promise<Connection> => {
    const c = new StubConnection(stubs(), dir);
    conns.push(c);
    return c;
  };
  const summary = await runPlaybook(book, { inventory: inventory({ failover_interface: 'eth0', failover_mount: MOUNT }), check: true, connect });
  t.is(summary.exitCode, 0);
  t.like(summary.recap['chunk1'], { changed: 1, failed: 0 });
  t.is(conns[0]?.commandCount, 2); // host facts + the module's gather
  t.like(outputs.get('chunk1'), { mount: MOUNT, interface: 'eth0', map: 'mpathb', result: null });
  t.deepEqual(figureLines(outputs, true), [
    'FAILOVER last results (check mode: nothing ran now)',
    '  chunk1: no result yet (/var/lib/sanbook/failover/last-mnt-chunk1.txt)',
  ]);
  await t.throwsAsync(runPlaybook(book, { inventory: inventory({}), check: true, connect }), { message: /failover_interface/ });
});

test('gather: clear errors for no mount, no interface; the plan says when the script will refuse', async (t) => {
  const dir = await makeTmpDir(t);
  const p: FailoverParams = failover.validate({ mount: MOUNT, interface: 'enp0s9' });
  const gather = (s: Stubs) => parseGather(runStubbed(gatherScript(p), s, dir), p, 'chunk1');
  t.throws(() => gather(stubs('failover/ip-link-up', 'multipath/maps-json', 'findmnt/not-mounted')), { message: 'nothing is mounted at /mnt/chunk1 on chunk1' });
  t.throws(() => gather(stubs('failover/ip-link-missing')), { message: 'no network interface enp0s9 on chunk1: Device "enp0s9" does not exist.' });
  t.regex(failover.plan(p, gather(stubs('failover/ip-link-down')))[0]?.summary ?? '', /the script will refuse to start: enp0s9 is down$/);
  t.regex(failover.plan(p, gather(stubs('failover/ip-link-up', 'multipath/maps-json-one-path-failed')))[0]?.summary ?? '', /refuse to start: only 1 of 2 paths are active$/);
  t.like(parseIpLink(fixture('failover/ip-link-up').stdout), { name: 'eth0', up: true, carrier: true, state: 'UP' });
  t.like(parseIpLink(fixture('failover/ip-link-down').stdout), { name: 'ifb0', up: false, carrier: false, state: 'DOWN' });
});

test('no interface: the gather reads no link, the plan and the step say nothing is cut; the schema still refuses a bad name', async (t) => {
  const dir = await makeTmpDir(t);
  const p: FailoverParams = failover.validate({ mount: MOUNT, downSeconds: 300, settleTimeoutSeconds: 900 });
  t.false(gatherScript(p).display.includes('ip -o link'));
  const facts = parseGather(runStubbed(gatherScript(p), stubs('failover/ip-link-missing'), dir), p, 'chunk1');
  t.is(facts.link, null);
  const [change] = failover.plan(p, facts);
  t.is(change?.summary, 'write to /mnt/chunk1, cut nothing: wait up to 300 s for a path to fail by another cause, then wait for every path to be active (at most 900 s; /mnt/chunk1 is on mpathb)');
  const step = change?.steps[0];
  t.regex(step?.kind === 'exec' ? step.command.display : '', /; after 3 s cut nothing, wait at most 300 s for a path to fail; wait at most 900 s for every path/);
  t.is(failover.output?.(p, facts).interface, null);
  t.throws(() => failover.validate({ mount: MOUNT, interface: 'eth1; reboot' }), { message: /interface/ });
});

// ---------------------------------------------------------------- the script, run here

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a script with /bin/sh in its own process group (as `timeout` runs it on a host); `prelude` defines stubs. */
function runSh(script: Command, cwd: string, prelude = '', onStart?: (pid: number) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `${prelude}\n${script.script.toString()}`], { cwd, detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    if (child.pid !== undefined) onStart?.(child.pid);
  });
}

interface Local {
  readonly dir: string;
  readonly mount: string;
  readonly result: string;
  readonly params: FailoverParams;
  run(phases: readonly Phase[], prelude?: string, onStart?: (pid: number) => void): Promise<Run>;
  read(): ReturnType<typeof parseResultFile>;
}

async function local(t: Parameters<typeof makeTmpDir>[0], over: Partial<FailoverParams> = {}, mountName = 'mnt'): Promise<Local> {
  const dir = await makeTmpDir(t, 'sanbook-failover-');
  const mount = join(dir, mountName);
  mkdirSync(mount);
  const result = join(dir, 'results', 'last.txt');
  // A key given as undefined is left out (interface: undefined is the test without a link cut).
  const raw = Object.fromEntries(Object.entries({ mount, interface: 'eth1', leadSeconds: 1, downSeconds: 1, settleTimeoutSeconds: 5, writeIntervalMs: 20, ...over }).filter(([, v]) => v !== undefined));
  const params = failover.validate(raw);
  const options = (phases: readonly Phase[]): ScriptOptions => ({ runDir: join(dir, 'run'), resultFile: result, phases, tailSeconds: 0 });
  return {
    dir,
    mount,
    result,
    params,
    run: (phases, prelude, onStart) => runSh(failoverScript(scriptParams(params), failoverPaths(mount), options(phases)), dir, prelude, onStart),
    read: () => parseResultFile(readFileSync(result, 'utf8')),
  };
}

test('local: writer + read-back on a plain file pass; the figures agree with the script verdict; gather reads the result', async (t) => {
  const l = await local(t);
  const r = await l.run(LOCAL_PHASES);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^failover passed: \d+ writes of 4096 bytes/);
  const res = l.read();
  t.true(res.writesAttempted >= 5);
  t.like(res, { writesFailed: 0, writesUnfinished: 0, lostWrites: 0, cutAt: null, recoveryMs: null, settleTimedOut: false, passed: true, writerKilled: false });
  t.is(res.writesCompleted, res.writesAttempted);
  t.is(res.blocksVerified, res.writesAttempted);
  t.true(res.longestGapMs >= res.longestWriteMs);
  t.true(r.stdout.includes(`${res.writesAttempted} writes of 4096 bytes, ${res.writesCompleted} completed, 0 failed, 0 unfinished, 0 lost`));
  t.false(existsSync(join(l.mount, '.sanbook-failover')), 'the data file is removed after the check');
  t.regex(summarize(res), /^passed: eth1 down 1 s under .*: \d+ writes, \d+ completed, 0 failed, 0 unfinished, 0 lost of \d+ read back/);
  // gather after apply: the same figures become the task's output
  const stubDir = join(l.dir, 'stubs');
  mkdirSync(stubDir);
  const p: FailoverParams = { ...l.params, mount: MOUNT };
  const facts = parseGather(runStubbed(gatherScript(p, l.result), stubs(), stubDir), p, 'chunk1');
  t.deepEqual(failover.output?.(p, facts).result, res);
});

test('local: a block damaged between the write and the read-back is a lost write, and the task fails with the figures', async (t) => {
  const l = await local(t);
  t.is((await l.run(['prepare', 'write', 'stop'])).code, 0);
  const bs = 4096;
  const fd = openSync(join(l.mount, '.sanbook-failover'), 'r+');
  writeSync(fd, Buffer.from('garbage!'), 0, 8, 2 * bs + 10);
  closeSync(fd);
  const r = await l.run(['verify', 'report']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^failover FAILED: \d+ writes of 4096 bytes, \d+ completed, 0 failed, 0 unfinished, 1 lost; longest write \d+ ms; no link cut \(details: .*last\.txt\)\n$/);
  const res = l.read();
  t.like(res, { lostWrites: 1, writesFailed: 0, passed: false });
  t.deepEqual(res.lost, [{ seq: 3, block: 2, found: 'sanbook-fagarbage!lock 3' }]);
});

test('local: requirePass false reports a failure without failing; failed writes are counted with dd\'s errors', async (t) => {
  const l = await local(t, { requirePass: false, file: 'data' });
  t.is((await l.run(['prepare'])).code, 0);
  mkdirSync(join(l.mount, 'data')); // dd cannot write a directory: every write fails
  const r = await l.run(['write', 'stop', 'verify', 'report']);
  t.is(r.code, 0);
  t.regex(r.stderr, /^failover FAILED: (\d+) writes of 4096 bytes, 0 completed, \1 failed/);
  const res = l.read();
  t.like(res, { writesCompleted: 0, blocksVerified: 0, passed: false });
  t.is(res.writesFailed, res.writesAttempted);
  t.regex(res.ddErrors[0] ?? '', /^\d+ dd: .*Is a directory/);
});

test('local: names with shell syntax in them are only names when the script runs', async (t) => {
  const l = await local(t, { file: "f'$(touch pwned2)" }, 'm $(touch pwned) `touch pwned3`');
  const r = await l.run(LOCAL_PHASES);
  t.is(r.code, 0, r.stderr);
  for (const f of ['pwned', 'pwned2', 'pwned3']) t.false(existsSync(join(l.dir, f)), f);
  t.like(l.read(), { mount: l.mount, file: join(l.mount, "f'$(touch pwned2)"), passed: true });
});

test('local: an existing file that this test did not write is never overwritten', async (t) => {
  const l = await local(t, { file: 'precious' });
  writeFileSync(join(l.mount, 'precious'), 'user data\n');
  const r = await l.run(LOCAL_PHASES);
  t.is(r.code, 1);
  t.regex(r.stderr, /precious exists and is not a file this test left: choose another file name\n$/);
  t.is(readFileSync(join(l.mount, 'precious'), 'utf8'), 'user data\n');
  // a file an interrupted run left is taken over
  writeFileSync(join(l.mount, 'precious'), `${'sanbook-failover block 7'.padEnd(4095)}\n`);
  t.is((await l.run(LOCAL_PHASES)).code, 0);
});

test('local: writes wrap around the capped file and each block is checked against its latest write', async (t) => {
  const l = await local(t, { blockBytes: 1048576, writeIntervalMs: 0, leadSeconds: 4 }); // 16 MiB cap: 16 blocks; local phases write for leadSeconds (1 s gave 14-15 writes on a loaded machine)
  const r = await l.run(LOCAL_PHASES);
  t.is(r.code, 0, r.stderr);
  const res = l.read();
  t.true(res.writesAttempted > 16, `${res.writesAttempted} writes`);
  t.like(res, { blocksVerified: 16, lostWrites: 0, passed: true });
});

// ---------------------------------------------------------------- every phase, with ip, multipathd and findmnt stubbed

const MAPS_OK = fixture('multipath/maps-json').stdout;
const MAPS_FAILED = fixture('multipath/maps-json-one-path-failed').stdout;

/** Stubs: `ip` logs its arguments; multipathd answers one path failed while the link is down (or forever). */
function linkStubs(dir: string, neverBack = false): string {
  writeFileSync(join(dir, 'ok.json'), MAPS_OK);
  writeFileSync(join(dir, 'failed.json'), MAPS_FAILED);
  writeFileSync(join(dir, 'link.txt'), fixture('failover/ip-link-up').stdout);
  const log = quote(join(dir, 'ip.log'));
  const failedWhen = neverBack ? `grep -q down ${log} 2>/dev/null` : `tail -n 1 ${log} 2>/dev/null | grep -q down`;
  return [
    `ip() { printf '%s\\n' "$*" >> ${log}; case "$*" in '-o link show'*) cat ${quote(join(dir, 'link.txt'))};; esac; }`,
    `multipathd() { if ${failedWhen}; then cat ${quote(join(dir, 'failed.json'))}; else cat ${quote(join(dir, 'ok.json'))}; fi; }`,
    'findmnt() { return 0; }',
  ].join('\n');
}

test('all phases (tools stubbed): the link goes down then up, paths are polled back, the figures have the cut', async (t) => {
  const l = await local(t, { downSeconds: 2 });
  const r = await l.run(ALL_PHASES, linkStubs(l.dir));
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readFileSync(join(l.dir, 'ip.log'), 'utf8').split('\n'), ['-o link show dev eth1', 'link set dev eth1 down', 'link set dev eth1 up', '']);
  const res = l.read();
  t.like(res, { passed: true, settleTimedOut: false, lowestActivePaths: 1, lostWrites: 0 });
  t.deepEqual(res.pathsBefore, [{ name: 'mpathb', active: 2, total: 2 }]);
  t.deepEqual(res.pathsAfter, [{ name: 'mpathb', active: 2, total: 2 }]);
  t.true((res.restoredAt ?? 0) - (res.cutAt ?? 0) >= 2000);
  t.true(res.recoveryMs !== null && res.recoveryMs < 2000);
  t.true(res.pathFailedAfterMs !== null && res.pathFailedAfterMs <= 2000);
  t.regex(r.stdout, /every path active \d+ ms after the link came back/);
});

test('all phases (tools stubbed): paths that do not come back fail the test, the link is up again', async (t) => {
  const l = await local(t, { settleTimeoutSeconds: 1 });
  const r = await l.run(ALL_PHASES, linkStubs(l.dir, true));
  t.is(r.code, 1);
  t.regex(r.stderr, /^failover FAILED: .*; paths not all active within 1 s of the link coming back/);
  t.like(l.read(), { settleTimedOut: true, recoveryMs: null, passed: false });
  t.deepEqual(l.read().pathsAfter, [{ name: 'mpathb', active: 1, total: 2 }]);
  t.regex(readFileSync(join(l.dir, 'ip.log'), 'utf8'), /down\nlink set dev eth1 up\n$/);
});

/** Stubs for a fault made elsewhere: multipathd shows a failed path while the file "fault" exists; ip logs. */
function externalStubs(dir: string): string {
  writeFileSync(join(dir, 'ok.json'), MAPS_OK);
  writeFileSync(join(dir, 'failed.json'), MAPS_FAILED);
  return [
    `ip() { printf '%s\\n' "$*" >> ${quote(join(dir, 'ip.log'))}; }`,
    `multipathd() { if [ -e ${quote(join(dir, 'fault'))} ]; then cat ${quote(join(dir, 'failed.json'))}; else cat ${quote(join(dir, 'ok.json'))}; fi; }`,
    'findmnt() { return 0; }',
  ].join('\n');
}

test('all phases, no interface (tools stubbed): a path failed by another cause is waited for, then its return; recovery counts from the failure', async (t) => {
  const l = await local(t, { interface: undefined, downSeconds: 20, settleTimeoutSeconds: 20 });
  const fault = join(l.dir, 'fault');
  const run = l.run(ALL_PHASES, externalStubs(l.dir));
  await new Promise((r) => setTimeout(r, 2500)); // lead 1 s, then the fault for 2 s
  writeFileSync(fault, '');
  await new Promise((r) => setTimeout(r, 2000));
  rmSync(fault);
  const r = await run;
  t.is(r.code, 0, r.stderr);
  t.false(existsSync(join(l.dir, 'ip.log')), 'ip was run: something was cut');
  const res = l.read();
  t.like(res, { interface: '', passed: true, noFault: false, settleTimedOut: false, restoredAt: null, lostWrites: 0, lowestActivePaths: 1 });
  t.true(res.cutAt !== null && res.cutAt - res.startedAt >= 1000, 'the failure was seen after the lead');
  t.true(res.recoveryMs !== null && res.recoveryMs >= 1000 && res.recoveryMs < 5000, `recovery ${res.recoveryMs} ms`);
  t.regex(r.stdout, /every path active \d+ ms after the first failed path was seen$/m);
  t.regex(summarize(res), /^passed: a fault made elsewhere \(nothing cut\) under .*; paths active again \d+ ms after the first failed path; /);
});

test('all phases, no interface (tools stubbed): a fault that never comes fails the test, the writes still checked', async (t) => {
  const l = await local(t, { interface: undefined, downSeconds: 2 });
  const r = await l.run(ALL_PHASES, externalStubs(l.dir));
  t.is(r.code, 1);
  t.regex(r.stderr, /^failover FAILED: .* 0 lost; .*; no path failed within 2 s \(nothing was cut here: the fault did not come\)/);
  const res = l.read();
  t.like(res, { passed: false, noFault: true, cutAt: null, recoveryMs: null, lostWrites: 0, writesFailed: 0 });
  t.regex(summarize(res), /^FAILED: a fault made elsewhere .*; no path failed within 2 s: the fault did not come; /);
});

test('all phases (tools stubbed): the script killed while the link is down brings it back up and leaves no writer', async (t) => {
  const l = await local(t, { downSeconds: 30 });
  const log = join(l.dir, 'ip.log');
  let pid = 0;
  const run = l.run(ALL_PHASES, linkStubs(l.dir), (p) => (pid = p));
  while (!(existsSync(log) && readFileSync(log, 'utf8').includes('down'))) await new Promise((r) => setTimeout(r, 100));
  const writer = Number(readFileSync(join(l.dir, 'run', 'writer.pid'), 'utf8'));
  process.kill(-pid, 'SIGTERM'); // what `timeout` does to the command's process group
  const r = await run;
  t.is(r.code, 143);
  t.regex(readFileSync(log, 'utf8'), /link set dev eth1 down\nlink set dev eth1 up\n$/);
  t.throws(() => process.kill(writer, 0), { code: 'ESRCH' });
  t.false(existsSync(l.result), 'no result from a run cut short');
});

test('write figures: failed, unfinished, the longest write and the longest time without a completed write', (t) => {
  const ms = (n: number) => String(1_700_000_000_000_000_000n + BigInt(n) * 1_000_000n);
  const log = [
    `1 0 ${ms(0)} ${ms(10)} 0`,
    `2 1 ${ms(20)} ${ms(3020)} 0`, // stalled 3 s during the failover
    `3 2 ${ms(3030)} ${ms(3040)} 1`, // an I/O error
    `4 3 ${ms(3050)} `, // in flight when the writer was killed
  ];
  const w = parseWriteLog(log);
  t.deepEqual(w[3], { seq: 4, block: 3, startNs: BigInt(ms(3050)), endNs: null, exitCode: null });
  t.deepEqual(writeFigures(w, BigInt(ms(9000))), {
    writesAttempted: 4,
    writesCompleted: 2,
    writesFailed: 1,
    writesUnfinished: 1,
    longestWriteMs: 3000,
    longestGapMs: 5980,
  });
  t.throws(() => parseWriteLog(['1 0 x 2 0']), { message: /not a time/ });
});

test('the result file of a real run on the lab without an interface (sto1 rebooted under the writes) parses into its figures', (t) => {
  const r = parseResultFile(fixture('failover/result-lab-reboot').stdout);
  t.is(resultWrites(fixture('failover/result-lab-reboot').stdout).length, r.writesAttempted);
  t.like(r, { interface: '', passed: true, noFault: false, settleTimedOut: false, restoredAt: null, lostWrites: 0, writesFailed: 0, writesUnfinished: 0 });
  t.is(r.blocksVerified, r.writesCompleted);
  // Both paths of data_chunk1 (sto1's LUN) failed; data_chunk2's (sto2) stayed.
  t.is(r.lowestActivePaths, 2);
  if (r.cutAt === null || r.settledAt === null) return t.fail('the fault and the return are recorded');
  t.is(r.recoveryMs, r.settledAt - r.cutAt);
  // The reboot took minutes under emulation; one write was queued by multipath (no_path_retry) all that time.
  t.true(r.recoveryMs !== null && r.recoveryMs > 120_000, String(r.recoveryMs));
  t.true(r.longestWriteMs > 120_000, String(r.longestWriteMs));
  t.regex(summarize(r), /^passed: a fault made elsewhere \(nothing cut\) under \/mnt\/data_chunk1: (\d+) writes, \1 completed, 0 failed, 0 unfinished, 0 lost of \1 read back; .*; paths active again \d+ ms after the first failed path; /);
});

test('the result file of a real run on the lab (chunk1, eth2 cut 15 s) parses into its figures', (t) => {
  const r = parseResultFile(fixture('failover/result-lab').stdout);
  t.is(r.mount, '/mnt/data_chunk1');
  t.is(r.interface, 'eth2');
  t.is(r.downSeconds, 15);
  t.true(r.passed);
  t.is(r.lostWrites, 0);
  t.is(r.writesFailed, 0);
  t.is(r.writesCompleted, r.writesAttempted);
  t.is(r.blocksVerified, r.writesCompleted);
  // The recorded poll saw 4 of 4 paths, then 2 while eth2 was down, then 3, then 4 again.
  t.is(r.lowestActivePaths, 2);
  if (r.cutAt === null || r.restoredAt === null || r.settledAt === null) return t.fail('the cut is recorded');
  t.true(r.restoredAt - r.cutAt >= 15_000 && r.restoredAt - r.cutAt < 17_000);
  t.is(r.recoveryMs, r.settledAt - r.restoredAt);
  // The writes stalled while the path was failing over: about the cut's length (noop 5 s + 5 s + recovery_tmo 5 s).
  t.true(r.longestWriteMs > 10_000, String(r.longestWriteMs));
  t.deepEqual(r.pathsAfter?.map((m) => `${m.name} ${m.active}/${m.total}`).sort(), ['data_chunk1 2/2', 'data_chunk2 2/2']);
  t.regex(summarize(r), /^passed: eth2 down 15 s under \/mnt\/data_chunk1: (\d+) writes, \1 completed, 0 failed, 0 unfinished, 0 lost/);
});
