import test from 'ava';
import { readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runModule } from '../../lib/apply.ts';
import { LocalConnection } from '../../lib/connection/local.ts';
import { secret } from '../../lib/secret.ts';
import { diffText, renderDiff } from '../../lib/textdiff.ts';
import { copy, parseFileContent, planContent, readFileCommand, type FileContentFacts } from '../../modules/copy.ts';
import type { Stat } from '../../modules/file.ts';
import { listTree, makeTmpDir } from '../helpers/tmpdir.ts';

const conn = new LocalConnection();
const fileStat = (mode = 0o644, size = 4): Stat => ({ type: 'file', mode, uid: 0, gid: 0, owner: 'root', group: 'root', size });
const absent: FileContentFacts = { path: '/etc/x', stat: null, content: null, linkTarget: null };
const holding = (text: string | Buffer, mode = 0o644): FileContentFacts => {
  const content = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return { path: '/etc/x', stat: fileStat(mode, content.length), content, linkTarget: null };
};

const cases: { name: string; params: Parameters<typeof copy.plan>[0]; facts: FileContentFacts; expect?: string[]; throws?: RegExp }[] = [
  { name: 'missing file', params: { path: '/etc/x', content: 'a\n' }, facts: absent, expect: ['create /etc/x (2 bytes)'] },
  { name: 'converged', params: { path: '/etc/x', content: 'a\n', mode: '0644' }, facts: holding('a\n'), expect: [] },
  { name: 'content differs', params: { path: '/etc/x', content: 'b\n' }, facts: holding('a\n'), expect: ['update /etc/x (2 bytes, was 2)'] },
  { name: 'trailing newline matters', params: { path: '/etc/x', content: 'a' }, facts: holding('a\n'), expect: ['update /etc/x (1 bytes, was 2)'] },
  { name: 'bytes that are not UTF-8 differ', params: { path: '/etc/x', content: '\u00ff' }, facts: holding(Buffer.from([0xff])), expect: ['update /etc/x (2 bytes, was 1)'] },
  { name: 'only the mode differs', params: { path: '/etc/x', content: 'a\n', mode: '0600' }, facts: holding('a\n'), expect: ['set mode of /etc/x to 0600 (was 0644)'] },
  { name: 'a link is there', params: { path: '/etc/x', content: 'a' }, facts: { ...absent, linkTarget: '/etc/y' }, throws: /symbolic link to \/etc\/y/ },
  { name: 'a directory is there', params: { path: '/etc/x', content: 'a' }, facts: { ...absent, stat: { ...fileStat(), type: 'directory' } }, throws: /not a regular file/ },
];

for (const c of cases) {
  test(`plan: ${c.name}`, (t) => {
    const params = copy.validate(c.params);
    if (c.throws) {
      t.throws(() => copy.plan(params, c.facts), { message: c.throws });
      return;
    }
    const changes = copy.plan(params, c.facts);
    t.deepEqual(changes.map((x) => x.summary), c.expect);
    t.true(changes.every((x) => !x.action && x.destructive === undefined));
  });
}

test('plan: the diff shows before/after text, the write carries mode and owner', (t) => {
  const [change] = planContent({ path: '/etc/x', content: Buffer.from('a\nc\n'), mode: '0600', owner: 'www' }, holding('a\nb\n'));
  t.deepEqual(change?.diff, { label: '/etc/x', before: 'a\nb\n', after: 'a\nc\n' });
  t.like(change?.steps[0], { kind: 'put', path: '/etc/x', mode: 0o600, owner: 'www' });
  const text = renderDiff(change!.diff!);
  t.regex(text, /^--- \/etc\/x\tbefore\n\+\+\+ \/etc\/x\tafter\n@@ -1,2 \+1,2 @@\n a\n-b\n\+c\n$/);
  t.is(renderDiff({ label: 'x', before: 'same', after: 'same' }), '');
  t.is(diffText(Buffer.from([0xff, 0x00])), '(binary content, 2 bytes)\n');
  // A side too long to diff in reasonable time is summarised by its size.
  const big = 'x'.repeat(2 << 20);
  const started = performance.now();
  t.is(renderDiff({ label: '/big', before: 'old\n', after: big }), `--- /big\tbefore\n+++ /big\tafter\n(too large to show: 4 characters before, ${2 << 20} after)\n`);
  t.true(performance.now() - started < 1000);
  t.regex(renderDiff({ label: '/big', before: 'old\n', after: big }, { maxLength: 4 << 20 }), /^@@ /m, 'a higher limit diffs it');
});

test('plan: secret content never shows in the diff or the summary', (t) => {
  const params = copy.validate({ path: '/etc/x', content: secret('hunter2-password\n') });
  const [change] = copy.plan(params, holding('old-password\n'));
  const shown = JSON.stringify(change);
  t.false(shown.includes('hunter2'));
  t.false(shown.includes('old-password'));
  t.deepEqual(change?.diff, { label: '/etc/x', before: '(secret content, 13 bytes)\n', after: '(secret content, 17 bytes)\n' });
  t.is(change?.steps[0]?.kind === 'put' ? Buffer.from(change.steps[0].content).toString() : '', 'hunter2-password\n');
});

test('gather reads bytes exactly (no decoding), and says what is at the path', async (t) => {
  const dir = await makeTmpDir(t);
  const bytes = Buffer.from([0x61, 0xff, 0x00, 0x0a, 0x0a]);
  await writeFile(join(dir, 'bin'), bytes);
  const r = await conn.exec(readFileCommand(join(dir, 'bin')));
  const facts = parseFileContent(join(dir, 'bin'), r.stdout);
  t.deepEqual(facts.content, bytes);
  t.is(facts.stat?.size, 5);
  await symlink('bin', join(dir, 'l'));
  t.is(parseFileContent('', (await conn.exec(readFileCommand(join(dir, 'l')))).stdout).linkTarget, 'bin');
  t.is(parseFileContent('', (await conn.exec(readFileCommand(join(dir, 'none')))).stdout).stat, null);
  const empty = join(dir, 'empty');
  await writeFile(empty, '');
  t.deepEqual(parseFileContent(empty, (await conn.exec(readFileCommand(empty))).stdout).content, Buffer.alloc(0));
});

test('run: write, converge, chmod only, check mode changes nothing', async (t) => {
  const dir = await makeTmpDir(t);
  const path = join(dir, 'conf');
  const params = { path, content: 'line 1\nline 2\n', mode: '0640' };
  const before = await listTree(dir);
  const dry = await runModule(conn, copy, params, { check: true });
  t.true(dry.changed);
  t.is(await listTree(dir), before);
  const first = await runModule(conn, copy, params);
  t.true(first.changed);
  t.is(await readFile(path, 'utf8'), 'line 1\nline 2\n');
  t.is((await stat(path)).mode & 0o7777, 0o640);
  t.false((await runModule(conn, copy, params)).changed);

  const changed = { ...params, content: 'line 1\nline two\n' };
  const snapshot = await listTree(dir);
  const dry2 = await runModule(conn, copy, changed, { check: true });
  t.is(await listTree(dir), snapshot);
  t.regex(renderDiff(dry2.changes[0]!.diff!), /-line 2\n\+line two/);
  t.true((await runModule(conn, copy, changed)).changed);
  t.is(await readFile(path, 'utf8'), 'line 1\nline two\n');
  t.is((await stat(path)).mode & 0o7777, 0o640, 'the mode is kept on rewrite');

  const chmod = await runModule(conn, copy, { ...changed, mode: '0600' });
  t.deepEqual(chmod.changes.map((c) => c.summary), [`set mode of ${path} to 0600 (was 0640)`]);
  t.is((await stat(path)).mode & 0o7777, 0o600);
});
