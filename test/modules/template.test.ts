import test from 'ava';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runModule } from '../../lib/apply.ts';
import { LocalConnection } from '../../lib/connection/local.ts';
import { secret } from '../../lib/secret.ts';
import { TemplateError, renderSource, renderTemplate, templatePath } from '../../lib/template.ts';
import { renderDiff } from '../../lib/textdiff.ts';
import { template } from '../../modules/template.ts';
import { listTree, makeTmpDir } from '../helpers/tmpdir.ts';

const conn = new LocalConnection();

test('lib: names resolve under templates/ of the root; absolute paths as given', (t) => {
  t.is(templatePath('iscsid', { root: '/proj' }), '/proj/templates/iscsid.hbs');
  t.is(templatePath('sub/a.hbs', { root: '/proj' }), '/proj/templates/sub/a.hbs');
  t.is(templatePath('/abs/x.hbs'), '/abs/x.hbs');
  t.throws(() => templatePath('../etc/passwd', { root: '/proj' }), { instanceOf: TemplateError });
});

test('lib: renders without HTML escaping; a missing variable names the template and the variable', (t) => {
  t.is(renderSource('a={{a}} b={{o.b}} <{{s}}>', { a: 1, o: { b: 'x&y' }, s: '"q"' }).content, 'a=1 b=x&y <"q">');
  t.is(renderSource('{{#if maybe}}yes{{/if}}{{#each list}}[{{this}}]{{/each}}', { list: [1, 2] }).content, '[1][2]');
  const e = t.throws(() => renderSource('line1\nport = {{port}}\n', {}), { instanceOf: TemplateError });
  t.is(e?.message, 'template (inline): variable "port" is not defined (line 2, column 10)');
  t.throws(() => renderSource('{{#if}}', {}), { instanceOf: TemplateError, message: /template \(inline\)/ });
});

test('lib: secrets are revealed in the content and masked in the display', (t) => {
  const r = renderSource('user={{u}} pass={{p}}', { u: 'bob', p: secret('s3cr3t-chap') });
  t.is(r.content, 'user=bob pass=s3cr3t-chap');
  t.is(r.display, 'user=bob pass=***');
});

test('lib: file templates are cached and reloaded when the file changes', async (t) => {
  const root = await makeTmpDir(t);
  await mkdir(join(root, 'templates'));
  const file = join(root, 'templates', 'motd.hbs');
  await writeFile(file, 'hello {{name}}\n');
  t.is(renderTemplate('motd', { name: 'a' }, { root }).content, 'hello a\n');
  t.is(renderTemplate('motd.hbs', { name: 'b' }, { root }).source, file);
  await writeFile(file, 'bye {{name}}!\n');
  await utimes(file, new Date(), new Date(Date.now() + 5000));
  t.is(renderTemplate('motd', { name: 'a' }, { root }).content, 'bye a!\n');
  const e = t.throws(() => renderTemplate('motd', {}, { root }), { instanceOf: TemplateError });
  t.is(e?.message, `template ${file}: variable "name" is not defined (line 1, column 7)`);
  t.throws(() => renderTemplate('missing', {}, { root }), { message: /template not found: .*missing\.hbs/ });
});

test('schema: template or source, not both, not neither', async (t) => {
  t.throws(() => template.validate({ path: '/x' }));
  t.throws(() => template.validate({ path: '/x' }), { message: /template is required/ });
  const both = template.validate({ path: '/x', template: 'a', source: 'b' });
  await t.throwsAsync(template.gather(conn, both, { host: 'h', facts: {} as never }), { message: /not both/ });
  t.deepEqual(template.validate({ path: '/x', source: 'b' }), { path: '/x', source: 'b', vars: {} });
});

test('run: render, converge, check mode changes nothing, diff shows the change with secrets masked', async (t) => {
  const dir = await makeTmpDir(t);
  const tpl = join(dir, 'app.conf.hbs');
  await writeFile(tpl, '# managed\nport = {{port}}\npassword = {{password}}\n{{#each hosts}}host = {{this}}\n{{/each}}');
  const path = join(dir, 'app.conf');
  const params = (port: number) => ({ path, template: tpl, vars: { port, password: secret('tpl-pass-42'), hosts: ['a', 'b'] }, mode: '0600' });
  const empty = await listTree(dir);
  t.true((await runModule(conn, template, params(80), { check: true })).changed);
  t.is(await listTree(dir), empty);
  const first = await runModule(conn, template, params(80));
  t.true(first.changed);
  t.is(await readFile(path, 'utf8'), '# managed\nport = 80\npassword = tpl-pass-42\nhost = a\nhost = b\n');
  t.is(first.output.source, tpl);
  t.false((await runModule(conn, template, params(80))).changed);

  const snapshot = await listTree(dir);
  const dry = await runModule(conn, template, params(8080), { check: true });
  t.is(await listTree(dir), snapshot);
  const diff = renderDiff(dry.changes[0]!.diff!);
  t.regex(diff, /^ # managed\n-port = 80\n\+port = 8080\n password = \*\*\*\n/m);
  t.false(diff.includes('tpl-pass-42'));
  t.true((await runModule(conn, template, params(8080))).changed);
  t.regex(await readFile(path, 'utf8'), /port = 8080/);
});

test('run: a missing variable fails the task before anything is written', async (t) => {
  const dir = await makeTmpDir(t);
  const path = join(dir, 'out');
  await t.throwsAsync(runModule(conn, template, { path, source: 'x={{x}}' }), { instanceOf: TemplateError, message: /variable "x"/ });
  t.is(await listTree(dir), '');
});
