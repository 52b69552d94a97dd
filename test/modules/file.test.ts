import test from 'ava';
import { lstat, mkdir, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DestructiveChangeError, runModule } from '../../lib/apply.ts';
import { LocalConnection } from '../../lib/connection/local.ts';
import { file, fileGatherCommand, parseFileFacts, parseMode, planFile, type FileFacts, type FileParams, type Stat } from '../../modules/file.ts';
import { listTree, makeTmpDir } from '../helpers/tmpdir.ts';

const conn = new LocalConnection();

function st(type: Stat['type'], mode = 0o644, owner = 'root', group = 'root'): Stat {
  return { type, mode, uid: owner === 'root' ? 0 : 1000, gid: group === 'root' ? 0 : 1000, owner, group, size: 10 };
}

const absent: FileFacts = { path: '/x', lstat: null, stat: null, linkTarget: null, entries: null, kib: null };
const at = (s: Stat, extra: Partial<FileFacts> = {}): FileFacts => ({ ...absent, lstat: s, stat: s, ...extra });
const link = (target: string, dest: Stat | null): FileFacts => ({ ...absent, lstat: st('link', 0o777), stat: dest, linkTarget: target });

interface PlanCase {
  name: string;
  params: FileParams;
  facts: FileFacts;
  expect?: string[];
  destructive?: RegExp;
  throws?: RegExp;
}

const cases: PlanCase[] = [
  { name: 'directory: missing', params: { path: '/x', state: 'directory', mode: '0750' }, facts: absent, expect: ['create directory /x'] },
  { name: 'directory: converged', params: { path: '/x', state: 'directory', mode: '0755' }, facts: at(st('directory', 0o755)), expect: [] },
  { name: 'directory: mode', params: { path: '/x', state: 'directory', mode: '0755' }, facts: at(st('directory', 0o700)), expect: ['set mode of /x to 0755 (was 0700)'] },
  { name: 'directory: 3-digit mode equal', params: { path: '/x', state: 'directory', mode: '755' }, facts: at(st('directory', 0o755)), expect: [] },
  { name: 'directory: setgid mode', params: { path: '/x', state: 'directory', mode: '2775' }, facts: at(st('directory', 0o775)), expect: ['set mode of /x to 2775 (was 0775)'] },
  { name: 'directory: owner', params: { path: '/x', state: 'directory', owner: 'www' }, facts: at(st('directory')), expect: ['set owner of /x to www (was root)'] },
  { name: 'directory: owner+group', params: { path: '/x', state: 'directory', owner: 'www', group: 'www' }, facts: at(st('directory')), expect: ['set owner and group of /x to www:www (was root:root)'] },
  { name: 'directory: group only', params: { path: '/x', state: 'directory', group: 'adm' }, facts: at(st('directory')), expect: ['set group of /x to adm (was root)'] },
  { name: 'directory: numeric owner matches', params: { path: '/x', state: 'directory', owner: '0', group: '0' }, facts: at(st('directory')), expect: [] },
  { name: 'directory: a file is there', params: { path: '/x', state: 'directory' }, facts: at(st('file')), throws: /not a directory/ },
  { name: 'directory: link to a directory', params: { path: '/x', state: 'directory' }, facts: link('/y', st('directory')), expect: [] },
  { name: 'absent: converged', params: { path: '/x', state: 'absent' }, facts: absent, expect: [] },
  { name: 'absent: file', params: { path: '/x', state: 'absent' }, facts: at(st('file')), expect: ['remove file /x'] },
  { name: 'absent: empty directory', params: { path: '/x', state: 'absent' }, facts: at(st('directory'), { entries: 0, kib: 4 }), expect: ['remove directory /x'] },
  {
    name: 'absent: non-empty directory is destructive',
    params: { path: '/x', state: 'absent' },
    facts: at(st('directory'), { entries: 12, kib: 340 }),
    expect: ['remove directory /x'],
    destructive: /holds 12 entries \(340 KiB\)/,
  },
  { name: 'absent: link', params: { path: '/x', state: 'absent' }, facts: link('/y', null), expect: ['remove link /x'] },
  { name: 'file: missing', params: { path: '/x', state: 'file' }, facts: absent, throws: /does not exist/ },
  { name: 'file: converged', params: { path: '/x', state: 'file', mode: '0600' }, facts: at(st('file', 0o600)), expect: [] },
  { name: 'file: mode', params: { path: '/x', state: 'file', mode: '0600' }, facts: at(st('file', 0o644)), expect: ['set mode of /x to 0600 (was 0644)'] },
  { name: 'file: directory there', params: { path: '/x', state: 'file' }, facts: at(st('directory')), throws: /not a regular file/ },
  { name: 'touch: missing', params: { path: '/x', state: 'touch' }, facts: absent, expect: ['create empty file /x'] },
  { name: 'touch: exists', params: { path: '/x', state: 'touch' }, facts: at(st('file')), expect: [] },
  { name: 'link: missing', params: { path: '/x', state: 'link', src: '/y' }, facts: absent, expect: ['link /x -> /y'] },
  { name: 'link: converged (dangling is fine)', params: { path: '/x', state: 'link', src: '/y' }, facts: link('/y', null), expect: [] },
  { name: 'link: other target', params: { path: '/x', state: 'link', src: '/y' }, facts: link('/z', null), expect: ['point link /x to /y (was /z)'] },
  { name: 'link: owner of the link', params: { path: '/x', state: 'link', src: '/y', owner: 'www' }, facts: link('/y', st('file')), expect: ['set owner of /x to www (was root)'] },
  { name: 'link: over a file without force', params: { path: '/x', state: 'link', src: '/y' }, facts: at(st('file')), throws: /set force: true/ },
  { name: 'link: over a file with force', params: { path: '/x', state: 'link', src: '/y', force: true }, facts: at(st('file')), expect: ['replace file /x by a link to /y'] },
  {
    name: 'link: over a non-empty directory with force',
    params: { path: '/x', state: 'link', src: '/y', force: true },
    facts: at(st('directory'), { entries: 3, kib: 12 }),
    expect: ['replace directory /x by a link to /y'],
    destructive: /holds 3 entries/,
  },
  { name: 'link: mode refused', params: { path: '/x', state: 'link', src: '/y', mode: '0644' }, facts: absent, throws: /mode cannot be set/ },
];

for (const c of cases) {
  test(`plan: ${c.name}`, (t) => {
    if (c.throws) {
      t.throws(() => planFile(c.params, c.facts), { message: c.throws });
      return;
    }
    const changes = planFile(c.params, c.facts);
    t.deepEqual(changes.map((x) => x.summary), c.expect);
    t.true(changes.every((x) => !x.action), 'file never plans actions');
    if (c.destructive) t.regex(changes[0]?.destructive ?? '', c.destructive);
    else t.true(changes.every((x) => x.destructive === undefined));
  });
}

test('schema: mode must be octal, link needs src, unknown fields refused', (t) => {
  t.throws(() => file.validate({ path: '/x', state: 'file', mode: 'u+x' }), { message: /mode/ });
  t.throws(() => file.validate({ path: '/x', state: 'file', mode: '0999' }), { message: /mode/ });
  t.throws(() => file.validate({ path: '/x', state: 'link' }), { message: /src/ });
  t.throws(() => file.validate({ path: 'relative', state: 'file' }), { message: /path/ });
  t.throws(() => file.validate({ path: '/x', state: 'file', bogus: 1 }), { message: /bogus/ });
  t.is(parseMode('0755'), 0o755);
  t.is(parseMode('4755'), 0o4755);
});

test('gather parses real stat output, including a link target with a newline and a tab', async (t) => {
  const dir = await makeTmpDir(t);
  const target = join(dir, 'we\nird\tname');
  await writeFile(target, 'hello');
  await symlink(target, join(dir, 'l'));
  const r = await conn.exec(fileGatherCommand(join(dir, 'l'), true));
  t.is(r.exitCode, 0);
  const facts = parseFileFacts(join(dir, 'l'), r.stdout);
  t.is(facts.lstat?.type, 'link');
  t.is(facts.stat?.type, 'file');
  t.is(facts.stat?.size, 5);
  t.is(facts.linkTarget, target);
  const d = await conn.exec(fileGatherCommand(dir, true));
  const dirFacts = parseFileFacts(dir, d.stdout);
  t.is(dirFacts.lstat?.type, 'directory');
  t.is(dirFacts.entries, 2);
  t.true((dirFacts.kib ?? 0) > 0);
  t.is(parseFileFacts('/nope', (await conn.exec(fileGatherCommand(join(dir, 'nope'), false))).stdout).lstat, null);
  // A link that leads nowhere: its lstat and target, no stat.
  await symlink(join(dir, 'missing'), join(dir, 'dangling'));
  const dangling = parseFileFacts('d', (await conn.exec(fileGatherCommand(join(dir, 'dangling'), true))).stdout);
  t.deepEqual([dangling.lstat?.type, dangling.stat, dangling.linkTarget, dangling.entries], ['link', null, join(dir, 'missing'), null]);
  // A link to a directory: the directory is its stat; entries are not counted through a link.
  await symlink(dir, join(dir, 'up'));
  const up = parseFileFacts('u', (await conn.exec(fileGatherCommand(join(dir, 'up'), true))).stdout);
  t.deepEqual([up.lstat?.type, up.stat?.type, up.entries], ['link', 'directory', null]);
  // Not a link: the stat is the lstat, read once.
  const plain = parseFileFacts('t', (await conn.exec(fileGatherCommand(target, false))).stdout);
  t.deepEqual(plain.stat, plain.lstat);
  t.is(plain.stat?.size, 5);
});

test('run: directory with mode converges; check mode changes nothing', async (t) => {
  const dir = await makeTmpDir(t);
  const path = join(dir, 'a/b/c');
  const params = { path, state: 'directory', mode: '0750' };
  const before = await listTree(dir);
  const dry = await runModule(conn, file, params, { check: true });
  t.true(dry.changed);
  t.deepEqual(dry.log, []);
  t.is(await listTree(dir), before);
  const first = await runModule(conn, file, params);
  t.true(first.changed);
  t.is((await stat(path)).mode & 0o7777, 0o750);
  const second = await runModule(conn, file, params);
  t.false(second.changed);
  const chmod = await runModule(conn, file, { ...params, mode: '0700' });
  t.deepEqual(chmod.changes.map((c) => c.summary), [`set mode of ${path} to 0700 (was 0750)`]);
  t.is((await stat(path)).mode & 0o7777, 0o700);
});

test('run: link, touch, and absent refusing a non-empty directory without force', async (t) => {
  const dir = await makeTmpDir(t);
  const l = join(dir, 'link');
  t.true((await runModule(conn, file, { path: l, state: 'link', src: 'target' })).changed);
  t.is(await readlink(l), 'target');
  t.false((await runModule(conn, file, { path: l, state: 'link', src: 'target' })).changed);
  t.true((await runModule(conn, file, { path: l, state: 'link', src: 'other' })).changed);
  t.is(await readlink(l), 'other');

  const f = join(dir, 'touched');
  t.true((await runModule(conn, file, { path: f, state: 'touch', mode: '0600' })).changed);
  t.is((await stat(f)).mode & 0o7777, 0o600);
  t.false((await runModule(conn, file, { path: f, state: 'touch', mode: '0600' })).changed);

  const full = join(dir, 'full');
  await mkdir(join(full, 'sub'), { recursive: true });
  await writeFile(join(full, 'sub', 'data'), 'precious');
  const snapshot = await listTree(dir);
  await t.throwsAsync(runModule(conn, file, { path: full, state: 'absent' }), { instanceOf: DestructiveChangeError, message: /holds 2 entries/ });
  t.is(await listTree(dir), snapshot);
  t.true((await runModule(conn, file, { path: full, state: 'absent' }, { force: true })).changed);
  await t.throwsAsync(lstat(full));
  t.false((await runModule(conn, file, { path: full, state: 'absent' })).changed);
});
