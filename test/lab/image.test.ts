/**
 * The lab's image recipe and package repository, without building anything: the recipe hash (the cache key)
 * moves exactly when the recipe does, the apt mirror is read from both source formats, the repository index is
 * what apt reads, and the repository server serves files, 404s and refuses paths outside its directory.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { defaultRecipe, parseAptMirror, recipeHash } from '../../lab/image.ts';
import { poolName, repoAnswers, repoAptSource, run, serveRepo, startRepoServer, stopRepoServer, writeRepoIndex } from '../../lab/repo.ts';
import { makeTmpDir } from '../helpers/tmpdir.ts';

test('the recipe hash is stable and ignores the order of package lists', (t) => {
  const r = defaultRecipe();
  t.regex(recipeHash(r), /^[0-9a-f]{16}$/);
  t.is(recipeHash(defaultRecipe()), recipeHash(r));
  t.is(recipeHash({ ...r, storagePackages: [...r.storagePackages].reverse(), imagePackages: [...r.imagePackages].reverse() }), recipeHash(r));
});

test('the recipe hash changes with the package lists, the guest files and the version', (t) => {
  const r = defaultRecipe();
  const base = recipeHash(r);
  const variants = [
    { ...r, storagePackages: [...r.storagePackages, 'lvm2'] },
    { ...r, storagePackages: r.storagePackages.filter((p) => p !== 'tgt') },
    { ...r, imagePackages: [...r.imagePackages, 'vim-tiny'] },
    { ...r, files: r.files.map((f, i) => (i === 0 ? { ...f, content: `${f.content}# changed\n` } : f)) },
    { ...r, files: r.files.map((f, i) => (i === 0 ? { ...f, mode: 0o600 } : f)) },
    { ...r, version: r.version + 1 },
  ];
  const hashes = variants.map(recipeHash);
  for (const h of hashes) t.not(h, base);
  t.is(new Set(hashes).size, hashes.length);
});

test('the guest scripts are valid POSIX sh (dash -n)', async (t) => {
  const scripts = defaultRecipe().files.filter((f) => f.content.startsWith('#!/bin/sh\n'));
  t.true(scripts.length >= 2);
  for (const f of scripts) {
    await t.notThrowsAsync(run(['dash', '-n'], { step: `dash -n ${f.path}`, input: f.content }), f.path);
  }
});

test('the Debian mirror comes from deb822 .sources or one-line .list files, for the wanted suite', (t) => {
  const deb822 = {
    name: 'debian.sources',
    content: [
      'Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n',
      'Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n',
      'Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n',
    ].join('\n'),
  };
  t.is(parseAptMirror([deb822], 'bookworm'), 'http://deb.debian.org/debian');
  const disabled = { name: 'x.sources', content: 'Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n' };
  t.is(parseAptMirror([disabled, deb822], 'bookworm'), 'http://deb.debian.org/debian');
  const list = { name: 'sources.list', content: '# deb http://commented.example/debian bookworm main\ndeb [arch=amd64] http://ftp.fr.debian.org/debian/ bookworm main\n' };
  t.is(parseAptMirror([list], 'bookworm'), 'http://ftp.fr.debian.org/debian/');
  t.is(parseAptMirror([list], 'trixie'), undefined);
});

test('repository files are named as in a Debian pool (no epoch)', (t) => {
  t.is(poolName('targetcli-fb_1%3a2.1.53-1.1_all.deb'), 'targetcli-fb_2.1.53-1.1_all.deb');
  t.is(poolName('tgt_1:1.0.85-1+deb12u1_amd64.deb'), 'tgt_1.0.85-1+deb12u1_amd64.deb');
  t.is(poolName('mdadm_4.2-5_amd64.deb'), 'mdadm_4.2-5_amd64.deb');
});

test('repoAptSource is a flat trusted repository line', (t) => {
  t.is(repoAptSource('http://10.0.2.100'), 'deb [trusted=yes] http://10.0.2.100/ ./');
});

/** A raw GET: the path goes out as written (fetch() would normalize `..` away). */
function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; length: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), length: res.headers['content-length'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the repository server serves files, 404s, and refuses to leave its directory', async (t) => {
  const tmp = await makeTmpDir(t, 'sanbook-repo-');
  const root = join(tmp, 'repo');
  await mkdir(join(root, 'sub'), { recursive: true });
  await writeFile(join(root, 'Packages'), 'Package: x\n');
  await writeFile(join(root, 'sub', 'a.deb'), 'deb bytes');
  await writeFile(join(tmp, 'secret'), 'outside');
  const server = await serveRepo(root);
  t.teardown(() => server.stop());

  const ok = await get(server.port, '/Packages');
  t.is(ok.status, 200);
  t.is(ok.body, 'Package: x\n');
  t.is(ok.length, '11');
  const head = await get(server.port, '/sub/a.deb', 'HEAD');
  t.deepEqual([head.status, head.body, head.length], [200, '', '9']);
  t.is((await get(server.port, '/sub/%61.deb')).body, 'deb bytes');

  t.is((await get(server.port, '/nothing.deb')).status, 404);
  t.is((await get(server.port, '/sub')).status, 404);       // no directory listings
  t.is((await get(server.port, '/')).status, 404);
  for (const path of ['/../secret', '/sub/../../secret', '/..%2fsecret', '/%2e%2e/secret', '/sub%2f..%2f..%2fsecret']) {
    const res = await get(server.port, path);
    t.true(res.status === 403 || res.status === 404, `${path}: ${res.status}`);
    t.false(res.body.includes('outside'), path);
  }
  t.is((await get(server.port, '/Packages', 'DELETE')).status, 405);
});

test('a detached repository server answers, and stops by its pid file', async (t) => {
  const tmp = await makeTmpDir(t, 'sanbook-repo-');
  await writeFile(join(tmp, 'Release'), 'Origin: test\n');
  const pidFile = join(tmp, 'repo.pid');
  const server = await startRepoServer(tmp, { detached: { pidFile } });
  t.teardown(() => stopRepoServer(pidFile));
  t.truthy(server.pid);
  t.is((await readFile(pidFile, 'utf8')).trim(), String(server.pid));
  t.is((await get(server.port, '/Release')).body, 'Origin: test\n');
  await stopRepoServer(pidFile);
  t.false(await repoAnswers(server.port));
  await t.throwsAsync(readFile(pidFile, 'utf8'));
});

test('the repository index lists each .deb with its size and hashes, and a Release covers it', async (t) => {
  const tmp = await makeTmpDir(t, 'sanbook-repo-');
  const repo = join(tmp, 'repo');
  await mkdir(repo);
  await writeRepoIndex(repo);   // an empty repository is valid
  t.is(await readFile(join(repo, 'Packages'), 'utf8'), '');

  const pkg = join(tmp, 'pkg');
  await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
  await writeFile(join(pkg, 'DEBIAN', 'control'),
    'Package: sanbook-dummy\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: a test\n multi-line\n');
  const deb = join(repo, 'sanbook-dummy_1.0_all.deb');
  await run(['dpkg-deb', '--root-owner-group', '-Zgzip', '--build', pkg, deb], { step: 'test: dpkg-deb --build' });
  await writeRepoIndex(repo);
  const data = await readFile(deb);
  const packages = await readFile(join(repo, 'Packages'), 'utf8');
  t.regex(packages, /^Package: sanbook-dummy\nVersion: 1\.0\n/);
  t.true(packages.includes('Description: a test\n multi-line\n'));
  t.true(packages.includes(`Filename: ./sanbook-dummy_1.0_all.deb\nSize: ${data.length}\n`));
  t.true(packages.includes(`SHA256: ${createHash('sha256').update(data).digest('hex')}\n`));
  t.is(gunzipSync(await readFile(join(repo, 'Packages.gz'))).toString(), packages);
  const release = await readFile(join(repo, 'Release'), 'utf8');
  const sha = createHash('sha256').update(packages).digest('hex');
  t.true(release.includes(`SHA256:\n ${sha} ${Buffer.byteLength(packages)} Packages\n`));
});
