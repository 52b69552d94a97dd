/**
 * Gathering ahead (lib/read-ahead.ts) on real local shells: a converged run reads every readAhead task of a play
 * in one batch per host, and no task ever plans from a read older than a change made anywhere before it.
 */
import test from 'ava';
import fc from 'fast-check';
import { mkdir, mkdtemp, readdir, readFile, lstat, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalConnection } from '../../lib/connection/local.ts';
import type { Connection } from '../../lib/connection/types.ts';
import type { RunEvent } from '../../lib/events.ts';
import { Inventory } from '../../lib/inventory.ts';
import type { Task, TaskContext } from '../../lib/module.ts';
import { play, playbook } from '../../lib/playbook.ts';
import { runPlaybook, type RunOptions } from '../../lib/runner.ts';
import { command, copy, file } from '../../modules/index.ts';

async function setup(hosts: readonly string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'sanbook-ahead-'));
  const data: Record<string, Record<string, unknown>> = {};
  for (const h of hosts) {
    data[h] = { ansible_connection: 'local', root: join(dir, h) };
    await mkdir(join(dir, h));
  }
  const inventory = Inventory.fromObject({ all: { hosts: data } }, 'test-inventory');
  const connect = async (host: { name: string }): Promise<Connection> => new LocalConnection({ host: host.name });
  return { dir, inventory, connect, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const at = (ctx: TaskContext, path: string): string => `${ctx.vars['root'] as string}/${path}`;

async function run(tasks: Task[], s: Awaited<ReturnType<typeof setup>>, more: Partial<RunOptions> = {}) {
  const events: RunEvent[] = [];
  const book = playbook({ name: 'ahead', plays: [play({ name: 'p', hosts: 'all', tasks })] });
  const summary = await runPlaybook(book, {
    inventory: s.inventory,
    connect: s.connect,
    reporters: [{ onEvent: (e) => void events.push(e), done: async () => {} }],
    ...more,
  });
  const ends = events.flatMap((e) => (e.type === 'host:end' ? [e] : []));
  return { summary, ends, events };
}

/** Commands each host's connection had run when its last task ended. */
function commandsPerHost(ends: readonly Extract<RunEvent, { type: 'host:end' }>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of ends) out[e.host] = e.commands;
  return out;
}

const twenty = (): Task[] => [
  ...Array.from({ length: 8 }, (_, i) => file.task(`dir ${i}`, (ctx) => ({ path: at(ctx, `d${i}`), state: 'directory', mode: '0755' }))),
  ...Array.from({ length: 8 }, (_, i) => copy.task(`copy ${i}`, (ctx) => ({ path: at(ctx, `d${i}/f`), content: `${ctx.host} ${i}\n` }))),
  ...Array.from({ length: 4 }, (_, i) =>
    command.task(`once ${i}`, (ctx) => ({ argv: ['touch', at(ctx, `d${i}/done`)], creates: at(ctx, `d${i}/done`) })),
  ),
];

test('a converged re-run gathers all 20 tasks in one round trip per host (plus the host facts)', async (t) => {
  const s = await setup(['a', 'b', 'c']);
  t.teardown(s.cleanup);
  const first = await run(twenty(), s);
  t.is(first.summary.exitCode, 0);
  t.is(first.summary.recap['a']?.changed, 20);
  const again = await run(twenty(), s);
  t.is(again.summary.recap['a']?.changed, 0);
  t.deepEqual(commandsPerHost(again.ends), { a: 2, b: 2, c: 2 });
  const check = await run(twenty(), s, { check: true });
  t.deepEqual(commandsPerHost(check.ends), { a: 2, b: 2, c: 2 });
  const without = await run(twenty(), s, { readAhead: false });
  t.deepEqual(commandsPerHost(without.ends), { a: 21, b: 21, c: 21 }, 'one gather per task without it');
});

test('a change on one host makes every later task on every host gather again', async (t) => {
  const s = await setup(['a', 'b']);
  t.teardown(s.cleanup);
  const shared = join(s.dir, 'shared');
  await mkdir(shared);
  const tasks = [
    file.task('a marker', (ctx) => ({ path: at(ctx, 'marker'), state: 'touch' })),
    // Only a changes, and it removes a file both hosts look at.
    command.task('a removes the shared lock', { argv: ['rm', '-f', join(shared, 'lock')], removes: join(shared, 'lock') }, {
      when: (ctx) => ctx.host === 'a',
    }),
    file.task('b: the shared lock is absent', { path: join(shared, 'lock'), state: 'absent' }, { when: (ctx) => ctx.host === 'b' }),
  ];
  await run(tasks, s); // the markers
  await import('node:fs/promises').then((fs) => fs.writeFile(join(shared, 'lock'), 'x'));
  const r = await run(tasks, s);
  const status = (task: string, host: string) => r.ends.find((e) => e.task === task && e.host === host)?.status;
  t.is(status('a removes the shared lock', 'a'), 'changed');
  // Read ahead (before a's change), b would have seen the lock and removed it again: changed.
  t.is(status('b: the shared lock is absent', 'b'), 'ok');
});

test("params that read an earlier task's result are not read ahead: that task gathers in its turn", async (t) => {
  const s = await setup(['a']);
  t.teardown(s.cleanup);
  const source = copy.task('source', (ctx) => ({ path: at(ctx, 'src'), content: 'v1\n' }));
  const tasks = [
    source,
    copy.task('other', (ctx) => ({ path: at(ctx, 'other'), content: 'o\n' })),
    file.task('link to the source', (ctx) => ({ path: at(ctx, 'link'), state: 'link', src: ctx.result(source)?.path ?? 'missing' })),
  ];
  t.is((await run(tasks, s)).summary.exitCode, 0);
  t.is(await readFile(join(s.dir, 'a', 'link'), 'utf8'), 'v1\n');
  const again = await run(tasks, s);
  t.is(again.summary.recap['a']?.changed, 0);
  t.deepEqual(commandsPerHost(again.ends), { a: 3 }, 'facts, the batch of 2, the link in its turn');
});

// ---- the same statuses, plans and files as without it, whatever the tasks ----------------------------

type Op = { kind: 'dir' | 'absent' | 'touch'; path: number } | { kind: 'copy'; path: number; text: number } | { kind: 'rm'; path: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('dir' as const, 'absent' as const, 'touch' as const), path: fc.nat(3) }),
  fc.record({ kind: fc.constant('copy' as const), path: fc.nat(3), text: fc.nat(2) }),
  fc.record({ kind: fc.constant('rm' as const), path: fc.nat(3) }),
);

function taskOf(op: Op, i: number): Task {
  const p = (ctx: TaskContext): string => at(ctx, `p${op.path}`);
  switch (op.kind) {
    case 'dir':
      return file.task(`${i} dir`, (ctx) => ({ path: p(ctx), state: 'directory' }), { ignoreErrors: true });
    case 'absent':
      return file.task(`${i} absent`, (ctx) => ({ path: p(ctx), state: 'absent' }), { ignoreErrors: true });
    case 'touch':
      return file.task(`${i} touch`, (ctx) => ({ path: p(ctx), state: 'touch' }), { ignoreErrors: true });
    case 'copy':
      return copy.task(`${i} copy`, (ctx) => ({ path: p(ctx), content: `text ${op.text}\n` }), { ignoreErrors: true });
    case 'rm':
      return command.task(`${i} rm`, (ctx) => ({ argv: ['rm', '-rf', p(ctx)], removes: p(ctx) }), { ignoreErrors: true });
  }
}

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const st = await lstat(join(dir, name));
    out.push(st.isDirectory() ? `${name}/` : `${name}=${await readFile(join(dir, name), 'utf8')}`);
  }
  return out;
}

test('with or without gathering ahead: the same statuses, plans and files (property)', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 2, maxLength: 10 }), fc.array(opArb, { maxLength: 4 }), async (ops, seed) => {
      const outcomes = [];
      for (const readAhead of [true, false]) {
        const s = await setup(['a']);
        try {
          if (seed.length > 0) await run(seed.map(taskOf), s, { readAhead: false });
          const view = (r: Awaited<ReturnType<typeof run>>) =>
            r.events.flatMap((e) =>
              e.type === 'host:end'
                ? [`${e.task}: ${e.status} ${e.changes.map((c) => c.summary).join(', ')} ${e.message ?? ''}`.replaceAll(s.dir, 'DIR')]
                : [],
            );
          const check = view(await run(ops.map(taskOf), s, { check: true, readAhead }));
          const real = view(await run(ops.map(taskOf), s, { readAhead }));
          const again = view(await run(ops.map(taskOf), s, { readAhead }));
          outcomes.push({ check, real, again, files: await tree(join(s.dir, 'a')) });
        } finally {
          await s.cleanup();
        }
      }
      t.deepEqual(outcomes[0], outcomes[1]);
    }),
    { numRuns: 20 },
  );
});
