import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runModule } from '../../lib/apply.ts';
import { LocalConnection } from '../../lib/connection/local.ts';
import {
  dpkgInstalled,
  dpkgPresent,
  dpkgQueryCommand,
  parseAptGather,
  parseAptPolicy,
  parseDpkgQuery,
  parseRpmGather,
  pkg,
  planPackage,
  INSTALL_TIMEOUT_MS,
  type PackageFacts,
  type PackageParams,
} from '../../modules/package.ts';

interface Fixture {
  command: string;
  stdout: string;
  stderr: string;
  exitCode: number;
  tool: string;
}

const dir = join(fileURLToPath(new URL('.', import.meta.url)), '../fixtures/package');
const fixture = (name: string): Fixture => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Fixture;

test('dpkg-query fixtures: installed, known but not installed, unknown', (t) => {
  const installed = fixture('dpkg-query-installed.json');
  t.is(installed.command, dpkgQueryCommand(['coreutils']).display, 'the fixture was recorded with the command gather runs');
  t.deepEqual([...parseDpkgQuery(installed.stdout)], [['coreutils', { status: 'ii ', version: '9.1-1' }]]);
  t.is(installed.exitCode, 0);
  for (const name of ['dpkg-query-not-installed.json', 'dpkg-query-unknown.json']) {
    const f = fixture(name);
    t.is(f.exitCode, 1, `${name}: dpkg-query exits 1 for a name it does not know`);
    t.is(parseDpkgQuery(f.stdout).size, 0);
    t.regex(f.stderr, /no packages found matching/);
  }
  const mixed = parseDpkgQuery(fixture('dpkg-query-mixed.json').stdout);
  t.deepEqual([...mixed.keys()], ['coreutils', 'libc6']);
});

test('dpkg status letters', (t) => {
  t.true(dpkgInstalled('ii '));
  t.true(dpkgInstalled('hi '));
  t.false(dpkgInstalled('rc '));
  t.false(dpkgInstalled('un '));
  t.false(dpkgPresent('rc '));
  t.true(dpkgPresent('iU '));
  t.false(dpkgPresent(''));
});

test('apt-cache policy fixture: installed/candidate per name, unknown names absent', (t) => {
  const policy = parseAptPolicy(fixture('apt-cache-policy-mixed.json').stdout);
  t.deepEqual(policy.get('coreutils'), { installed: '9.1-1', candidate: '9.1-1' });
  t.deepEqual(policy.get('cowsay'), { installed: null, candidate: '3.03+dfsg2-8' });
  t.false(policy.has('no-such-package-xyz'));
});

test('the whole apt gather output (recorded) parses per name', (t) => {
  const f = fixture('apt-gather-latest.json');
  const facts = parseAptGather(f.stdout, ['coreutils', 'cowsay', 'no-such-package-xyz'], true);
  t.deepEqual(facts, {
    manager: 'apt',
    listsPresent: true,
    packages: {
      coreutils: { installed: '9.1-1', status: 'ii ', candidate: '9.1-1' },
      cowsay: { installed: null, status: null, candidate: '3.03+dfsg2-8' },
      'no-such-package-xyz': { installed: null, status: null, candidate: null },
    },
  });
  t.throws(() => parseAptGather('@@sanbook-package@@ dpkg-query 2\n', ['x'], false), { message: /dpkg-query failed/ });
});

test('rpm fixture (empty rpm database): not-installed lines are not packages', (t) => {
  const f = fixture('rpm-query-empty-db.json');
  t.is(f.exitCode, 2, 'rpm -q exits with the number of missing names');
  t.deepEqual(parseRpmGather(f.stdout, ['bash', 'no-such-package-xyz'], 'dnf').packages, {
    bash: { installed: null, status: null },
    'no-such-package-xyz': { installed: null, status: null },
  });
});

const apt = (packages: PackageFacts['packages'], listsPresent = true): PackageFacts => ({ manager: 'apt', packages, listsPresent });
const dnf = (packages: PackageFacts['packages']): PackageFacts => ({ manager: 'dnf', packages, listsPresent: true });
const ii = (v: string, candidate?: string | null) => ({ installed: v, status: 'ii ', ...(candidate !== undefined ? { candidate } : {}) });
const no = (candidate?: string | null) => ({ installed: null, status: null, ...(candidate !== undefined ? { candidate } : {}) });

const cases: { name: string; params: PackageParams; facts: PackageFacts; expect: string[]; commands?: string[]; throws?: RegExp }[] = [
  { name: 'present: converged', params: { name: ['a', 'b'] }, facts: apt({ a: ii('1'), b: ii('2') }), expect: [] },
  {
    name: 'present: one missing',
    params: { name: ['a', 'b'], installRecommends: false },
    facts: apt({ a: ii('1'), b: no() }),
    expect: ['install b'],
    commands: ['DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends -- b'],
  },
  {
    name: 'present: lists missing -> apt-get update first',
    params: { name: 'a' },
    facts: apt({ a: no() }, false),
    expect: ['install a (after apt-get update)'],
    commands: ['apt-get update -q -o DPkg::Lock::Timeout=300', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 -- a'],
  },
  { name: 'present: updateCache only when installing', params: { name: 'a', updateCache: true }, facts: apt({ a: ii('1') }), expect: [] },
  { name: 'present: config files only is not installed', params: { name: 'a' }, facts: apt({ a: { installed: null, status: 'rc ' } }), expect: ['install a'] },
  { name: 'latest: at candidate', params: { name: 'a', state: 'latest' }, facts: apt({ a: ii('1', '1') }), expect: [] },
  { name: 'latest: no candidate (local package)', params: { name: 'a', state: 'latest' }, facts: apt({ a: ii('1', null) }), expect: [] },
  {
    name: 'latest: outdated and missing',
    params: { name: ['a', 'b'], state: 'latest', updateCache: true },
    facts: apt({ a: ii('1', '2'), b: no('5') }),
    expect: ['install b (5); upgrade a (1 -> 2) (after apt-get update)'],
  },
  { name: 'absent: converged (rc counts as removed)', params: { name: ['a', 'b'], state: 'absent' }, facts: apt({ a: no(), b: { installed: null, status: 'rc ' } }), expect: [] },
  {
    name: 'absent: installed',
    params: { name: ['a', 'b'], state: 'absent' },
    facts: apt({ a: ii('1'), b: no() }),
    expect: ['remove a'],
    commands: ['DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout=300 -- a'],
  },
  { name: 'dnf: present', params: { name: ['a', 'b'] }, facts: dnf({ a: { installed: '1-1.el9', status: 'rpm' }, b: no() }), expect: ['install b'], commands: ['dnf install -y -q -- b'] },
  { name: 'dnf: absent', params: { name: 'a', state: 'absent' }, facts: dnf({ a: { installed: '1-1.el9', status: 'rpm' } }), expect: ['remove a'], commands: ['dnf remove -y -q -- a'] },
  { name: 'dnf: latest refused', params: { name: 'a', state: 'latest' }, facts: dnf({ a: no() }), expect: [], throws: /not supported with dnf/ },
];

for (const c of cases) {
  test(`plan: ${c.name}`, (t) => {
    const params = pkg.validate(c.params);
    if (c.throws) {
      t.throws(() => planPackage(params, c.facts), { message: c.throws });
      return;
    }
    const changes = planPackage(params, c.facts);
    t.deepEqual(changes.map((x) => x.summary), c.expect);
    t.true(changes.every((x) => !x.action && x.destructive === undefined));
    if (c.commands) t.deepEqual(changes.flatMap((x) => x.steps.map((s) => (s.kind === 'exec' ? s.command.display : s.path))), c.commands);
  });
}

test('schema: names are package names', (t) => {
  t.throws(() => pkg.validate({ name: '-oAPT::x=1' }));
  t.throws(() => pkg.validate({ name: 'a b' }));
  t.throws(() => pkg.validate({ name: [] }));
  t.like(pkg.validate({ name: 'libc6:amd64' }), { name: 'libc6:amd64', state: 'present' });
});

test('run (check mode) on this machine: a package that is not installed is planned, not installed', async (t) => {
  const conn = new LocalConnection();
  const status = async () => (await conn.exec(dpkgQueryCommand(['cowsay']))).exitCode;
  t.is(await status(), 1, 'cowsay is not installed on this machine');
  const r = await runModule(conn, pkg, { name: 'cowsay', state: 'present' }, { check: true });
  t.true(r.changed);
  t.regex(r.changes[0]?.summary ?? '', /^install cowsay/);
  t.deepEqual(r.log, []);
  t.is(await status(), 1, 'still not installed');
  const installed = await runModule(conn, pkg, { name: 'coreutils', state: 'present' }, { check: true });
  t.false(installed.changed);
});

test('installs carry their own long timeout; lookups and apt-get update keep the connection default', (t) => {
  const changes = planPackage(pkg.validate({ name: ['a', 'b'] }), apt({ a: no(), b: no() }, false));
  const commands = changes.flatMap((c) => c.steps.flatMap((s) => (s.kind === 'exec' ? [s.command] : [])));
  t.deepEqual(commands.map((c) => c.timeoutMs), [undefined, INSTALL_TIMEOUT_MS]);
  const dnfInstall = planPackage(pkg.validate({ name: 'b' }), dnf({ b: no() }))[0]?.steps[0];
  t.is(dnfInstall?.kind === 'exec' ? dnfInstall.command.timeoutMs : 0, INSTALL_TIMEOUT_MS);
});
