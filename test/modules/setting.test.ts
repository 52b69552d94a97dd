import test from 'ava';
import fc from 'fast-check';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runModule } from '../../lib/apply.ts';
import { LocalConnection } from '../../lib/connection/local.ts';
import { secret } from '../../lib/secret.ts';
import { renderDiff } from '../../lib/textdiff.ts';
import type { FileContentFacts } from '../../modules/copy.ts';
import { applySettings, readSetting, setting, type SettingFormat } from '../../modules/setting.ts';
import { listTree, makeTmpDir } from '../helpers/tmpdir.ts';

const conn = new LocalConnection();
const ISCSI: SettingFormat = { separator: ' = ', comment: '#' };
const SHELL: SettingFormat = { separator: '=', comment: '#' };

// An excerpt in the layout of open-iscsi's /etc/iscsi/iscsid.conf.
const iscsid = `#
# Open-iSCSI default configuration.
#
# *************
# CHAP Settings
# *************

# To enable CHAP authentication set node.session.auth.authmethod
# to CHAP. The default is None.
#node.session.auth.authmethod = CHAP

# To set a CHAP username and password for initiator
# authentication by the target(s), uncomment the following lines:
#node.session.auth.username = username
#node.session.auth.password = password

# The value is in seconds and the default is 120 seconds.
node.session.timeo.replacement_timeout = 120

node.startup = manual
`;

const apply = (text: string, settings: Record<string, string | null>, format = ISCSI): string =>
  applySettings(text, Object.entries(settings), format).text;

test('iscsid.conf: change in place, touching nothing else', (t) => {
  const out = apply(iscsid, { 'node.session.timeo.replacement_timeout': '15' });
  t.is(out, iscsid.replace('replacement_timeout = 120', 'replacement_timeout = 15'));
  t.is(apply(out, { 'node.session.timeo.replacement_timeout': '15' }), out);
});

test('iscsid.conf: a key present only commented out goes right after its commented line', (t) => {
  const out = apply(iscsid, {
    'node.session.auth.authmethod': 'CHAP',
    'node.session.auth.username': 'initiator',
    'node.session.auth.password': 'pw',
  });
  t.is(
    out,
    iscsid
      .replace('#node.session.auth.authmethod = CHAP\n', '#node.session.auth.authmethod = CHAP\nnode.session.auth.authmethod = CHAP\n')
      .replace('#node.session.auth.username = username\n', '#node.session.auth.username = username\nnode.session.auth.username = initiator\n')
      .replace('#node.session.auth.password = password\n', '#node.session.auth.password = password\nnode.session.auth.password = pw\n'),
  );
});

test('a new key is appended at the end; null removes every active occurrence', (t) => {
  const out = applySettings(iscsid, [['node.session.cmds_max', '128'], ['node.startup', null]], ISCSI);
  t.is(out.text, iscsid.replace('node.startup = manual\n', '') + 'node.session.cmds_max = 128\n');
  t.deepEqual(out.edits, [
    { key: 'node.session.cmds_max', kind: 'add' },
    { key: 'node.startup', kind: 'remove', old: 'manual' },
  ]);
  t.is(apply(iscsid, { 'not.there': null }), iscsid);
});

const table: { name: string; text: string; settings: Record<string, string | null>; format?: SettingFormat; expect: string }[] = [
  { name: 'duplicates: first changed, later removed', text: 'a = 1\nb = 2\na = 3\n', settings: { a: '9' }, expect: 'a = 9\nb = 2\n' },
  { name: 'duplicates: first already right, later removed', text: 'a = 9\nb = 2\n  a=3\n', settings: { a: '9' }, expect: 'a = 9\nb = 2\n' },
  { name: 'the line keeps its own spacing', text: 'a=1\n\tb   =   2\n', settings: { a: '5', b: '6' }, expect: 'a=5\n\tb   =   6\n' },
  { name: 'equal value with other spacing is not a change', text: 'a   =    5   \n', settings: { a: '5' }, expect: 'a   =    5   \n' },
  { name: 'a key that is a prefix of another', text: 'node.session.x = 1\n', settings: { node: 'a', 'node.session': 'b' }, expect: 'node.session.x = 1\nnode = a\nnode.session = b\n' },
  { name: 'dots are not wildcards', text: 'aXb = 1\n', settings: { 'a.b': '2' }, expect: 'aXb = 1\na.b = 2\n' },
  { name: 'empty file', text: '', settings: { k: 'v' }, expect: 'k = v\n' },
  { name: 'no newline at end, changed in place', text: 'a = 1', settings: { a: '2' }, expect: 'a = 2' },
  { name: 'no newline at end, appended', text: 'a = 1', settings: { b: '2' }, expect: 'a = 1\nb = 2\n' },
  { name: 'removing the last line (no newline at end) keeps the line before whole', text: '\nA_B = ', settings: { A_B: null }, expect: '\n' },
  { name: 'removing the only line', text: 'a = 1', settings: { a: null }, expect: '' },
  { name: 'trailing blank lines stay last', text: 'a = 1\n\n\n', settings: { b: '2' }, expect: 'a = 1\nb = 2\n\n\n' },
  { name: 'CRLF lines keep their CR', text: 'a = 1\r\nb = 2\r\n', settings: { a: '5' }, expect: 'a = 5\r\nb = 2\r\n' },
  { name: '## and indented comments count as commented', text: '  ## a = 0\nz = 1\n', settings: { a: '1' }, expect: '  ## a = 0\n  a = 1\nz = 1\n' },
  { name: 'the last commented occurrence is the anchor', text: '#a = 1\nx\n#a = 2\ny\n', settings: { a: '3' }, expect: '#a = 1\nx\n#a = 2\na = 3\ny\n' },
  { name: 'a comment that only mentions the key is not an occurrence', text: '# set a to something\nz = 1\n', settings: { a: '1' }, expect: '# set a to something\nz = 1\na = 1\n' },
  {
    name: 'shell style KEY=value',
    text: '# defaults\n#ISCSID_OPTS="-d 1"\nOTHER="x y"\n',
    settings: { ISCSID_OPTS: '"-d 8"', OTHER: '"z"' },
    format: SHELL,
    expect: '# defaults\n#ISCSID_OPTS="-d 1"\nISCSID_OPTS="-d 8"\nOTHER="z"\n',
  },
  {
    name: 'whitespace separator (sshd_config style)',
    text: '#PermitRootLogin prohibit-password\nPasswordAuthentication yes\n',
    settings: { PermitRootLogin: 'no', PasswordAuthentication: 'no' },
    format: { separator: ' ', comment: '#' },
    expect: '#PermitRootLogin prohibit-password\nPermitRootLogin no\nPasswordAuthentication no\n',
  },
  {
    name: 'ini: only the given section, appended before the blank lines that precede the next section',
    text: 'a = 0\n[main]\na = 1\n\n[other]\na = 2\n',
    settings: { a: '5', b: '6' },
    format: { ...ISCSI, section: 'main' },
    expect: 'a = 0\n[main]\na = 5\nb = 6\n\n[other]\na = 2\n',
  },
  {
    name: 'ini: the last section',
    text: '[main]\na = 1\n\n[other]\na = 2\n',
    settings: { a: '7', c: '8' },
    format: { ...ISCSI, section: 'other' },
    expect: '[main]\na = 1\n\n[other]\na = 7\nc = 8\n',
  },
  {
    name: 'ini: a missing section is appended',
    text: '[main]\na = 1\n',
    settings: { x: 'y' },
    format: { ...ISCSI, section: 'new' },
    expect: '[main]\na = 1\n\n[new]\nx = y\n',
  },
  {
    name: 'ini: no section given means before the first header',
    text: '# top\n[main]\na = 1\n',
    settings: { a: '2' },
    expect: '# top\na = 2\n[main]\na = 1\n',
  },
];

for (const c of table) {
  test(`transform: ${c.name}`, (t) => {
    const format = c.format ?? ISCSI;
    const once = apply(c.text, c.settings, format);
    t.is(once, c.expect);
    t.is(apply(once, c.settings, format), once, 'applying twice changes nothing');
  });
}

test('readSetting reads the first active value in the section', (t) => {
  t.is(readSetting(iscsid, 'node.session.timeo.replacement_timeout', ISCSI), '120');
  t.is(readSetting(iscsid, 'node.session.auth.username', ISCSI), null);
  t.is(readSetting('[s]\na = 1\n[t]\na = 2\n', 'a', { ...ISCSI, section: 't' }), '2');
});

// ---- properties -------------------------------------------------------------------------------------

const KEYS = ['k1', 'k1.x', 'node.session.y', 'A_B'];
const keyArb = fc.constantFrom(...KEYS);
const valueArb = fc.stringMatching(/^[A-Za-z0-9_.\/"-]{0,8}$/);
const formatArb = fc.record({
  separator: fc.constantFrom(' = ', '=', ' ', ': '),
  comment: fc.constantFrom('#', ';'),
  section: fc.option(fc.constantFrom('s1', 's2'), { nil: undefined }),
});
const lineArb = (f: { separator: string; comment: string }) =>
  fc.oneof(
    fc.tuple(keyArb, fc.constantFrom(f.separator, f.separator.trim(), `  ${f.separator}\t`), valueArb).map(([k, s, v]) => `${k}${s}${v}`),
    fc.tuple(keyArb, valueArb).map(([k, v]) => `${f.comment}${k}${f.separator}${v}`),
    fc.constantFrom('[s1]', '[s2]', ' [s1] ', '', '   ', `${f.comment} a comment`),
    fc.string({ maxLength: 20 }).filter((s) => !/[\r\n]/.test(s)),
  );
const caseArb = formatArb.chain((format) =>
  fc.record({
    format: fc.constant(format),
    lines: fc.array(lineArb(format), { maxLength: 25 }),
    finalNewline: fc.boolean(),
    settings: fc.uniqueArray(fc.tuple(keyArb, fc.option(valueArb, { nil: null })), { selector: ([k]) => k, maxLength: 4 }),
  }),
);
const textOf = (lines: string[], nl: boolean): string => lines.join('\n') + (nl && lines.length > 0 ? '\n' : '');
const linesOf = (text: string): string[] => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));

test('property: applying twice gives the same text as applying once', (t) => {
  fc.assert(
    fc.property(caseArb, ({ format, lines, finalNewline, settings }) => {
      const once = applySettings(textOf(lines, finalNewline), settings, format);
      const twice = applySettings(once.text, settings, format);
      return twice.text === once.text && twice.edits.length === 0;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('property: lines that do not mention a key are preserved, in order', (t) => {
  fc.assert(
    fc.property(caseArb, ({ format, lines, finalNewline, settings }) => {
      const mentions = (l: string): boolean => settings.some(([k]) => l.includes(k));
      const text = textOf(lines, finalNewline);
      const out = linesOf(applySettings(text, settings, format).text);
      const kept = linesOf(text).filter((l) => !mentions(l));
      let rest = out.filter((l) => !mentions(l));
      // A missing section is appended as ['', '[name]'] or ['[name]'] at the end.
      if (rest.length > kept.length) rest = rest.slice(0, kept.length);
      return JSON.stringify(rest) === JSON.stringify(kept);
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('property: after applying, every key reads back as asked', (t) => {
  fc.assert(
    fc.property(caseArb, ({ format, lines, finalNewline, settings }) => {
      const out = applySettings(textOf(lines, finalNewline), settings, format).text;
      return settings.every(([k, v]) => readSetting(out, k, format) === (v === null ? null : v.trim()));
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

// ---- plan -------------------------------------------------------------------------------------------

const facts = (text: string | null): FileContentFacts => ({
  path: '/etc/iscsi/iscsid.conf',
  stat: text === null ? null : { type: 'file', mode: 0o600, uid: 0, gid: 0, owner: 'root', group: 'root', size: text.length },
  content: text === null ? null : Buffer.from(text),
  linkTarget: null,
});

test('plan: summary in words, diff of the file, converged case is empty', (t) => {
  const params = setting.validate({ path: '/etc/iscsi/iscsid.conf', settings: { 'node.session.timeo.replacement_timeout': 15, 'node.startup': 'automatic' } });
  const [change, ...rest] = setting.plan(params, facts(iscsid));
  t.is(rest.length, 0);
  t.is(
    change?.summary,
    'update /etc/iscsi/iscsid.conf: set node.session.timeo.replacement_timeout = 15 (was 120); set node.startup = automatic (was manual)',
  );
  t.regex(renderDiff(change!.diff!), /-node\.session\.timeo\.replacement_timeout = 120\n\+node\.session\.timeo\.replacement_timeout = 15\n/);
  const applied = apply(iscsid, { 'node.session.timeo.replacement_timeout': '15', 'node.startup': 'automatic' });
  t.deepEqual(setting.plan(params, facts(applied)), []);
  t.deepEqual(setting.output!(params, facts(applied)), { 'node.session.timeo.replacement_timeout': '15', 'node.startup': 'automatic' });
});

test('plan: secrets are written in clear and never shown', (t) => {
  const params = setting.validate({
    path: '/etc/iscsi/iscsid.conf',
    settings: { 'node.session.auth.authmethod': 'CHAP' },
    secrets: { 'node.session.auth.password': 'chap-secret-123' },
  });
  const before = iscsid + 'node.session.auth.password = old-secret-456\n';
  const [change] = setting.plan(params, facts(before));
  const shown = JSON.stringify({ summary: change?.summary, diff: change?.diff });
  t.false(shown.includes('chap-secret-123'));
  t.false(shown.includes('old-secret-456'));
  t.regex(change?.summary ?? '', /set node\.session\.auth\.password = \*\*\* \(was \*\*\*\)/);
  t.regex(renderDiff(change!.diff!), /-node\.session\.auth\.password = \*\*\*\n\+node\.session\.auth\.password = \*\*\* \(changed\)/);
  const put = change?.steps[0];
  t.true(put?.kind === 'put' && Buffer.from(put.content).toString().includes('node.session.auth.password = chap-secret-123\n'));
});

test('plan: missing file needs create; chmod only when the text is right; bad keys refused', (t) => {
  const p = (extra: object) => setting.validate({ path: '/etc/iscsi/iscsid.conf', settings: { a: '1' }, ...extra });
  t.throws(() => setting.plan(p({}), facts(null)), { message: /does not exist \(set create: true/ });
  t.deepEqual(setting.plan(p({ create: true }), facts(null)).map((c) => c.summary), ['create /etc/iscsi/iscsid.conf: add a = 1']);
  t.deepEqual(setting.plan(p({ mode: '0644' }), facts('a = 1\n')).map((c) => c.summary), ['set mode of /etc/iscsi/iscsid.conf to 0644 (was 0600)']);
  t.throws(() => setting.validate({ path: '/x', settings: { 'bad key': '1' } }));
  t.throws(() => setting.validate({ path: '/x', settings: { a: 'two\nlines' } }));
  t.throws(() => setting.plan(setting.validate({ path: '/x', settings: { 'a:b': '1' }, separator: ': ' }), facts('')), { message: /separator/ });
  t.throws(() => setting.plan(setting.validate({ path: '/x', settings: { a: '1' }, secrets: { a: secret('xyz') } }), facts('')), { message: /both/ });
});

test('run: iscsid.conf converges, check mode changes nothing, bytes that are not UTF-8 survive', async (t) => {
  const dir = await makeTmpDir(t);
  const path = join(dir, 'iscsid.conf');
  const latin1 = Buffer.from('# caf\xe9 (latin-1 byte)\n', 'latin1');
  await writeFile(path, Buffer.concat([latin1, Buffer.from(iscsid)]), { mode: 0o600 });
  const params = {
    path,
    settings: { 'node.session.timeo.replacement_timeout': 15, 'node.startup': 'automatic', 'node.session.auth.authmethod': 'CHAP' },
    secrets: { 'node.session.auth.password': secret('run-secret-789') },
  };
  const before = await listTree(dir);
  const dry = await runModule(conn, setting, params, { check: true });
  t.true(dry.changed);
  t.is(await listTree(dir), before);
  t.truthy(dry.changes[0]?.diff);
  const first = await runModule(conn, setting, params);
  t.true(first.changed);
  const bytes = await readFile(path);
  t.deepEqual(bytes.subarray(0, latin1.length), latin1);
  const text = bytes.subarray(latin1.length).toString('utf8');
  t.is(
    text,
    apply(iscsid, {
      'node.session.timeo.replacement_timeout': '15',
      'node.startup': 'automatic',
      'node.session.auth.authmethod': 'CHAP',
      'node.session.auth.password': 'run-secret-789',
    }),
  );
  t.is((await stat(path)).mode & 0o7777, 0o600, 'the mode of the file is kept');
  t.deepEqual(first.output, { 'node.session.timeo.replacement_timeout': '15', 'node.startup': 'automatic', 'node.session.auth.authmethod': 'CHAP' });
  t.false((await runModule(conn, setting, params)).changed);
});
