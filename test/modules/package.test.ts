import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runModule } from '../../lib/apply.ts';
import { cmd } from '../../lib/command.ts';
import { LocalConnection } from '../../lib/connection/local.ts';
import {
  dpkgInstalled,
  dpkgPresent,
  dpkgQueryCommand,
  parseAptGather,
  parseAptPolicy,
  parseDpkgQuery,
  parseRpmGather,
  parseRpmQuery,
  pkg,
  planPackage,
  rpmCacheSteps,
  rpmErrors,
  rpmGatherCommand,
  rpmQueryCommand,
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

test('rpm -q fixtures: not-installed lines are not packages, epoch and NAME.ARCH', (t) => {
  const empty = fixture('rpm-query-empty-db.json');
  t.is(empty.command, rpmQueryCommand(['bash', 'no-such-package-xyz']).display, 'recorded with the command gather runs');
  t.is(empty.exitCode, 2, 'rpm -q exits with the number of missing names');
  t.is(parseRpmQuery(empty.stdout).size, 0);
  t.deepEqual(rpmErrors(empty.stdout), []);
  const mixed = fixture('rpm-query-mixed.json');
  t.is(mixed.exitCode, 2);
  t.deepEqual([...parseRpmQuery(mixed.stdout)], [
    ['sbtest', '1.0-1'],
    ['sbother', '1:2.0-1'],
    ['sbrec', '1.0-1'],
  ]);
  t.deepEqual(rpmErrors(mixed.stdout), []);
  t.deepEqual(rpmErrors('error: cannot open Packages database in /var/lib/rpm\n'), ['error: cannot open Packages database in /var/lib/rpm']);
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
  {
    name: 'dnf: present without weak deps, after makecache',
    params: { name: 'b', installRecommends: false, updateCache: true },
    facts: dnf({ b: no() }),
    expect: ['install b (after dnf makecache)'],
    commands: ['dnf makecache -q --refresh', 'dnf install -y -q --setopt=install_weak_deps=False -- b'],
  },
  { name: 'dnf: latest at the newest', params: { name: 'a', state: 'latest' }, facts: dnf({ a: { installed: '1-1', status: 'rpm', candidate: '1-1' } }), expect: [] },
  {
    name: 'dnf: latest with an upgrade',
    params: { name: 'a', state: 'latest' },
    facts: dnf({ a: { installed: '1-1', status: 'rpm', candidate: '1:2-1' } }),
    expect: ['upgrade a (1-1 -> 1:2-1)'],
    commands: ['dnf install -y -q -- a'],
  },
  {
    name: 'yum 3: no weak deps option, makecache after expiring the cache',
    params: { name: 'b', installRecommends: true, updateCache: true },
    facts: { manager: 'yum', packages: { b: no() }, listsPresent: true },
    expect: ['install b (after yum makecache)'],
    commands: ['yum clean expire-cache -q', 'yum makecache -q', 'yum install -y -q -- b'],
  },
  { name: 'yum 3: latest refused', params: { name: 'a', state: 'latest' }, facts: { manager: 'yum', packages: { a: no() }, listsPresent: true }, expect: [], throws: /latest needs dnf/ },
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
  // dpkg may know cowsay without it being installed (status "un": once apt or a tool has selected it), or not
  // at all (exit 1): either way, not "ii".
  const isInstalled = async () => {
    const r = await conn.exec(cmd('dpkg-query', '-W', '-f', '${db:Status-Abbrev}', 'cowsay'));
    return r.exitCode === 0 && r.stdout.startsWith('ii');
  };
  t.false(await isInstalled(), 'cowsay is not installed on this machine');
  const r = await runModule(conn, pkg, { name: 'cowsay', state: 'present' }, { check: true });
  t.true(r.changed);
  t.regex(r.changes[0]?.summary ?? '', /^install cowsay/);
  t.deepEqual(r.log, []);
  t.false(await isInstalled(), 'still not installed');
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

// dnf/rpm: each gather output below was recorded by test/fixtures/package/record-dnf.ts (dnf 4.14 + rpm 4.18 in a
// sandbox, local signed repository), which applied the plans it shows: the next recorded command is the plan's.
const execs = (changes: ReturnType<typeof planPackage>) => changes.flatMap((c) => c.steps.flatMap((s) => (s.kind === 'exec' ? [s.command.display] : [])));

const dnfCases: { gather: string; params: PackageParams; packages: PackageFacts['packages']; expect: string[]; next?: string }[] = [
  {
    gather: 'dnf-gather-missing',
    params: { name: ['sbtest', 'sbother'] },
    packages: { sbtest: no(), sbother: no() },
    expect: ['install sbtest, sbother'],
    next: 'dnf-install-missing',
  },
  {
    gather: 'dnf-gather-present',
    params: { name: ['sbtest', 'sbother'] },
    packages: { sbtest: { installed: '1.0-1', status: 'rpm' }, sbother: { installed: '1:2.0-1', status: 'rpm' } },
    expect: [],
  },
  { gather: 'dnf-gather-unknown', params: { name: 'no-such-package-xyz' }, packages: { 'no-such-package-xyz': no() }, expect: ['install no-such-package-xyz'], next: 'dnf-install-unknown' },
  { gather: 'dnf-gather-weak', params: { name: 'sbrec', installRecommends: false }, packages: { sbrec: no() }, expect: ['install sbrec'], next: 'dnf-install-no-weak-deps' },
  {
    gather: 'dnf-gather-latest-current',
    params: { name: ['sbtest', 'sbother', 'sbrec'], state: 'latest' },
    packages: {
      sbtest: { installed: '1.0-1', status: 'rpm', candidate: '1.0-1' },
      sbother: { installed: '1:2.0-1', status: 'rpm', candidate: '1:2.0-1' },
      sbrec: { installed: '1.0-1', status: 'rpm', candidate: '1.0-1' },
    },
    expect: [],
  },
  {
    gather: 'dnf-gather-latest-upgrade',
    params: { name: ['sbtest', 'sbother', 'sbrec'], state: 'latest' },
    packages: {
      sbtest: { installed: '1.0-1', status: 'rpm', candidate: '1.1-1' },
      sbother: { installed: '1:2.0-1', status: 'rpm', candidate: '1:2.0-1' },
      sbrec: { installed: '1.0-1', status: 'rpm', candidate: '1.0-1' },
    },
    expect: ['upgrade sbtest (1.0-1 -> 1.1-1)'],
    next: 'dnf-install-upgrade',
  },
  {
    gather: 'dnf-gather-latest-converged',
    params: { name: ['sbtest', 'sbother', 'sbrec'], state: 'latest' },
    packages: {
      sbtest: { installed: '1.1-1', status: 'rpm', candidate: '1.1-1' },
      sbother: { installed: '1:2.0-1', status: 'rpm', candidate: '1:2.0-1' },
      sbrec: { installed: '1.0-1', status: 'rpm', candidate: '1.0-1' },
    },
    expect: [],
  },
  {
    gather: 'dnf-gather-absent-installed',
    params: { name: ['sbrec', 'sbweak'], state: 'absent' },
    packages: { sbrec: { installed: '1.0-1', status: 'rpm' }, sbweak: no() },
    expect: ['remove sbrec'],
    next: 'dnf-remove',
  },
  { gather: 'dnf-gather-absent-converged', params: { name: ['sbrec', 'sbweak'], state: 'absent' }, packages: { sbrec: no(), sbweak: no() }, expect: [] },
];

for (const c of dnfCases) {
  test(`dnf fixture ${c.gather}: parsed, planned${c.next ? `, and ${c.next} ran the plan` : ' (converged)'}`, (t) => {
    const f = fixture(`${c.gather}.json`);
    const params = pkg.validate(c.params);
    const names = typeof params.name === 'string' ? [params.name] : params.name;
    const latest = params.state === 'latest';
    t.is(f.command, rpmGatherCommand(names, latest).display, 'recorded with the command gather runs');
    t.regex(f.tool, /^dnf 4\.14\.0 \+ rpm 4\.18\.0 on Debian 12/);
    const facts = parseRpmGather(f.stdout, names, 'dnf', latest);
    t.deepEqual(facts.packages, c.packages);
    const changes = planPackage(params, facts);
    t.deepEqual(changes.map((x) => x.summary), c.expect);
    if (c.next) {
      const ran = fixture(`${c.next}.json`);
      t.deepEqual(execs(changes), [ran.command]);
    }
  });
}

test('dnf fixtures: what the applied commands printed', (t) => {
  const install = fixture('dnf-install-missing.json');
  t.is(install.exitCode, 0);
  t.regex(install.stdout, /Installed:\n\s+sbother-1:2\.0-1\.noarch\s+sbtest-1\.0-1\.noarch/);
  t.regex(install.stderr, /Importing GPG key 0x[0-9A-F]{8}:[\s\S]*From\s+: \/etc\/pki\/rpm-gpg\/RPM-GPG-KEY-sanbook-fixture/, 'dnf imports the key the repository module put in place');
  const unknown = fixture('dnf-install-unknown.json');
  t.is(unknown.exitCode, 1);
  t.is(unknown.stderr, 'Error: Unable to find a match: no-such-package-xyz\n');
  t.regex(fixture('dnf-install-upgrade.json').stdout, /Upgraded:\n\s+sbtest-1\.1-1\.noarch/, 'dnf install upgrades an outdated package');
  t.regex(fixture('dnf-install-no-weak-deps.json').command, /--setopt=install_weak_deps=False -- sbrec$/);
  t.deepEqual(parseRpmQuery(fixture('rpm-query-mixed.json').stdout).has('sbweak'), false, 'the weak dependency was not installed');
  const makecache = fixture('dnf-makecache.json');
  t.deepEqual([makecache.command], execs([{ summary: '', steps: rpmCacheSteps('dnf') }]));
  t.is(makecache.exitCode, 0);
});

test('dnf gather: an rpm error or a failed repoquery fails the gather', (t) => {
  t.throws(() => parseRpmGather('error: rpmdb: damaged\n@@sanbook-package@@ rpm 1\n', ['a'], 'dnf'), { message: /rpm -q failed \(exit 1\): error: rpmdb: damaged/ });
  t.throws(() => parseRpmGather('a\t1-1\tx86_64\n@@sanbook-package@@ rpm 0\n@@sanbook-package@@ repoquery 1\n', ['a'], 'dnf', true), { message: /repoquery --upgrades failed \(exit 1\)/ });
  t.throws(() => parseRpmGather('', ['a'], 'dnf'), { message: /no result/ });
  t.deepEqual(parseRpmGather('bash\t5.1.8-9.el9\tx86_64\n@@sanbook-package@@ rpm 0\n', ['bash.x86_64', 'python3.11'], 'dnf').packages, {
    'bash.x86_64': { installed: '5.1.8-9.el9', status: 'rpm' },
    'python3.11': { installed: null, status: null },
  });
});

test('gather: state latest on a yum 3 host is refused naming the host', async (t) => {
  const conn = {
    host: 'old7',
    commandCount: 0,
    exec: () => Promise.reject(new Error('not reached')),
    put: () => Promise.reject(new Error('not reached')),
    close: () => Promise.resolve(),
  };
  const facts = { os: { id: 'centos', like: ['centos', 'rhel'], versionId: '7', prettyName: 'CentOS 7', family: 'redhat' as const }, kernel: '', arch: 'x86_64', uid: 0, user: 'root', hostname: 'old7', packageManager: 'yum' as const, systemd: true };
  await t.throwsAsync(pkg.gather(conn, pkg.validate({ name: 'a', state: 'latest' }), { host: 'old7', facts }), { message: /old7 has only yum/ });
});
