/**
 * The runner's semantics on real local processes: every "host" is a LocalConnection working in its own
 * temp directory, so order, handlers, failures, results and check mode are observed on real files.
 */
import test from 'ava';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalConnection } from '../../lib/connection/local.ts';
import { ConnectionError, type Connection } from '../../lib/connection/types.ts';
import type { RunEvent } from '../../lib/events.ts';
import { Inventory } from '../../lib/inventory.ts';
import { play, playbook } from '../../lib/playbook.ts';
import { runPlaybook } from '../../lib/runner.ts';
import { JsonReporter } from '../../lib/report/json.ts';
import { UserError } from '../../lib/errors.ts';
import { Secret } from '../../lib/secret.ts';
import { lineModule } from '../helpers/line-module.ts';

async function setup(hosts: string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'sanbook-runner-'));
  const data: Record<string, Record<string, unknown>> = {};
  for (const h of hosts) data[h] = { ansible_connection: 'local', root: join(dir, h) };
  const inventory = Inventory.fromObject({ all: { hosts: data, children: { odd: { hosts: { [hosts[0] as string]: null } } } } }, 'test-inventory');
  const { mkdir } = await import('node:fs/promises');
  for (const h of hosts) await mkdir(join(dir, h));
  const opened: string[] = [];
  const events: RunEvent[] = [];
  const connect = async (host: { name: string }): Promise<Connection> => {
    opened.push(host.name);
    if (host.name.startsWith('down')) throw new ConnectionError(host.name, `cannot connect to ${host.name}: connection refused`);
    return new LocalConnection({ host: host.name });
  };
  const reporter = { onEvent: (e: RunEvent) => void events.push(e), done: async () => {} };
  return { dir, inventory, connect, opened, events, reporters: [reporter], cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const root = (ctx: { vars: Readonly<Record<string, unknown>> }): string => ctx.vars['root'] as string;

test('linear: every host finishes a task before any host starts the next', async (t) => {
  const s = await setup(['h1', 'h2', 'h3']);
  t.teardown(s.cleanup);
  const log = join(s.dir, 'order.log');
  const book = playbook({
    name: 'order',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [1, 2, 3].map((n) =>
          lineModule.task(`task ${n}`, (ctx) => ({ path: `${root(ctx)}/f`, line: `t${n}`, log: `${log}.${n}` })),
        ),
      }),
    ],
  });
  const r = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, reporters: s.reporters, forks: 3 });
  t.is(r.exitCode, 0);
  const times = async (n: number) => (await readFile(`${log}.${n}`, 'utf8')).trim().split('\n').map(BigInt);
  const [t1, t2, t3] = [await times(1), await times(2), await times(3)];
  t.is(t1.length, 3);
  t.true(t1.every((a) => t2.every((b) => a < b)), 'task 2 started before task 1 ended on every host');
  t.true(t2.every((a) => t3.every((b) => a < b)));
  for (const h of ['h1', 'h2', 'h3']) t.is(await readFile(join(s.dir, h, 'f'), 'utf8'), 't1\nt2\nt3\n');
  t.deepEqual(r.recap['h1'], { ok: 3, changed: 3, failed: 0, skipped: 0, unreachable: 0, ignored: 0 });
  // One connection per host for the whole run.
  t.deepEqual([...s.opened].sort(), ['h1', 'h2', 'h3']);
});

test('second run changes nothing; check mode on a fresh host reports the plan and writes nothing', async (t) => {
  const s = await setup(['a', 'b']);
  t.teardown(s.cleanup);
  const book = playbook({
    name: 'idem',
    plays: [play({ name: 'p', hosts: 'all', tasks: [lineModule.task('line', (ctx) => ({ path: `${root(ctx)}/f`, line: 'x' }))] })],
  });
  const check = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, check: true });
  t.is(check.recap['a']?.changed, 1);
  t.deepEqual(await readdir(join(s.dir, 'a')), [], 'check mode wrote nothing');
  const first = await runPlaybook(book, { inventory: s.inventory, connect: s.connect });
  t.is(first.recap['a']?.changed, 1);
  const second = await runPlaybook(book, { inventory: s.inventory, connect: s.connect });
  t.is(second.recap['a']?.changed, 0);
  t.is(second.recap['b']?.ok, 1);
});

test('handlers run once at the end of the play, only on hosts whose notifying task changed', async (t) => {
  const s = await setup(['a', 'b']);
  t.teardown(s.cleanup);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(s.dir, 'b', 'f'), 'x\n'); // b is already converged for the first task
  const book = playbook({
    name: 'handlers',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [
          lineModule.task('first', (ctx) => ({ path: `${root(ctx)}/f`, line: 'x' }), { notify: 'restart' }),
          lineModule.task('second', (ctx) => ({ path: `${root(ctx)}/f`, line: 'y' }), { notify: ['restart'] }),
        ],
        handlers: [lineModule.task('restart', (ctx) => ({ path: `${root(ctx)}/restarts`, line: 'restarted' }))],
      }),
    ],
  });
  const r = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, reporters: s.reporters });
  t.is(r.exitCode, 0);
  t.is(await readFile(join(s.dir, 'a', 'restarts'), 'utf8'), 'restarted\n');
  t.is(await readFile(join(s.dir, 'b', 'restarts'), 'utf8'), 'restarted\n'); // b changed in "second"
  const order = s.events.filter((e) => e.type === 'task:start').map((e) => (e.type === 'task:start' ? e.task : ''));
  t.deepEqual(order, ['first', 'second', 'restart']);
  const again = await runPlaybook(book, { inventory: s.inventory, connect: s.connect });
  t.is(again.recap['a']?.changed, 0, 'no change, no handler');
});

test('a failing host stops, the others go on; exit 2 and the recap says where', async (t) => {
  const s = await setup(['good', 'bad']);
  t.teardown(s.cleanup);
  const book = playbook({
    name: 'fail',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [
          // The bad host's path is in a directory that does not exist: the write fails for real.
          lineModule.task('write', (ctx) => ({ path: ctx.host === 'bad' ? `${root(ctx)}/no/such/dir/f` : `${root(ctx)}/f`, line: 'x' })),
          lineModule.task('after', (ctx) => ({ path: `${root(ctx)}/g`, line: 'y' })),
        ],
      }),
      play({ name: 'second play', hosts: 'all', tasks: [lineModule.task('later', (ctx) => ({ path: `${root(ctx)}/h`, line: 'z' }))] }),
    ],
  });
  const r = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, reporters: s.reporters });
  t.is(r.exitCode, 2);
  t.is(r.recap['bad']?.failed, 1);
  t.is(r.recap['bad']?.stoppedAt?.task, 'write');
  t.regex(r.recap['bad']?.stoppedAt?.reason ?? '', /cannot write .*no\/such\/dir\/f/);
  t.is(r.recap['good']?.changed, 3);
  await t.throwsAsync(stat(join(s.dir, 'bad', 'g')));
});

test('an unreachable host is reported, the others finish, exit 4', async (t) => {
  const s = await setup(['up', 'down1']);
  t.teardown(s.cleanup);
  const book = playbook({
    name: 'unreach',
    plays: [play({ name: 'p', hosts: 'all', tasks: [lineModule.task('write', (ctx) => ({ path: `${root(ctx)}/f`, line: 'x' }))] })],
  });
  const r = await runPlaybook(book, { inventory: s.inventory, connect: s.connect });
  t.is(r.exitCode, 4);
  t.is(r.recap['down1']?.unreachable, 1);
  t.regex(r.recap['down1']?.stoppedAt?.reason ?? '', /connection refused/);
  t.is(r.recap['up']?.changed, 1);
});

test('a task reads the results of earlier tasks, on its own host and on others', async (t) => {
  const s = await setup(['a', 'b']);
  t.teardown(s.cleanup);
  const first = lineModule.task('count', (ctx) => ({ path: `${root(ctx)}/f`, line: ctx.host }));
  const book = playbook({
    name: 'results',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [
          first,
          lineModule.task('use', (ctx) => ({
            path: `${root(ctx)}/seen`,
            line: `mine=${ctx.result(first)?.lines} a=${ctx.result(first, 'a')?.lines} hosts=${ctx.hosts().join(',')}`,
          })),
        ],
      }),
    ],
  });
  t.is((await runPlaybook(book, { inventory: s.inventory, connect: s.connect })).exitCode, 0);
  t.is(await readFile(join(s.dir, 'b', 'seen'), 'utf8'), 'mine=1 a=1 hosts=a,b\n');
});

test('when, tags and limit select what runs', async (t) => {
  const s = await setup(['a', 'b']);
  t.teardown(s.cleanup);
  const book = playbook({
    name: 'select',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [
          lineModule.task('only a', (ctx) => ({ path: `${root(ctx)}/w`, line: 'x' }), { when: (ctx) => ctx.host === 'a' }),
          lineModule.task('tagged', (ctx) => ({ path: `${root(ctx)}/t`, line: 'x' }), { tags: ['conf'] }),
        ],
      }),
    ],
  });
  const r = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, tags: ['nothing-has-this'] });
  t.is(r.recap['a']?.changed, 0);
  const r2 = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, limit: 'b' });
  t.deepEqual(Object.keys(r2.recap), ['b']);
  t.is(r2.recap['b']?.skipped, 1);
  t.is(r2.recap['b']?.changed, 1);
  await t.throwsAsync(stat(join(s.dir, 'a', 't')));
});

test('a play tagged never runs only when one of its tags is asked for by name, and its hosts are not reached otherwise', async (t) => {
  const s = await setup(['a', 'b']);
  t.teardown(s.cleanup);
  const reached = new Set<string>();
  const connect: typeof s.connect = (host) => {
    reached.add(host.name);
    return s.connect(host);
  };
  const book = playbook({
    name: 'never',
    plays: [
      play({ name: 'build', hosts: 'a', tasks: [lineModule.task('on a', (ctx) => ({ path: `${root(ctx)}/built`, line: 'x' }))] }),
      play({ name: 'check b', hosts: 'b', tags: ['never', 'verify'], tasks: [lineModule.task('on b', (ctx) => ({ path: `${root(ctx)}/checked`, line: 'x' }))] }),
    ],
  });
  const plain = await runPlaybook(book, { inventory: s.inventory, connect });
  t.is(plain.exitCode, 0);
  t.deepEqual([...reached], ['a']);
  await t.throwsAsync(stat(join(s.dir, 'b', 'checked')));
  const all = await runPlaybook(book, { inventory: s.inventory, connect, tags: ['all'] });
  t.is(all.exitCode, 0);
  await t.throwsAsync(stat(join(s.dir, 'b', 'checked')));
  const asked = await runPlaybook(book, { inventory: s.inventory, connect, tags: ['verify'] });
  t.is(asked.recap['b']?.changed, 1);
  t.is(await readFile(join(s.dir, 'b', 'checked'), 'utf8'), 'x\n');
});

test('a module that does not converge fails the task as a module bug', async (t) => {
  const s = await setup(['a']);
  t.teardown(s.cleanup);
  const book = playbook({
    name: 'bug',
    plays: [play({ name: 'p', hosts: 'all', tasks: [lineModule.task('buggy', (ctx) => ({ path: `${root(ctx)}/f`, line: 'x', buggy: true }))] })],
  });
  const r = await runPlaybook(book, { inventory: s.inventory, connect: s.connect });
  t.is(r.exitCode, 2);
  t.regex(r.recap['a']?.stoppedAt?.reason ?? '', /did not converge.*module bug/);
});

test('destructive changes are refused without force, in check mode too, and run with force', async (t) => {
  const s = await setup(['a']);
  t.teardown(s.cleanup);
  const mk = (force: boolean) =>
    playbook({
      name: 'destroy',
      plays: [
        play({
          name: 'p',
          hosts: 'all',
          tasks: [lineModule.task('rewrite', (ctx) => ({ path: `${root(ctx)}/f`, line: 'x', destructive: true }), { force })],
        }),
      ],
    });
  for (const check of [true, false]) {
    const r = await runPlaybook(mk(false), { inventory: s.inventory, connect: s.connect, check });
    t.is(r.exitCode, 2);
    t.regex(r.recap['a']?.stoppedAt?.reason ?? '', /refused destructive change.*force: true.*will be rewritten/);
  }
  await t.throwsAsync(stat(join(s.dir, 'a', 'f')));
  const forced = await runPlaybook(mk(true), { inventory: s.inventory, connect: s.connect });
  t.is(forced.exitCode, 0);
  t.is(await readFile(join(s.dir, 'a', 'f'), 'utf8'), 'x\n');
});

test('bad params are refused before any host is contacted', async (t) => {
  const s = await setup(['a', 'b']);
  t.teardown(s.cleanup);
  const book = playbook({
    name: 'bad',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [
          lineModule.task('fine', (ctx) => ({ path: `${root(ctx)}/f`, line: 'x' })),
          lineModule.task('broken', (ctx) => ({ path: ctx.host === 'b' ? 'relative/path' : `${root(ctx)}/f`, line: 'x' })),
        ],
      }),
    ],
  });
  const e = await t.throwsAsync(runPlaybook(book, { inventory: s.inventory, connect: s.connect }), { instanceOf: UserError });
  t.regex(e?.message ?? '', /^host b, task "broken" \(line\), field path: must match pattern "\^\/"$/);
  t.deepEqual(s.opened, [], 'no connection was opened');
});

test('an unknown host pattern is bad input', async (t) => {
  const s = await setup(['a']);
  t.teardown(s.cleanup);
  const book = playbook({ name: 'x', plays: [play({ name: 'p', hosts: 'nosuchgroup', tasks: [] })] });
  await t.throwsAsync(runPlaybook(book, { inventory: s.inventory, connect: s.connect }), { instanceOf: UserError });
});

test('secrets never reach the JSON lines, even through diffs and error messages', async (t) => {
  const s = await setup(['a']);
  t.teardown(s.cleanup);
  const pw = 'chap-secret-Zq81';
  let out = '';
  const book = playbook({
    name: 'secret',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [
          lineModule.task('with secret', (ctx) => ({ path: `${root(ctx)}/f`, line: `password = ${pw}`, secret: new Secret(pw) })),
          lineModule.task('fails', (ctx) => ({ path: `${root(ctx)}/nodir/${pw}`, line: pw })),
        ],
      }),
    ],
  });
  const r = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, reporters: [new JsonReporter((x) => (out += x))], diff: true });
  t.is(r.exitCode, 2);
  t.true(out.includes('***'));
  t.false(out.includes(pw), 'the secret leaked into the JSON output');
  t.is(await readFile(join(s.dir, 'a', 'f'), 'utf8'), `password = ${pw}\n`, 'the host still got the real value');
});

test('diffs are computed and reported only with --diff', async (t) => {
  const s = await setup(['a']);
  t.teardown(s.cleanup);
  const book = playbook({ name: 'd', plays: [play({ name: 'p', hosts: 'all', tasks: [lineModule.task('line', (ctx) => ({ path: `${root(ctx)}/f`, line: 'x' }))] })] });
  const planned = async (diff: boolean): Promise<unknown[]> => {
    let out = '';
    await runPlaybook(book, { inventory: s.inventory, connect: s.connect, check: true, diff, reporters: [new JsonReporter((x) => (out += x))] });
    return out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; changes?: unknown[] }).filter((e) => e.type === 'host:plan').flatMap((e) => e.changes ?? []);
  };
  const without = await planned(false);
  t.is(without.length, 1);
  t.false(JSON.stringify(without).includes('"diff"'), 'no diff without --diff');
  t.regex(JSON.stringify(await planned(true)), /"diff":"--- /);
});

test('forks bounds how many hosts work at once', async (t) => {
  const names = ['h1', 'h2', 'h3', 'h4', 'h5'];
  const s = await setup(names);
  t.teardown(s.cleanup);
  let running = 0;
  let peak = 0;
  const book = playbook({
    name: 'forks',
    plays: [play({ name: 'p', hosts: 'all', tasks: [lineModule.task('w', (ctx) => ({ path: `${root(ctx)}/f`, line: 'x' }))] })],
  });
  const reporter = {
    onEvent(e: RunEvent) {
      if (e.type === 'host:start') peak = Math.max(peak, ++running);
      if (e.type === 'host:end') running--;
    },
    done: async () => {},
  };
  await runPlaybook(book, { inventory: s.inventory, connect: s.connect, forks: 2, reporters: [reporter] });
  t.is(peak, 2);
});

test('an interrupted run finishes the running task, starts no other, and exits 130', async (t) => {
  const s = await setup(['a', 'b']);
  t.teardown(s.cleanup);
  const abort = new AbortController();
  const book = playbook({
    name: 'interrupt',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [
          lineModule.task('first', (ctx) => ({ path: `${root(ctx)}/f`, line: 'x' })),
          lineModule.task('second', (ctx) => ({ path: `${root(ctx)}/g`, line: 'y' })),
        ],
      }),
    ],
  });
  const reporter = {
    onEvent(e: RunEvent) {
      if (e.type === 'host:start' && e.task === 'first') abort.abort(); // Ctrl-C while the first task runs
    },
    done: async () => {},
  };
  const r = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, signal: abort.signal, reporters: [reporter] });
  t.is(r.exitCode, 130);
  for (const h of ['a', 'b']) {
    t.is(await readFile(join(s.dir, h, 'f'), 'utf8'), 'x\n', 'the running task finished');
    await t.throwsAsync(stat(join(s.dir, h, 'g')), undefined, 'a task started after the interruption');
  }
});

test('check mode: a task that needs an earlier planned change is "not plannable yet", not a failure', async (t) => {
  const s = await setup(['a']);
  t.teardown(s.cleanup);
  const book = playbook({
    name: 'depends',
    plays: [
      play({
        name: 'p',
        hosts: 'all',
        tasks: [
          lineModule.task('create the file', (ctx) => ({ path: `${root(ctx)}/conf`, line: 'a' })),
          lineModule.task('edit the file', (ctx) => ({ path: `${root(ctx)}/conf`, line: 'b', mustExist: true })),
        ],
      }),
    ],
  });
  let out = '';
  const check = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, check: true, reporters: [new JsonReporter((x) => (out += x))] });
  t.is(check.exitCode, 0);
  t.deepEqual(check.recap['a'], { ok: 1, changed: 1, failed: 0, skipped: 1, unreachable: 0, ignored: 0 });
  t.regex(out, /not plannable before the changes planned above are made \(.*conf does not exist\)/);
  const real = await runPlaybook(book, { inventory: s.inventory, connect: s.connect });
  t.is(real.recap['a']?.changed, 2);
  // Without an earlier planned change, the same failure is a failure in check mode too.
  const alone = playbook({
    name: 'alone',
    plays: [play({ name: 'p', hosts: 'all', tasks: [lineModule.task('edit', (ctx) => ({ path: `${root(ctx)}/other`, line: 'b', mustExist: true }))] })],
  });
  t.is((await runPlaybook(alone, { inventory: s.inventory, connect: s.connect, check: true })).exitCode, 2);
});

test('check mode: params read from an earlier task\'s output that does not exist yet make the task "not plannable yet"', async (t) => {
  const s = await setup(['a']);
  t.teardown(s.cleanup);
  const first = lineModule.task('create the file', (ctx) => ({ path: `${root(ctx)}/made`, line: 'a' }));
  const needsOutput = lineModule.task('use its output', (ctx) => {
    if (!ctx.result(first)?.lines) throw new Error('the file of "create the file" is not there');
    return { path: `${root(ctx)}/made`, line: 'b' };
  });
  const book = playbook({ name: 'outputs', plays: [play({ name: 'p', hosts: 'all', tasks: [first, needsOutput] })] });
  let out = '';
  const check = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, check: true, reporters: [new JsonReporter((x) => (out += x))] });
  t.is(check.exitCode, 0);
  t.regex(out, /not plannable before the changes planned above are made \(the file of \\"create the file\\" is not there\)/);
  const real = await runPlaybook(book, { inventory: s.inventory, connect: s.connect });
  t.is(real.exitCode, 0);
  t.is(real.recap['a']?.changed, 2);
  // Params that throw without reading any result are bad input: refused before any host is contacted.
  const alone = playbook({ name: 'alone', plays: [play({ name: 'p', hosts: 'all', tasks: [lineModule.task('x', () => { throw new Error('no'); })] })] });
  await t.throwsAsync(runPlaybook(alone, { inventory: s.inventory, connect: s.connect, check: true }), { message: /task "x": its params could not be computed: no/ });
});

test('progress: each step is announced just before it runs, not all at once before the first', async (t) => {
  const s = await setup(['h1']);
  t.teardown(s.cleanup);
  const { defineModule, exec } = await import('../../lib/module.ts');
  const { cmd } = await import('../../lib/command.ts');
  const { existsSync } = await import('node:fs');
  const marker = join(s.dir, 'h1', 'first-ran');
  // Two steps in one change: the first creates the marker, the second changes nothing.
  const twoSteps = defineModule<{ path: string }, { exists: boolean }>({
    name: 'two-steps',
    description: 'test module',
    schema: { type: 'object', properties: { path: { type: 'string', description: 'marker' } } },
    async gather(conn, p) {
      return { exists: (await conn.exec(cmd('test', '-e', p.path))).exitCode === 0 };
    },
    plan: (p, f) => (f.exists ? [] : [{ summary: 'two steps', steps: [exec(cmd('touch', p.path)), exec(cmd('true'))] }]),
  });
  const seen: boolean[] = [];
  const reporter = {
    onEvent: (e: RunEvent) => {
      if (e.type === 'host:apply') seen.push(existsSync(marker));
    },
    done: async () => {},
  };
  const book = playbook({ name: 'steps', plays: [play({ name: 'p', hosts: 'all', tasks: [twoSteps.task('two steps', { path: marker })] })] });
  const r = await runPlaybook(book, { inventory: s.inventory, connect: s.connect, reporters: [reporter] });
  t.is(r.exitCode, 0);
  t.deepEqual(seen, [false, true], 'the second step was announced before the first had run');
});

test("the first task of a host may read the host's facts in its params and its condition", async (t) => {
  const s = await setup(['a']);
  t.teardown(s.cleanup);
  const book = playbook({
    name: 'facts first',
    plays: [play({ name: 'p', hosts: 'all', tasks: [lineModule.task('by family', (ctx) => ({ path: `${root(ctx)}/family`, line: ctx.facts.os.family }), { when: (ctx) => ctx.facts.os.family !== 'alpine' })] })],
  });
  const r = await runPlaybook(book, { inventory: s.inventory, connect: s.connect });
  t.is(r.exitCode, 0);
  t.is(r.recap['a']?.changed, 1);
  t.regex(await readFile(join(s.dir, 'a', 'family'), 'utf8'), /^(debian|redhat|arch|suse|other)\n$/);
});
