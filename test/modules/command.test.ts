import test from 'ava';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StepError, runModule } from '../../lib/apply.ts';
import { LocalConnection } from '../../lib/connection/local.ts';
import { secret } from '../../lib/secret.ts';
import { buildCommand, command, type CommandFacts, type CommandParams } from '../../modules/command.ts';
import { query } from '../../modules/query.ts';
import { listTree, makeTmpDir } from '../helpers/tmpdir.ts';

const conn = new LocalConnection();
const none: CommandFacts = { createsExists: null, removesExists: null };

const cases: { name: string; params: CommandParams; facts: CommandFacts; expect: string[]; action?: boolean }[] = [
  { name: 'no creates/removes: an action', params: { argv: ['echo', 'hi there'] }, facts: none, expect: ["run echo 'hi there'"], action: true },
  { name: 'creates missing', params: { argv: ['make'], creates: '/opt/x' }, facts: { createsExists: false, removesExists: null }, expect: ['run make (/opt/x is missing)'] },
  { name: 'creates present: converged', params: { argv: ['make'], creates: '/opt/x' }, facts: { createsExists: true, removesExists: null }, expect: [] },
  { name: 'removes present', params: { shell: 'rm -f /opt/x', removes: '/opt/x' }, facts: { createsExists: null, removesExists: true }, expect: ['run rm -f /opt/x (/opt/x exists)'] },
  { name: 'removes gone: converged', params: { shell: 'rm -f /opt/x', removes: '/opt/x' }, facts: { createsExists: null, removesExists: false }, expect: [] },
  { name: 'multi-line script summarised by its first line', params: { shell: 'set -e\nmake\nmake install' }, facts: none, expect: ['run set -e ...'], action: true },
  { name: 'chdir is said in words', params: { argv: ['make', 'all'], chdir: '/src/a b' }, facts: none, expect: ['run make all (in /src/a b)'], action: true },
];

for (const c of cases) {
  test(`plan: ${c.name}`, (t) => {
    const changes = command.plan(command.validate(c.params), c.facts);
    t.deepEqual(changes.map((x) => x.summary), c.expect);
    for (const x of changes) t.is(x.action === true, c.action === true);
  });
}

test('buildCommand: argv words are quoted; chdir, stdin and okCodes carried', (t) => {
  const c = buildCommand({ argv: ['printf', '%s\\n', "it's; rm -rf /"], chdir: '/tmp/a dir', stdin: secret('pw-on-stdin'), okCodes: [0, 3] });
  t.is(c.display, `cd -- '/tmp/a dir' || exit 1\nexec printf '%s\\n' 'it'\\''s; rm -rf /'`);
  t.deepEqual(c.okCodes, [0, 3]);
  t.true(c.secretStdin);
  t.throws(() => buildCommand({ argv: ['a'], shell: 'b' }), { message: /not both/ });
  t.throws(() => command.validate({ creates: '/x' }), { message: /argv is required/ });
});

test('run: creates converges; check mode changes nothing', async (t) => {
  const dir = await makeTmpDir(t);
  const marker = join(dir, 'built');
  const params = { argv: ['sh', '-c', 'echo done > "$1"', 'sh', marker], creates: marker };
  const empty = await listTree(dir);
  const dry = await runModule(conn, command, params, { check: true });
  t.true(dry.changed);
  t.is(await listTree(dir), empty);
  const first = await runModule(conn, command, params);
  t.true(first.changed);
  t.is(await readFile(marker, 'utf8'), 'done\n');
  const second = await runModule(conn, command, params);
  t.false(second.changed);
  t.deepEqual(second.log, []);
});

test('run: removes converges; a command that does not do its job fails convergence', async (t) => {
  const dir = await makeTmpDir(t);
  const victim = join(dir, 'old');
  await writeFile(victim, 'x');
  t.true((await runModule(conn, command, { argv: ['rm', '--', victim], removes: victim })).changed);
  await t.throwsAsync(stat(victim));
  t.false((await runModule(conn, command, { argv: ['rm', '--', victim], removes: victim })).changed);
  const never = join(dir, 'never');
  await t.throwsAsync(runModule(conn, command, { argv: ['true'], creates: never }), { message: /did not converge/ });
});

test('run: an action runs every time, in chdir, with stdin; okCodes; failures name the command', async (t) => {
  const dir = await makeTmpDir(t);
  const params = { shell: 'cat >> log; echo "$(pwd)" >> log', chdir: dir, stdin: 'line\n' };
  t.true((await runModule(conn, command, params)).changed);
  const again = await runModule(conn, command, params);
  t.true(again.changed);
  t.true(again.changes[0]?.action);
  t.is(await readFile(join(dir, 'log'), 'utf8'), `line\n${dir}\nline\n${dir}\n`);
  t.true((await runModule(conn, command, { shell: 'exit 3', okCodes: [0, 3] })).changed);
  const e = await t.throwsAsync(runModule(conn, command, { argv: ['sh', '-c', 'echo boom >&2; exit 4'] }), { instanceOf: StepError });
  t.regex(e?.message ?? '', /exited 4: boom/);
});

test('query: output for later tasks, never a change, runs in check mode, fails on a bad exit code', async (t) => {
  const dir = await makeTmpDir(t);
  await writeFile(join(dir, 'f'), 'content\n');
  const r = await runModule(conn, query, { argv: ['cat', '--', join(dir, 'f')] }, { check: true });
  t.false(r.changed);
  t.deepEqual(r.output, { exitCode: 0, stdout: 'content\n', stderr: '' });
  const grep = await runModule(conn, query, { argv: ['grep', '-q', 'absent', join(dir, 'f')], okCodes: [0, 1] });
  t.is(grep.output.exitCode, 1);
  await t.throwsAsync(runModule(conn, query, { shell: 'exit 2' }), { message: /query `exit 2` exited 2/ });
});

test('query: stdout and stderr are kept apart', async (t) => {
  const r = await runModule(conn, query, { shell: 'echo out; echo err >&2' });
  t.deepEqual(r.output, { exitCode: 0, stdout: 'out\n', stderr: 'err\n' });
});
