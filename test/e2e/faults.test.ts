/**
 * Faults on real sshd hosts (loopback): a host's sshd killed in the middle of a task, the runner interrupted
 * (Ctrl-C once, and twice in the middle of a big write), the controller dying while it writes a file. Each
 * time: the other hosts finish or the run stops as documented, the exit code says what happened, no file on a
 * host is half written (no temp file left, an old file intact), and a re-run converges without doing twice
 * what was done.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunEvent } from '../../lib/events.ts';
import { loadInventory } from '../../lib/inventory.ts';
import { play, playbook } from '../../lib/playbook.ts';
import { runPlaybook } from '../../lib/runner.ts';
import type { TaskContext } from '../../lib/module.ts';
import { command, copy } from '../../modules/index.ts';
import { startLoopbackHosts, type LoopbackHosts } from '../../lab/loopback/hosts.ts';

/** Every file under dir whose name says it is a put's temp file. */
function tempFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.includes('.sanbook.')) out.push(join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

const root = (ctx: TaskContext): string => ctx.vars['root'] as string;

test.serial("a host's sshd killed mid-task: that host is unreachable at that task, the others finish, exit 4; a re-run converges", async (t) => {
  const hosts = await startLoopbackHosts(['f1', 'f2', 'f3']);
  t.teardown(() => hosts.stop());
  const book = playbook({
    name: 'faults',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [
          copy.task('first file', (ctx) => ({ path: `${root(ctx)}/first`, content: 'first\n' })),
          command.task('slow step', (ctx) => ({ argv: ['sh', '-c', 'sleep 2; touch "$1"', 'sh', `${root(ctx)}/slow-done`], creates: `${root(ctx)}/slow-done` })),
          copy.task('last file', (ctx) => ({ path: `${root(ctx)}/last`, content: 'last\n' })),
        ],
      }),
    ],
  });
  const victim = hosts.servers[1];
  if (victim === undefined) throw new Error('no second server');
  const events: RunEvent[] = [];
  let killed: Promise<void> | undefined;
  const reporter = {
    onEvent(e: RunEvent): void {
      events.push(e);
      if (e.type === 'host:start' && e.host === 'f2' && e.task === 'slow step') killed = new Promise((r) => setTimeout(r, 500)).then(() => victim.kill());
    },
    done: async () => {},
  };
  const inventory = await loadInventory(hosts.inventoryFile);
  const first = await runPlaybook(book, { inventory, reporters: [reporter] });
  await killed;
  t.is(first.exitCode, 4);
  t.is(first.recap['f2']?.unreachable, 1);
  const f2end = events.find((e): e is Extract<RunEvent, { type: 'host:end' }> => e.type === 'host:end' && e.host === 'f2' && e.status === 'unreachable');
  t.is(f2end?.task, 'slow step', 'reported at the task it was on');
  for (const h of ['f1', 'f3']) {
    t.deepEqual(first.recap[h], { ok: 3, changed: 3, failed: 0, skipped: 0, unreachable: 0, ignored: 0 }, h);
    t.is(readFileSync(join(hosts.rootOf(h), 'last'), 'utf8'), 'last\n');
  }
  t.false(existsSync(join(hosts.rootOf('f2'), 'last')), 'f2 went no further');
  t.false(existsSync(join(hosts.rootOf('f2'), 'slow-done')), 'the killed command did not finish');

  await victim.restart();
  const changes: Record<string, string[]> = {};
  const again = await runPlaybook(book, {
    inventory,
    reporters: [{ onEvent: (e) => void (e.type === 'host:end' && e.status === 'changed' && (changes[e.host] ??= []).push(e.task)), done: async () => {} }],
  });
  t.is(again.exitCode, 0);
  t.deepEqual(changes, { f2: ['slow step', 'last file'] }, 'only what f2 had not done is done, once');
  t.deepEqual(tempFiles(hosts.dir), []);
});

/** Run the interrupt playbook (test/e2e/playbooks/interrupt.ts) with --json; `onEvent` may signal the child. */
function runInterruptible(
  hosts: LoopbackHosts,
  bigMb: number,
  onEvent: (e: RunEvent, child: ReturnType<typeof spawn>) => void,
): Promise<{ code: number | null; events: RunEvent[]; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/e2e/playbooks/interrupt.ts', '-i', hosts.inventoryFile, '--json'], {
    env: { ...process.env, SANBOOK_TEST_BIG_MB: String(bigMb) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: RunEvent[] = [];
  let stderr = '';
  let rest = '';
  child.stdout.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const e = JSON.parse(line) as RunEvent;
      events.push(e);
      onEvent(e, child);
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, events, stderr })));
}

test.serial('Ctrl-C: the running task finishes on every host, no other starts, the recap is printed, exit 130', async (t) => {
  const hosts = await startLoopbackHosts(['i1', 'i2']);
  t.teardown(() => hosts.stop());
  let sent = false;
  const r = await runInterruptible(hosts, 1, (e, child) => {
    if (!sent && e.type === 'host:start' && e.task === 'a pause') {
      sent = true;
      child.kill('SIGINT');
    }
  });
  t.is(r.code, 130, r.stderr);
  t.regex(r.stderr, /interrupted: finishing the running task/);
  const ended = r.events.filter((e): e is Extract<RunEvent, { type: 'host:end' }> => e.type === 'host:end');
  t.deepEqual(
    ended.filter((e) => e.task === 'a pause').map((e) => [e.host, e.status]).sort(),
    [['i1', 'changed'], ['i2', 'changed']],
    'the running task finished on both hosts',
  );
  t.false(ended.some((e) => e.task === 'big file' || e.task === 'last file'), 'no task started after the interrupt');
  t.true(r.events.some((e) => e.type === 'run:end'), 'the recap');
  for (const h of hosts.names) {
    t.is(readFileSync(join(hosts.rootOf(h), 'first'), 'utf8'), 'first\n');
    t.false(existsSync(join(hosts.rootOf(h), 'big')));
  }
  t.deepEqual(tempFiles(hosts.dir), []);
});

test.serial('Ctrl-C twice in the middle of a 200 MB write: the run stops at once, the old file is intact, no temp file', async (t) => {
  const hosts = await startLoopbackHosts(['w1']);
  t.teardown(() => hosts.stop());
  const big = join(hosts.rootOf('w1'), 'big');
  writeFileSync(big, 'the old content\n');
  let sent = 0;
  const started = Date.now();
  const r = await runInterruptible(hosts, 200, (e, child) => {
    // The step is announced just before the write starts; 200 MB take well over a second to send, so the
    // second Ctrl-C, 0.1 s after the announcement, comes in the middle of the write.
    if (sent === 0 && e.type === 'host:apply' && e.task === 'big file') {
      sent = 1;
      child.kill('SIGINT');
      setTimeout(() => {
        sent = 2;
        child.kill('SIGINT');
      }, 100);
    }
  });
  t.is(sent, 2);
  t.is(r.code, 130, r.stderr);
  t.false(r.events.some((e) => e.type === 'host:end' && e.task === 'big file'), 'the write did not finish before the second Ctrl-C');
  const exited = Date.now();
  // The host's shell sees the end of its input and stops; give it a moment.
  const deadline = Date.now() + 10_000;
  while (tempFiles(hosts.dir).length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
  t.is(readFileSync(big, 'utf8'), 'the old content\n', 'half a file replaced the old one');
  t.deepEqual(tempFiles(hosts.dir), []);
  t.log(`the runner exited ${((exited - started) / 1000).toFixed(1)} s after it started; the host was clean ${((Date.now() - exited) / 1000).toFixed(1)} s later; ${statSync(big).size} bytes in place`);
});

test.serial('a host that freezes mid-command (as a paused VM): unreachable after its keepalives go unanswered, the others finish, exit 4', async (t) => {
  const hosts = await startLoopbackHosts(['p1', 'p2', 'p3']);
  t.teardown(() => hosts.stop());
  // One keepalive a second: three unanswered and the host is unreachable (the default is 15 s).
  const file = join(hosts.dir, 'keepalive.yaml');
  writeFileSync(file, readFileSync(hosts.inventoryFile, 'utf8').replace('  vars:\n', '  vars:\n    keepalive_interval: 1\n'));
  const book = playbook({
    name: 'freeze',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [
          command.task('slow step', (ctx) => ({ argv: ['sh', '-c', 'sleep 2; touch "$1"', 'sh', `${root(ctx)}/slow-done`], creates: `${root(ctx)}/slow-done` })),
          copy.task('last file', (ctx) => ({ path: `${root(ctx)}/last`, content: 'last\n' })),
        ],
      }),
    ],
  });
  const victim = hosts.servers[1];
  if (victim === undefined) throw new Error('no second server');
  let frozenAt = 0;
  let stopped = 0;
  const events: RunEvent[] = [];
  const reporter = {
    onEvent(e: RunEvent): void {
      events.push(e);
      if (e.type === 'host:apply' && e.host === 'p2' && frozenAt === 0) {
        frozenAt = Date.now(); // the command is running half a second later
        void new Promise((res) => setTimeout(res, 500)).then(async () => {
          stopped = await victim.freeze();
        });
      }
    },
    done: async () => {},
  };
  const r = await runPlaybook(book, { inventory: await loadInventory(file), reporters: [reporter] });
  const seconds = (Date.now() - frozenAt) / 1000 - 0.5;
  t.true(stopped >= 3, `froze ${stopped} processes (server, connection, command)`);
  t.is(r.exitCode, 4);
  const end = events.find((e): e is Extract<RunEvent, { type: 'host:end' }> => e.type === 'host:end' && e.host === 'p2');
  t.is(end?.status, 'unreachable');
  t.is(end?.task, 'slow step');
  t.regex(end?.message ?? '', /p2/);
  for (const h of ['p1', 'p3']) t.is(readFileSync(join(hosts.rootOf(h), 'last'), 'utf8'), 'last\n');
  t.true(seconds < 15, `noticed after ${seconds.toFixed(1)} s`);
  t.log(`p2 frozen mid-command: unreachable after ${seconds.toFixed(1)} s (${end?.message ?? ''})`);
  await victim.thaw();
  const again = await runPlaybook(book, { inventory: await loadInventory(file) });
  t.is(again.exitCode, 0);
  t.deepEqual(tempFiles(hosts.dir), []);
});
