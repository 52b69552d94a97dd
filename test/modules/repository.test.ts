import test from 'ava';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalConnection } from '../../lib/connection/local.ts';
import type { HostFacts } from '../../lib/facts.ts';
import type { Change } from '../../lib/module.ts';
import { kindFor, planRepository, repository, type RepositoryFacts } from '../../modules/repository.ts';
import { contentBytes, crc24, dearmor, keyBytes, layoutOf, renderAptSource, renderYumRepo, type RepositoryParams } from '../../modules/repository-files.ts';
import { downloadKeyCommand, parseRepositoryGather, repositoryGatherCommand } from '../../modules/repository-host.ts';
import { fixture } from '../helpers/fixtures.ts';

const hostFacts = (family: HostFacts['os']['family'], packageManager: HostFacts['packageManager'], prettyName: string = family): HostFacts => ({
  os: { id: family, like: [family], versionId: '', prettyName, family },
  kernel: '',
  arch: 'x86_64',
  uid: 0,
  user: 'root',
  hostname: 'h',
  packageManager,
  systemd: true,
});
const debian = hostFacts('debian', 'apt', 'Debian GNU/Linux 12 (bookworm)');
const rocky = hostFacts('redhat', 'dnf', 'Rocky Linux 9.4');

// Seed 000's MooseFS repository, as MooseFS documents it (verified with the search tool: ppa.moosefs.com's
// moosefs.key, RPM-GPG-KEY-MooseFS, MooseFS-3-el9.repo, and .../moosefs-3/apt/debian/CODENAME CODENAME main).
const moosefs = repository.validate({
  name: 'moosefs',
  apt: { uris: ['http://ppa.moosefs.com/moosefs-3/apt/debian/bookworm'], suites: ['bookworm'], components: ['main'], key: { url: 'https://ppa.moosefs.com/moosefs.key' } },
  yum: { name: 'MooseFS', baseurl: ['http://ppa.moosefs.com/moosefs-3/yum/el9'], gpgkey: { url: 'https://ppa.moosefs.com/RPM-GPG-KEY-MooseFS' } },
});

const summaries = (changes: readonly Change[]) => changes.map((c) => c.summary);
const execs = (changes: readonly Change[]) => changes.flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.display : `put ${s.path}`)));

/** Facts from a gather output recorded by test/fixtures/package/record-*.ts. */
function factsFrom(name: string, p: RepositoryParams, kind: 'apt' | 'yum', manager: RepositoryFacts['manager']): RepositoryFacts {
  const f = fixture(`package/${name}`);
  const layout = layoutOf(p, kind);
  if (f.command !== repositoryGatherCommand(layout).display) throw new Error(`${name} was recorded with another gather command`);
  return { ...parseRepositoryGather(f.stdout, layout), host: 'sandbox', kind, manager };
}

test('the MooseFS source in deb822 form says what the official one-line entry says', (t) => {
  const text = renderAptSource('moosefs', moosefs.apt!, layoutOf(moosefs, 'apt').key!.path);
  t.is(
    text,
    '# Managed by sanbook (repository moosefs): changes here are replaced.\nTypes: deb\nURIs: http://ppa.moosefs.com/moosefs-3/apt/debian/bookworm\nSuites: bookworm\nComponents: main\nSigned-By: /etc/apt/keyrings/moosefs.gpg\n',
  );
  // deb [signed-by=/etc/apt/keyrings/moosefs.gpg] http://ppa.moosefs.com/moosefs-3/apt/debian/bookworm bookworm main
  t.is(layoutOf(moosefs, 'apt').source, '/etc/apt/sources.list.d/moosefs.sources');
});

test('the MooseFS .repo file', (t) => {
  const layout = layoutOf(moosefs, 'yum');
  t.is(layout.source, '/etc/yum.repos.d/moosefs.repo');
  t.is(
    renderYumRepo('moosefs', moosefs.yum!, layout.key!.path),
    '# Managed by sanbook (repository moosefs): changes here are replaced.\n[moosefs]\nname=MooseFS\nbaseurl=http://ppa.moosefs.com/moosefs-3/yum/el9\nenabled=1\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-moosefs\n',
  );
  t.is(
    renderYumRepo('x', { baseurl: ['http://a/$basearch', 'http://b/$basearch'], enabled: false, gpgcheck: false }, null),
    '# Managed by sanbook (repository x): changes here are replaced.\n[x]\nname=x\nbaseurl=http://a/$basearch\n        http://b/$basearch\nenabled=0\ngpgcheck=0\n',
  );
  t.throws(() => renderYumRepo('x', {}, null), { message: /baseurl, mirrorlist or metalink/ });
});

test('deb822 details: several values, architectures, disabled, flat repositories', (t) => {
  const text = renderAptSource('x', { types: ['deb', 'deb-src'], uris: ['http://a', 'http://b'], suites: ['./'], architectures: ['amd64', 'arm64'], enabled: false }, null);
  t.is(text.split('\n').slice(1).join('\n'), 'Types: deb deb-src\nURIs: http://a http://b\nSuites: ./\nArchitectures: amd64 arm64\nEnabled: no\n');
  t.throws(() => renderAptSource('x', { uris: ['http://a'], suites: ['bookworm'] }, null), { message: /repository x: apt.components is required/ });
});

test('key paths: armored content as .asc, a URL or binary content as .gpg, rpm keys in /etc/pki/rpm-gpg', (t) => {
  const armored = readFixtureKey();
  const p = (key: NonNullable<RepositoryParams['apt']>['key']): RepositoryParams => ({ name: 'r', apt: { uris: ['http://a'], suites: ['s'], components: ['main'], ...(key ? { key } : {}) } });
  t.like(layoutOf(p({ content: armored }), 'apt').key, { path: '/etc/apt/keyrings/r.asc', form: 'asc' });
  t.like(layoutOf(p({ url: 'https://k' }), 'apt').key, { path: '/etc/apt/keyrings/r.gpg', form: 'gpg' });
  t.like(layoutOf(p({ content: dearmor(armored, 'k').toString('base64') }), 'apt').key, { path: '/etc/apt/keyrings/r.gpg', form: 'gpg' });
  t.like(layoutOf(p({ content: armored, path: '/usr/share/keyrings/r.gpg' }), 'apt').key, { path: '/usr/share/keyrings/r.gpg', form: 'gpg' });
  t.is(layoutOf(p(undefined), 'apt').key, null);
  t.deepEqual(layoutOf({ name: 'r', state: 'absent' }, 'apt').removeKeys, ['/etc/apt/keyrings/r.asc', '/etc/apt/keyrings/r.gpg']);
  t.deepEqual(layoutOf({ name: 'r', state: 'absent' }, 'yum').removeKeys, ['/etc/pki/rpm-gpg/RPM-GPG-KEY-r']);
});

/** The armored key the apt recording wrote as sanbook-fixture.asc (made by gpg --armor --export). */
function readFixtureKey(): string {
  const p: RepositoryParams = { name: 'sanbook-fixture', apt: { uris: ['file:///tmp/sanbook-record-apt/apt'], suites: ['fixture'], components: ['main'], key: { content: '-----BEGIN PGP PUBLIC KEY BLOCK-----' } } };
  const files = parseRepositoryGather(fixture('package/repository-apt-gather-content').stdout, layoutOf(p, 'apt')).files;
  return files['/etc/apt/keyrings/sanbook-fixture.asc']?.content?.toString('utf8') ?? '';
}

test('dearmor agrees with the host step, which agreed with gpg --dearmor when recorded', (t) => {
  const armored = readFixtureKey();
  t.regex(armored, /^-----BEGIN PGP PUBLIC KEY BLOCK-----\n/);
  const url: RepositoryParams = { name: 'sanbook-fixture', apt: { uris: ['file:///tmp/sanbook-record-apt/apt'], suites: ['fixture'], components: ['main'], key: { url: 'file:///tmp/sanbook-record-apt/fixture.asc' } } };
  const gpg = parseRepositoryGather(fixture('package/repository-apt-gather-url').stdout, layoutOf(url, 'apt')).files['/etc/apt/keyrings/sanbook-fixture.gpg']?.content;
  t.truthy(gpg);
  t.deepEqual(dearmor(armored, 'k'), gpg);
  t.deepEqual(keyBytes('gpg', Buffer.from(armored), 'k'), gpg);
  t.deepEqual(keyBytes('asc', Buffer.from(armored), 'k'), Buffer.from(armored));
  t.deepEqual(keyBytes('gpg', gpg!, 'k'), gpg);
  t.throws(() => keyBytes('asc', gpg!, 'the key'), { message: /the key is a binary key: an .asc keyring must be ASCII-armored/ });
  t.throws(() => keyBytes('rpm', gpg!, 'the key'), { message: /rpm needs an ASCII-armored one/ });
  t.throws(() => keyBytes('gpg', Buffer.from('<html>404</html>'), 'the key'), { message: /not an OpenPGP public key/ });
  t.deepEqual(contentBytes(gpg!.toString('base64'), 'k'), gpg);
  t.throws(() => contentBytes('not a key', 'key.content'), { message: /key.content is neither/ });
  const lines = armored.split('\n');
  const crcLine = lines.findIndex((l) => l.startsWith('='));
  t.is(Buffer.from(lines[crcLine]!.slice(1), 'base64').readUIntBE(0, 3), crc24(gpg!));
  const bad = [...lines];
  bad[crcLine] = '=AAAA';
  t.throws(() => dearmor(bad.join('\n'), 'k'), { message: /CRC-24 checksum does not match/ });
  t.throws(() => dearmor(armored + armored, 'k'), { message: /exactly one armored public key block/ });
  t.deepEqual(dearmor(lines.filter((_, i) => i !== crcLine).join('\n'), 'k'), gpg, 'the checksum line is optional');
});

const aptFixture = (key: NonNullable<RepositoryParams['apt']>['key']): RepositoryParams =>
  repository.validate({ name: 'sanbook-fixture', apt: { uris: ['file:///tmp/sanbook-record-apt/apt'], suites: ['fixture'], components: ['main'], key } });
const urlKey = { url: 'file:///tmp/sanbook-record-apt/fixture.asc' };

test('apt (recorded): a new repository with a URL key is key download, source file, apt-get update of that source', (t) => {
  const p = aptFixture(urlKey);
  const changes = planRepository(p, factsFrom('repository-apt-gather-absent', p, 'apt', 'apt'));
  t.deepEqual(summaries(changes), [
    'download key /etc/apt/keyrings/sanbook-fixture.gpg from file:///tmp/sanbook-record-apt/fixture.asc',
    'create /etc/apt/sources.list.d/sanbook-fixture.sources (212 bytes)',
    'update the apt lists of sanbook-fixture (apt-get update of /etc/apt/sources.list.d/sanbook-fixture.sources only)',
  ]);
  t.is(execs(changes)[1], 'put /etc/apt/sources.list.d/sanbook-fixture.sources');
  t.like(changes[1]?.steps[0], { kind: 'put', mode: 0o644 });
  t.is(execs(changes)[2], fixture('package/apt-update-repo').command, 'the recorded apt-get update is this command');
  t.is(fixture('package/apt-update-repo').exitCode, 0);
  t.regex(fixture('package/apt-update-repo').stdout, /fixture\/main amd64 Packages/);
  t.regex(changes[1]?.diff?.after ?? '', /Signed-By: \/etc\/apt\/keyrings\/sanbook-fixture\.gpg\n$/);
});

test('apt (recorded): converged with the key by URL, by refresh, and as content; absent removes both files', (t) => {
  const url = aptFixture(urlKey);
  const urlFacts = factsFrom('repository-apt-gather-url', url, 'apt', 'apt');
  t.deepEqual(planRepository(url, urlFacts), []);
  const refresh = aptFixture({ ...urlKey, refresh: true });
  const refreshed = factsFrom('repository-apt-gather-refresh', refresh, 'apt', 'apt');
  t.true(refreshed.downloaded !== undefined && 'bytes' in refreshed.downloaded);
  t.deepEqual(planRepository(refresh, refreshed), [], 'the same key downloaded again: nothing to do');
  const content = aptFixture({ content: readFixtureKey() });
  t.deepEqual(planRepository(content, factsFrom('repository-apt-gather-content', content, 'apt', 'apt')), []);
  const absent = repository.validate({ name: 'sanbook-fixture', state: 'absent' });
  t.deepEqual(planRepository(absent, factsFrom('repository-apt-gather-removed', absent, 'apt', 'apt')), []);
  const asc = '/etc/apt/keyrings/sanbook-fixture.asc';
  const toRemove = planRepository(absent, { ...urlFacts, files: { ...urlFacts.files, [asc]: { path: asc, stat: null, content: null, linkTarget: null } } });
  t.deepEqual(execs(toRemove), ['rm -f -- /etc/apt/sources.list.d/sanbook-fixture.sources', 'rm -f -- /etc/apt/keyrings/sanbook-fixture.gpg']);
  t.regex(toRemove[0]?.diff?.before ?? '', /^# Managed by sanbook/);
});

test('apt (recorded): a new key by refresh or content replaces the file exactly; a wrong key fails apt-get update', (t) => {
  const refresh = aptFixture({ ...urlKey, refresh: true });
  const facts = factsFrom('repository-apt-gather-refresh', refresh, 'apt', 'apt');
  t.deepEqual(planRepository(refresh, { ...facts, downloaded: { bytes: Buffer.from(readFixtureKey()) } }), [], 'the same key, armored: dearmored, equal');
  const gpg = facts.files['/etc/apt/keyrings/sanbook-fixture.gpg']!.content!;
  const changed = Buffer.concat([gpg.subarray(0, -1), Buffer.from([(gpg.at(-1) ?? 0) ^ 1])]);
  const changes = planRepository(refresh, { ...facts, downloaded: { bytes: changed } });
  t.deepEqual(summaries(changes), [
    'update key /etc/apt/keyrings/sanbook-fixture.gpg (652 bytes, was 652) from file:///tmp/sanbook-record-apt/fixture.asc',
    'update the apt lists of sanbook-fixture (apt-get update of /etc/apt/sources.list.d/sanbook-fixture.sources only)',
  ]);
  t.deepEqual(changes[0]?.steps[0], { kind: 'put', path: '/etc/apt/keyrings/sanbook-fixture.gpg', content: changed, mode: 0o644 });
  t.throws(() => planRepository(refresh, { ...facts, downloaded: { error: 'curl: (6) Could not resolve host (exit 6)' } }), {
    message: 'repository sanbook-fixture: cannot download the key from file:///tmp/sanbook-record-apt/fixture.asc on sandbox: curl: (6) Could not resolve host (exit 6)',
  });
  const wrong = fixture('package/apt-update-wrong-key');
  t.is(wrong.exitCode, 100, 'APT::Update::Error-Mode=any: without it apt-get update exits 0 and keeps the old lists');
  t.regex(wrong.stderr, /NO_PUBKEY/);
});

test('yum (recorded): mkdir, key download, .repo file, makecache of that repository only; then converged', (t) => {
  const p = repository.validate({
    name: 'sanbook-fixture',
    yum: { name: 'sanbook fixture repository', baseurl: ['file:///tmp/sanbook-record-dnf/repo'], gpgkey: { url: 'file:///tmp/sanbook-record-dnf/RPM-GPG-KEY-sanbook-fixture' } },
  });
  const changes = planRepository(p, factsFrom('repository-yum-gather-absent', p, 'yum', 'dnf'));
  t.deepEqual(summaries(changes), [
    'download key /etc/pki/rpm-gpg/RPM-GPG-KEY-sanbook-fixture from file:///tmp/sanbook-record-dnf/RPM-GPG-KEY-sanbook-fixture',
    'create /etc/yum.repos.d/sanbook-fixture.repo (252 bytes)',
    'update the dnf metadata of sanbook-fixture (makecache of that repository only)',
  ]);
  const commands = execs(changes);
  t.deepEqual(commands.slice(0, 2), ['mkdir -p -m 0755 -- /etc/yum.repos.d', 'mkdir -p -m 0755 -- /etc/pki/rpm-gpg'], 'Debian had neither directory');
  t.is(commands.at(-1), fixture('package/dnf-makecache-repo').command);
  t.is(commands.at(-1), "dnf makecache -q --refresh '--disablerepo=*' --enablerepo=sanbook-fixture");
  const present = factsFrom('repository-yum-gather-present', p, 'yum', 'dnf');
  t.deepEqual(planRepository(p, present), []);
  t.regex(present.files['/etc/pki/rpm-gpg/RPM-GPG-KEY-sanbook-fixture']?.content?.toString('utf8') ?? '', /^-----BEGIN PGP PUBLIC KEY BLOCK-----/, 'rpm gets the armored key');
});

const factsOf = (kind: 'apt' | 'yum', over: Partial<RepositoryFacts> = {}): RepositoryFacts => ({ files: {}, dirs: {}, downloader: 'curl', host: 'h1', kind, manager: kind === 'apt' ? 'apt' : 'dnf', ...over });

test('plan: updateCache false or a disabled repository: no refresh; no downloader: the error names the host', (t) => {
  const apt = layoutOf(moosefs, 'apt');
  const absentFiles = Object.fromEntries([apt.source, apt.key!.path].map((path) => [path, { path, stat: null, content: null, linkTarget: null }]));
  const facts = factsOf('apt', { files: absentFiles, dirs: { '/etc/apt/sources.list.d': true, '/etc/apt/keyrings': true } });
  t.is(planRepository(moosefs, facts).length, 3);
  t.is(planRepository({ ...moosefs, updateCache: false }, facts).length, 2);
  t.is(planRepository({ ...moosefs, apt: { ...moosefs.apt!, enabled: false } }, facts).length, 2);
  t.throws(() => planRepository(moosefs, { ...facts, downloader: null }), {
    message: 'repository moosefs: h1 has neither curl nor wget to download the key from https://ppa.moosefs.com/moosefs.key (install one, or give key.content)',
  });
  t.throws(() => planRepository(moosefs, { ...facts, manager: null }), { message: /repository moosefs: h1 has no apt-get to refresh the lists with/ });
});

test('family: apt on Debian, yum on Red Hat, by package manager otherwise; a missing block names the host', (t) => {
  t.is(kindFor(moosefs, debian, 'h1'), 'apt');
  t.is(kindFor(moosefs, rocky, 'h2'), 'yum');
  t.is(kindFor(moosefs, hostFacts('other', 'dnf'), 'h3'), 'yum');
  t.is(kindFor(moosefs, hostFacts('suse', 'apt'), 'h3'), 'apt');
  t.throws(() => kindFor({ name: 'm', yum: moosefs.yum! }, debian, 'chunk1'), {
    message: 'repository m: chunk1 (Debian GNU/Linux 12 (bookworm)) needs an `apt:` repository, and only `yum:` was given',
  });
  t.throws(() => kindFor({ name: 'm', apt: moosefs.apt! }, rocky, 'sto2'), { message: /sto2 \(Rocky Linux 9.4\) needs an `yum:` repository/ });
  t.throws(() => kindFor(moosefs, hostFacts('arch', 'pacman', 'Arch Linux'), 'a1'), { message: 'repository moosefs: a1 (Arch Linux) has neither apt nor dnf/yum' });
  t.is(kindFor({ name: 'm', state: 'absent' }, rocky, 'sto2'), 'yum', 'absent needs no block');
});

test('schema: names, URLs, one key source, a yum location', (t) => {
  t.throws(() => repository.validate({ name: '../x', apt: moosefs.apt }));
  t.throws(() => repository.validate({ name: 'x', apt: { ...moosefs.apt, uris: ['http://a b'] } }));
  t.throws(() => repository.validate({ name: 'x', apt: { ...moosefs.apt, key: { url: 'https://k', content: 'x' } } }));
  t.throws(() => repository.validate({ name: 'x', apt: { ...moosefs.apt, key: {} } }));
  t.throws(() => repository.validate({ name: 'x', yum: { name: 'n' } }));
  t.throws(() => repository.validate({ name: 'x', yum: { baseurl: ['http://a'], name: 'two\nlines' } }));
  t.like(repository.validate({ name: 'x', yum: { metalink: 'https://m' } }), { state: 'present', updateCache: true, yum: { enabled: true, gpgcheck: true } });
});

test('check mode on this machine: the plan is exact and nothing is written', async (t) => {
  const conn = new LocalConnection();
  const params = repository.validate({ ...moosefs, name: 'sanbook-test-never-written' });
  const facts = await repository.gather(conn, params, { host: 'local', facts: debian });
  const changes = planRepository(params, facts);
  t.deepEqual(summaries(changes).map((s) => s.replace(/\(\d+ bytes\)/, '(N bytes)')), [
    'download key /etc/apt/keyrings/sanbook-test-never-written.gpg from https://ppa.moosefs.com/moosefs.key',
    'create /etc/apt/sources.list.d/sanbook-test-never-written.sources (N bytes)',
    'update the apt lists of sanbook-test-never-written (apt-get update of /etc/apt/sources.list.d/sanbook-test-never-written.sources only)',
  ]);
  t.is(conn.commandCount, 1, 'gather is one round trip');
});

test('the download step on this machine (file:// URLs): dearmors for .gpg, keeps .asc, refuses what is not a key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sanbook-repo-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const conn = new LocalConnection();
  const armored = readFixtureKey();
  await writeFile(join(dir, 'key.asc'), armored);
  await writeFile(join(dir, 'key.bin'), dearmor(armored, 'k'));
  await writeFile(join(dir, 'page.html'), '<html>not found</html>\n');
  const run = (src: string, dest: string, form: 'asc' | 'gpg' | 'rpm') => conn.exec(downloadKeyCommand(`file://${join(dir, src)}`, join(dir, dest), form));
  t.is((await run('key.asc', 'r.gpg', 'gpg')).exitCode, 0);
  t.deepEqual(await readFile(join(dir, 'r.gpg')), dearmor(armored, 'k'));
  t.is((await run('key.bin', 'b.gpg', 'gpg')).exitCode, 0);
  t.deepEqual(await readFile(join(dir, 'b.gpg')), dearmor(armored, 'k'));
  t.is((await run('key.asc', 'r.asc', 'asc')).exitCode, 0);
  t.is(await readFile(join(dir, 'r.asc'), 'utf8'), armored);
  const binary = await run('key.bin', 'x.asc', 'asc');
  t.is(binary.exitCode, 1);
  t.regex(binary.stderr, /is a binary key: an .asc keyring must be ASCII-armored/);
  t.regex((await run('key.bin', 'RPM-GPG-KEY-x', 'rpm')).stderr, /rpm needs an ASCII-armored one/);
  t.regex((await run('page.html', 'p.gpg', 'gpg')).stderr, /is not an OpenPGP public key/);
  t.regex((await run('missing', 'm.gpg', 'gpg')).stderr, /cannot download file:/);
  const left = (await conn.exec(downloadKeyCommand('file:///nonexistent', join(dir, 'z.gpg'), 'gpg'))).exitCode;
  t.is(left, 1);
  t.deepEqual((await readdir(dir)).sort(), ['b.gpg', 'key.asc', 'key.bin', 'page.html', 'r.asc', 'r.gpg'], 'no temp file is left behind');
});

test('gather with refresh on this machine: the key is downloaded into the facts, compared, and replaced by put', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sanbook-repo-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const armored = readFixtureKey();
  await writeFile(join(dir, 'key.asc'), armored);
  const params = repository.validate({ name: 'sanbook-test-never-written', apt: { ...moosefs.apt, key: { url: `file://${dir}/key.asc`, path: `${dir}/k.gpg`, refresh: true } } });
  const conn = new LocalConnection();
  const facts = await repository.gather(conn, params, { host: 'local', facts: debian });
  t.deepEqual(facts.downloaded, { bytes: Buffer.from(armored) });
  t.true(facts.dirs[dir]);
  const [key] = planRepository(params, facts);
  t.is(key?.summary, `create key ${dir}/k.gpg (652 bytes) from file://${dir}/key.asc`);
  const failed = await repository.gather(conn, repository.validate({ ...params, apt: { ...params.apt!, key: { url: `file://${dir}/nope`, path: `${dir}/k.gpg`, refresh: true } } }), { host: 'local', facts: debian });
  const error = failed.downloaded && 'error' in failed.downloaded ? failed.downloaded.error : '';
  t.regex(error, /^curl: \(37\) .*\/nope \(exit 37\)$/, 'what curl said, and its exit code');
});
