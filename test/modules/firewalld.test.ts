/**
 * firewalld: the parsers on every recording of test/fixtures/firewalld (firewalld 1.3.3 on the lab's Debian 12)
 * and on seed 000's `firewall-cmd --list-all`; the plans on facts made of those recordings (converged, from
 * nothing, one plane only, absent, daemon stopped, unknown zone, bad ports); the real gather script and step
 * wrapper run by /bin/sh with firewall-cmd and systemctl replaced by stubs replaying the recordings. No
 * firewall-cmd runs on this machine.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runModule } from '../../lib/apply.ts';
import { quote, type Command } from '../../lib/command.ts';
import type { Connection, ExecResult } from '../../lib/connection/types.ts';
import type { HostFacts } from '../../lib/facts.ts';
import type { Change } from '../../lib/module.ts';
import { fixture, type Recorded } from '../helpers/fixtures.ts';
import { parseSystemctlShow, showCommand, type ServiceFacts } from '../../modules/service.ts';
import {
  firewallCommand,
  firewalld,
  gatherScript,
  normalizePorts,
  parseActiveZones,
  parseDefaultZone,
  parseGather,
  parseListAll,
  parseNames,
  parsePort,
  parseState,
  type FirewalldFacts,
  type PlaneFacts,
  type ZoneInfo,
} from '../../modules/firewalld.ts';
import { intersect, subtract } from '../../modules/firewalld/ports.ts';

const rec = (name: string): Recorded => fixture(`firewalld/${name}`);
const zoneOf = (name: string): ZoneInfo => parseListAll(rec(name).stdout);

// Seed 000 (master, `sudo firewall-cmd --list-all`, Rocky 9): an active zone, ports added one by one.
const SEED_LIST_ALL = `public (active)
  target: default
  icmp-block-inversion: no
  interfaces: enp0s3 enp0s8 enp0s9
  sources: 
  services: cockpit dhcpv6-client ssh
  ports: 80/tcp 9425/tcp 9419/tcp 9420/tcp 9421/tcp
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 
`;

const EMPTY = { interfaces: [], sources: [], protocols: [], forwardPorts: [], sourcePorts: [], icmpBlocks: [], richRules: [] };
const PUBLIC = { name: 'public', attributes: [], target: 'default', icmpBlockInversion: false, forward: true, masquerade: false, ...EMPTY };

// ---- the parsers, on every recording ----

const parsed: Record<string, (f: Recorded) => unknown> = {
  'state.json': (f) => parseState(f.exitCode, f.stdout, f.stderr),
  'state-not-running.json': (f) => parseState(f.exitCode, f.stdout, f.stderr),
  'default-zone.json': (f) => parseDefaultZone(f.stdout),
  'active-zones.json': (f) => parseActiveZones(f.stdout),
  'list-all-default.json': (f) => parseListAll(f.stdout),
  'list-all-runtime-only.json': (f) => parseListAll(f.stdout),
  'list-all-permanent.json': (f) => parseListAll(f.stdout),
  'list-all-ports.json': (f) => parseListAll(f.stdout),
  'offline-default-zone.json': (f) => parseDefaultZone(f.stdout),
  'offline-list-all.json': (f) => parseListAll(f.stdout),
  'offline-get-zones.json': (f) => parseNames(f.stdout),
};
const expected: Record<string, unknown> = {
  'state.json': true,
  'state-not-running.json': false,
  'default-zone.json': 'public',
  'active-zones.json': {},
  'list-all-default.json': { ...PUBLIC, services: ['dhcpv6-client', 'ssh'], ports: [] },
  'list-all-runtime-only.json': { ...PUBLIC, services: ['dhcpv6-client', 'ssh'], ports: ['9425/tcp'] },
  'list-all-permanent.json': { ...PUBLIC, services: ['dhcpv6-client', 'iscsi-target', 'ssh'], ports: ['9419-9421/tcp'] },
  'list-all-ports.json': { ...PUBLIC, services: ['dhcpv6-client', 'iscsi-target', 'ssh'], ports: ['9419-9421/tcp'] },
  // firewalld stopped on master, its permanent configuration read from the files (no "(active)": nothing is).
  'offline-default-zone.json': 'public',
  'offline-list-all.json': { ...PUBLIC, services: ['dhcpv6-client', 'ssh'], ports: ['9419-9421/tcp', '9425/tcp'] },
  'offline-get-zones.json': ['block', 'dmz', 'drop', 'external', 'home', 'internal', 'public', 'trusted', 'work'],
};

test('every recording of test/fixtures/firewalld has a parser and an expected result', (t) => {
  const files = readdirSync(new URL('../fixtures/firewalld/', import.meta.url)).sort();
  t.deepEqual(files, Object.keys(parsed).sort(), 'a new recording needs its case here');
  for (const file of files) {
    const f = rec(file.replace(/\.json$/, ''));
    t.is(f.tool, 'firewalld 1.3.3-1~deb12u2', file);
    t.deepEqual(parsed[file]?.(f), expected[file], file);
  }
});

test('the recorded commands are the ones gather runs', (t) => {
  const script = gatherScript(firewalld.validate({ interfaces: ['eth1'] })).display;
  for (const name of ['state', 'default-zone', 'active-zones']) t.true(script.includes(rec(name).command), name);
  t.true(script.includes('firewall-cmd --list-all "--zone=$zone"'), 'list-all-ports: firewall-cmd --list-all --zone=public');
  t.true(script.includes('firewall-cmd --permanent --list-all "--zone=$zone"'));
  t.is(rec('list-all-ports').command, 'firewall-cmd --list-all --zone=public');
  t.is(rec('state-not-running').exitCode, 252);
  t.is(rec('state-not-running').stderr, 'not running\n');
  t.true(script.includes(rec('offline-default-zone').command), 'offline-default-zone');
  t.true(script.includes('firewall-offline-cmd --list-all "--zone=$zone" || sanbook_run permanent-zones firewall-offline-cmd --get-zones'));
  t.is(rec('offline-list-all').command, 'firewall-offline-cmd --list-all --zone=public');
  t.is(rec('offline-get-zones').command, 'firewall-offline-cmd --get-zones');
  t.is(fixture('service/firewalld-running').command, showCommand('firewalld').display, 'the unit, recorded by the command gather runs');
});

test("seed 000's --list-all: active zone, its interfaces, ports one by one (firewalld merges overlaps, not neighbours)", (t) => {
  t.deepEqual(parseListAll(SEED_LIST_ALL), {
    ...PUBLIC,
    attributes: ['active'],
    interfaces: ['enp0s3', 'enp0s8', 'enp0s9'],
    services: ['cockpit', 'dhcpv6-client', 'ssh'],
    ports: ['80/tcp', '9425/tcp', '9419/tcp', '9420/tcp', '9421/tcp'],
  });
});

test('a listing that is not one is an error naming what is missing', (t) => {
  t.throws(() => parseListAll(rec('state').stdout.replace('running', '')), { message: /first line is not a zone name/ });
  t.throws(() => parseListAll(rec('list-all-ports').stdout.replace(/ {2}ports: .*\n/, '')), { message: /zone public\): no "ports:" line/ });
  t.throws(() => parseState(1, '', 'Error: ...'), { message: /firewall-cmd --state exited 1/ });
});

// ---- ports ----

test('ports: coverage, not text (9420/tcp is in 9419-9421/tcp; 9419 + 9420 + 9421 make 9419-9421)', (t) => {
  const p = (...xs: string[]) => xs.map(parsePort);
  const fmt = (rs: ReturnType<typeof p>) => rs.map((r) => `${r.from}-${r.to}/${r.protocol}`);
  t.deepEqual(fmt(normalizePorts(p('9421/tcp', '9419/tcp', '9420/tcp', '9420/udp'))), ['9419-9421/tcp', '9420-9420/udp']);
  t.deepEqual(subtract(p('9420/tcp'), p('9419-9421/tcp')), []);
  t.deepEqual(fmt(subtract(p('9419-9425/tcp'), p('9420/tcp', '9422/tcp'))), ['9419-9419/tcp', '9421-9421/tcp', '9423-9425/tcp']);
  t.deepEqual(fmt(intersect(p('9420-9430/tcp'), p('9419-9421/tcp', '9425/udp'))), ['9420-9421/tcp']);
  t.throws(() => parsePort('9421-9419/tcp'), { message: 'port range 9421-9419/tcp: the first port (9421) is above the last (9419)' });
});

test('params: bad ports, zones, sources and interfaces are refused by the schema', (t) => {
  for (const port of ['70000/tcp', '0/tcp', '80/icmp', '3260', '80/TCP', '3260/tcp; reboot', '01/tcp', '1-65536/udp']) {
    t.throws(() => firewalld.validate({ ports: [port] }), undefined, port);
  }
  for (const zone of ['public; reboot', '$(id)', 'a b', '-public', 'x'.repeat(18), '']) t.throws(() => firewalld.validate({ zone }), undefined, zone);
  for (const source of ['10.3.1.0/33', '256.1.1.1', '10.3.1', 'fd00::/129', 'ipset:x']) t.throws(() => firewalld.validate({ sources: [source] }), undefined, source);
  for (const iface of ['eth0 eth1', 'a/b', 'x'.repeat(16), '`id`']) t.throws(() => firewalld.validate({ interfaces: [iface] }), undefined, iface);
  t.throws(() => firewalld.validate({ ports: ['3260/tcp', '3260/tcp'] }));
  t.throws(() => firewalld.validate({ protocol: 'tcp' }));
  const p = firewalld.validate({ zone: 'storage-net', ports: ['1-65535/udp', '9419-9421/tcp'], sources: ['10.3.0.0/16', 'fd00::/64', '10.3.1.100'], interfaces: ['enp0s8', 'br0.10'] });
  t.deepEqual([p.state, p.running, p.exact], ['present', true, false]);
});

// ---- plans on recorded zones ----

/** firewalld's unit on master, recorded while it ran. */
const UNIT = fixture('service/firewalld-running');
const SERVICE: ServiceFacts = parseSystemctlShow(UNIT.stdout, 'firewalld.service');
// No show of a stopped firewalld unit is recorded: these two are the recorded one with its states edited.
/** Never started, not enabled (a fresh install with the daemon off). */
const STOPPED: ServiceFacts = { ...SERVICE, activeState: 'inactive', subState: 'dead', unitFileState: 'disabled' };
/** As `systemctl stop firewalld` left it while the offline recordings were made: still enabled. */
const STOPPED_ENABLED: ServiceFacts = { ...SERVICE, activeState: 'inactive', subState: 'dead' };
const plane = (zone: ZoneInfo | string, over: Partial<PlaneFacts> = {}): PlaneFacts => ({
  zone: typeof zone === 'string' ? zoneOf(zone) : zone,
  zones: null,
  knownServices: null,
  interfaceZones: {},
  sourceZones: {},
  ...over,
});
const facts = (runtime: PlaneFacts | null, permanent: PlaneFacts, service: ServiceFacts = runtime ? SERVICE : STOPPED): FirewalldFacts => ({
  service,
  running: runtime !== null,
  defaultZone: 'public',
  runtime,
  permanent,
});
const plan = (params: object, f: FirewalldFacts) => firewalld.plan(firewalld.validate(params), f);
const summaries = (cs: readonly Change[]) => cs.map((c) => c.summary);
const commands = (cs: readonly Change[]) => cs.flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.display : `put ${s.path}`)));
const reloaded = () => facts(plane('list-all-ports'), plane('list-all-permanent'));

test('converged: nothing to do, ports compared by coverage (9420/tcp is open inside 9419-9421/tcp)', (t) => {
  t.deepEqual(plan({ ports: ['9419-9421/tcp'], services: ['iscsi-target', 'ssh'] }, reloaded()), []);
  t.deepEqual(plan({ ports: ['9420/tcp'] }, reloaded()), []);
  const seed = parseListAll(SEED_LIST_ALL);
  t.deepEqual(plan({ ports: ['9419-9421/tcp', '9425/tcp'], interfaces: ['enp0s8'] }, facts(plane(seed), plane(seed))), [], "seed 000's master, ports listed one by one");
  t.deepEqual(plan({}, reloaded()), [], 'no item: firewalld enabled and running is all');
});

test("from nothing: seed 000's master ports, one firewall-cmd call per plane", (t) => {
  const changes = plan({ ports: ['9419-9421/tcp', '9425/tcp'] }, facts(plane('list-all-default'), plane('list-all-default')));
  t.deepEqual(summaries(changes), ['open 9419-9421/tcp and 9425/tcp in zone public (runtime and permanent)']);
  t.deepEqual(commands(changes), [
    'firewall-cmd --zone=public --add-port=9419-9421/tcp --add-port=9425/tcp',
    'firewall-cmd --permanent --zone=public --add-port=9419-9421/tcp --add-port=9425/tcp',
  ]);
  t.true(changes.every((c) => c.destructive === undefined && c.action === undefined));
});

test('partial (the recorded runtime-only port and permanent-only service): each plane gets only what it lacks', (t) => {
  const f = facts(plane('list-all-runtime-only'), plane('list-all-permanent'));
  const changes = plan({ ports: ['9419-9421/tcp', '9425/tcp'], services: ['iscsi-target'] }, f);
  t.deepEqual(summaries(changes), [
    'allow service iscsi-target in zone public (runtime only: the permanent configuration has it)',
    'open ports in zone public: 9419-9421/tcp (runtime only: the permanent configuration has it), 9425/tcp (permanent only: runtime has it)',
  ]);
  t.deepEqual(commands(changes), [
    'firewall-cmd --zone=public --add-service=iscsi-target',
    'firewall-cmd --zone=public --add-port=9419-9421/tcp',
    'firewall-cmd --permanent --zone=public --add-port=9425/tcp',
  ]);
  t.deepEqual(summaries(plan({ ports: ['9425/tcp'] }, f)), ['open 9425/tcp in zone public (permanent only: runtime has it)']);
  t.deepEqual(commands(plan({ ports: ['9419-9425/tcp'] }, f)), [
    'firewall-cmd --zone=public --add-port=9419-9424/tcp',
    'firewall-cmd --permanent --zone=public --add-port=9422-9425/tcp',
  ], 'only the part no entry covers: never ALREADY_ENABLED');
});

test('absent: removed from the planes that hold it; a port inside a range is cut out of it', (t) => {
  const both = plan({ ports: ['9419-9421/tcp'], services: ['iscsi-target'], state: 'absent' }, reloaded());
  t.deepEqual(summaries(both), ['close 9419-9421/tcp in zone public (runtime and permanent)', 'remove service iscsi-target from zone public (runtime and permanent)']);
  t.deepEqual(commands(both), [
    'firewall-cmd --zone=public --remove-port=9419-9421/tcp',
    'firewall-cmd --permanent --zone=public --remove-port=9419-9421/tcp',
    'firewall-cmd --zone=public --remove-service=iscsi-target',
    'firewall-cmd --permanent --zone=public --remove-service=iscsi-target',
  ]);
  t.deepEqual(commands(plan({ ports: ['9420/tcp'], state: 'absent' }, reloaded())), [
    'firewall-cmd --zone=public --remove-port=9420/tcp',
    'firewall-cmd --permanent --zone=public --remove-port=9420/tcp',
  ], 'the daemon splits the range itself');
  const one = plan({ ports: ['9425/tcp', '3260/tcp'], state: 'absent' }, facts(plane('list-all-runtime-only'), plane('list-all-permanent')));
  t.deepEqual(summaries(one), ['close 9425/tcp in zone public (runtime only: the permanent configuration does not have it)']);
  t.deepEqual(plan({ ports: ['3260/tcp'], services: ['iscsi-target'], state: 'absent' }, facts(plane('list-all-default'), plane('list-all-default'))), []);
  t.throws(() => plan({ ports: ['3260/tcp'], state: 'absent', exact: true }, reloaded()), { message: /exact: true goes with state: present/ });
});

test('exact: what the task does not list is removed, of the kinds it lists only', (t) => {
  const changes = plan({ services: ['ssh', 'iscsi-target'], ports: [], exact: true }, reloaded());
  t.deepEqual(summaries(changes), ['close 9419-9421/tcp in zone public (runtime and permanent)', 'remove service dhcpv6-client from zone public (runtime and permanent)']);
  t.deepEqual(plan({ services: ['dhcpv6-client', 'iscsi-target', 'ssh'], exact: true }, reloaded()), [], 'ports not listed: left alone');
});

test('daemon stopped: firewall-offline-cmd for the permanent plane, then enable --now (the runtime loads it)', (t) => {
  const f = facts(null, plane('offline-list-all'));
  const changes = plan({ ports: ['3260/tcp'] }, f);
  t.deepEqual(summaries(changes), [
    'open 3260/tcp in zone public (permanent, with firewall-offline-cmd: firewalld is stopped; its runtime loads this when it starts)',
    'enable and start firewalld (inactive): its runtime loads the permanent configuration of zone public, with the changes above, so they need no runtime command',
  ]);
  t.deepEqual(commands(changes), ['firewall-offline-cmd --zone=public --add-port=3260/tcp', 'systemctl enable --now firewalld']);
  t.deepEqual(summaries(plan({ ports: ['3260/tcp'], running: false }, f)), [
    'open 3260/tcp in zone public (permanent only, with firewall-offline-cmd: firewalld is stopped and running is false)',
  ]);
  const started = plan({ ports: ['9420/tcp'] }, facts(null, plane('offline-list-all'), STOPPED_ENABLED));
  t.deepEqual(commands(started), ['systemctl start firewalld']);
  t.regex(started[0]?.summary ?? '', /^start firewalld \(inactive\): .*, which has all the task asks$/);
  t.deepEqual(commands(plan({ ports: ['9420/tcp'], state: 'absent', running: false }, facts(null, plane('offline-list-all')))), [
    'firewall-offline-cmd --zone=public --remove-port=9419-9421/tcp',
    'firewall-offline-cmd --zone=public --add-port=9419/tcp --add-port=9421/tcp',
  ], 'firewall-offline-cmd removes an entry only as written: remove it, add back what stays open');
});

test('the unit: enabled when it runs but is disabled; masked is an error', (t) => {
  const disabled = facts(plane('list-all-ports'), plane('list-all-permanent'), { ...SERVICE, unitFileState: 'disabled' });
  t.deepEqual(commands(plan({ ports: ['9420/tcp'] }, disabled)), ['systemctl enable firewalld']);
  t.deepEqual(plan({ ports: ['9420/tcp'], running: false }, disabled), []);
  const masked = facts(null, plane('offline-list-all'), { ...STOPPED, loadState: 'masked', unitFileState: 'masked' });
  t.throws(() => plan({}, masked), { message: /firewalld.service is masked: unmask it first/ });
});

test('unknown zone, unknown service, bad range: errors naming them', (t) => {
  // firewall-cmd --get-zones is not recorded: firewall-offline-cmd's, on the same configuration, stands in for it.
  const zones = parseNames(rec('offline-get-zones').stdout);
  const missing = facts(plane('list-all-default', { zone: null, zones }), plane('list-all-default', { zone: null, zones }));
  t.throws(() => plan({ zone: 'storage', ports: ['3260/tcp'] }, missing), {
    message: 'zone storage does not exist (firewall-cmd --get-zones: block, dmz, drop, external, home, internal, public, trusted, work)',
  });
  const offline = facts(null, plane('list-all-default', { zone: null, zones }));
  t.throws(() => plan({ zone: 'storage' }, offline), { message: /^zone storage does not exist \(firewall-offline-cmd --get-zones: block, / });
  const permanentOnly = facts(plane('list-all-default', { zone: null, zones }), plane({ ...zoneOf('list-all-default'), name: 'storage' }));
  t.throws(() => plan({ zone: 'storage' }, permanentOnly), { message: /^zone storage exists in the permanent configuration only: `firewall-cmd --reload` loads it/ });
  const known = facts(plane('list-all-ports', { knownServices: ['iscsi-target', 'ssh'] }), plane('list-all-permanent', { knownServices: ['iscsi-target', 'ssh'] }));
  t.throws(() => plan({ services: ['iscsi-targets', 'ssh', 'nfs'] }, known), { message: /^firewalld does not know the services iscsi-targets, nfs \(firewall-cmd --get-services\)/ });
  t.deepEqual(plan({ services: ['iscsi-targets'], state: 'absent' }, known), [], 'absent: an unknown service is not in the zone');
  t.throws(() => plan({ ports: ['9422-9420/tcp'] }, reloaded()), { message: /the first port \(9422\) is above the last \(9420\)/ });
  t.throws(() => plan({ sources: ['fd00:::1/64'] }, reloaded()), { message: 'source fd00:::1/64 is not an IPv4 or IPv6 address or network (ADDRESS or ADDRESS/PREFIX)' });
});

test('interfaces and sources: bound with --change-*, the summary says when one moves from another zone', (t) => {
  const bound = { interfaceZones: { enp0s8: 'internal', enp0s9: null }, sourceZones: { '10.3.1.0/24': 'trusted' } };
  const f = facts(plane('list-all-ports', bound), plane('list-all-permanent', { ...bound, interfaceZones: { enp0s8: 'dmz', enp0s9: null } }));
  const changes = plan({ interfaces: ['enp0s8', 'enp0s9'], sources: ['10.3.1.0/24'] }, f);
  t.deepEqual(summaries(changes), [
    'bind source 10.3.1.0/24 to zone public (runtime and permanent; moves from zone trusted)',
    'bind interfaces to zone public: enp0s8 (runtime and permanent; moves from zone internal (runtime) and zone dmz (permanent)), enp0s9 (runtime and permanent)',
  ]);
  t.deepEqual(commands(changes), [
    'firewall-cmd --zone=public --change-source=10.3.1.0/24',
    'firewall-cmd --permanent --zone=public --change-source=10.3.1.0/24',
    'firewall-cmd --zone=public --change-interface=enp0s8 --change-interface=enp0s9',
    'firewall-cmd --permanent --zone=public --change-interface=enp0s8 --change-interface=enp0s9',
  ]);
  const seed = parseListAll(SEED_LIST_ALL);
  t.deepEqual(commands(plan({ interfaces: ['enp0s9'], state: 'absent' }, facts(plane(seed), plane(seed)))), [
    'firewall-cmd --zone=public --remove-interface=enp0s9',
    'firewall-cmd --permanent --zone=public --remove-interface=enp0s9',
  ]);
});

test('quoting: every step is one firewall-cmd call, built by the quoter, inside the wrapper that checks its items', (t) => {
  const changes = plan({ zone: 'public', sources: ['fd00::/64'], ports: ['3260/tcp'] }, reloaded());
  for (const c of changes) {
    for (const s of c.steps) {
      t.is(s.kind, 'exec');
      if (s.kind === 'exec') t.true(s.command.script.toString().startsWith(`out=$(${s.command.display} 2>&1); rc=$?`), s.command.display);
    }
  }
  t.is(firewallCommand(['firewall-cmd', "--zone=it's", '--add-port=1/tcp']).display, "firewall-cmd '--zone=it'\\''s' --add-port=1/tcp");
});

// ---- the real scripts under /bin/sh, firewall-cmd and systemctl replaced by stubs replaying recordings ----

type Replies = Record<string, Pick<Recorded, 'stdout' | 'stderr' | 'exitCode'>>;

function runStubbed(script: Command, replies: Replies, path = ''): ExecResult {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-firewalld-'));
  try {
    const arms = Object.entries(replies).map(([args, r], i) => {
      writeFileSync(join(dir, `${i}.out`), r.stdout);
      writeFileSync(join(dir, `${i}.err`), r.stderr);
      return `${quote(args)}) cat ${quote(join(dir, `${i}.out`))}; cat ${quote(join(dir, `${i}.err`))} >&2; exit ${r.exitCode};;`;
    });
    mkdirSync(join(dir, 'bin'));
    for (const tool of ['firewall-cmd', 'firewall-offline-cmd', 'systemctl']) {
      writeFileSync(join(dir, 'bin', tool), `#!/bin/sh\ncase "${tool} $*" in ${arms.join(' ')} esac\necho "no stub: ${tool} $*" >&2; exit 99\n`, { mode: 0o755 });
    }
    const r = spawnSync('/bin/sh', ['-c', `PATH=${path || `${quote(join(dir, 'bin'))}:$PATH`}\n${script.script.toString('utf8')}`], { encoding: 'utf8' });
    return { exitCode: r.status ?? 1, stdout: r.stdout, stderr: r.stderr, stdoutBytes: Buffer.from(r.stdout), signal: null, timedOut: false, durationMs: 0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const reply = (name: string) => {
  const { stdout, stderr, exitCode } = rec(name);
  return { stdout, stderr, exitCode };
};
/** The recorded lab before its reload: 9425/tcp in the runtime only; 9419-9421/tcp and iscsi-target permanent only. */
const BEFORE_RELOAD: Replies = {
  [showCommand('firewalld').display]: { stdout: UNIT.stdout, stderr: UNIT.stderr, exitCode: UNIT.exitCode },
  'firewall-cmd --state': reply('state'),
  'firewall-cmd --get-default-zone': reply('default-zone'),
  // Recorded without --zone: the default zone, public, is the same listing.
  'firewall-cmd --list-all --zone=public': reply('list-all-runtime-only'),
  'firewall-cmd --permanent --list-all --zone=public': reply('list-all-permanent'),
  'firewall-cmd --get-active-zones': reply('active-zones'),
};

test('gather: one script, the recorded planes split into facts', (t) => {
  const params = firewalld.validate({ ports: ['9419-9421/tcp', '9425/tcp'] });
  const r = runStubbed(gatherScript(params), BEFORE_RELOAD);
  t.is(r.exitCode, 0, r.stderr);
  const f = parseGather(r.stdout, params);
  t.deepEqual([f.running, f.defaultZone, f.service.activeState], [true, 'public', 'active']);
  t.deepEqual(f.runtime, { zone: zoneOf('list-all-runtime-only'), zones: null, knownServices: null, interfaceZones: {}, sourceZones: {} });
  t.deepEqual(f.permanent.zone, zoneOf('list-all-permanent'));
  const named = runStubbed(gatherScript(firewalld.validate({ zone: 'public', interfaces: ['enp0s8'] })), BEFORE_RELOAD);
  t.regex(named.stdout, /@@sanbook begin runtime-active\n\n@@sanbook rc 0\n/, 'the recorded (empty) active zones');
  t.throws(() => parseGather(named.stdout, firewalld.validate({ zone: 'public', interfaces: ['enp0s8'] })), {
    message: /the zone of interface enp0s8 \(permanent\): exit 99: no stub: firewall-cmd --permanent --get-zone-of-interface=enp0s8/,
  });
});

test('gather: daemon stopped -> firewall-offline-cmd only; not installed -> an error', (t) => {
  const params = firewalld.validate({ ports: ['3260/tcp'] });
  const r = runStubbed(gatherScript(params), { ...BEFORE_RELOAD, 'firewall-cmd --state': reply('state-not-running') });
  t.false(r.stdout.includes('begin runtime'), 'no runtime plane');
  t.throws(() => parseGather(r.stdout, params), { message: '--get-default-zone failed: no stub: firewall-offline-cmd --get-default-zone' });
  const missing = runStubbed(gatherScript(params), {}, '/nonexistent');
  t.throws(() => parseGather(missing.stdout, params), { message: /firewalld is not installed \(no firewall-cmd\)/ });
});

/**
 * master with firewalld stopped, as recorded: --state says not running (252), the permanent plane through
 * firewall-offline-cmd. The unit's show was recorded while firewalld ran, none while it was stopped: the running one
 * is replayed, as the gather does not branch on it (--state alone picks the path); the plan does read it, so the
 * plan below takes the stopped unit's states from STOPPED_ENABLED.
 */
const OFFLINE: Replies = {
  [UNIT.command]: { stdout: UNIT.stdout, stderr: UNIT.stderr, exitCode: UNIT.exitCode },
  [rec('state-not-running').command]: reply('state-not-running'),
  [rec('offline-default-zone').command]: reply('offline-default-zone'),
  [rec('offline-list-all').command]: reply('offline-list-all'),
  [rec('offline-get-zones').command]: reply('offline-get-zones'),
};

test('gather with firewalld stopped (recorded): no runtime plane, the permanent one by firewall-offline-cmd; the plan opens what it lacks, then starts firewalld', (t) => {
  const params = firewalld.validate({ ports: ['9419-9421/tcp', '9422/tcp', '9425/tcp'] });
  const r = runStubbed(gatherScript(params), OFFLINE);
  t.is(r.exitCode, 0, r.stderr);
  const f = parseGather(r.stdout, params);
  t.deepEqual([f.running, f.defaultZone, f.runtime], [false, 'public', null]);
  t.is(f.service.activeState, 'active', 'the replayed (running) unit: running comes from --state, not from it');
  t.deepEqual(f.permanent, { zone: zoneOf('offline-list-all'), zones: null, knownServices: null, interfaceZones: {}, sourceZones: {} });
  t.deepEqual([f.permanent.zone?.ports, f.permanent.zone?.services], [['9419-9421/tcp', '9425/tcp'], ['dhcpv6-client', 'ssh']]);

  const stopped = { ...f, service: STOPPED_ENABLED };
  const changes = firewalld.plan(params, stopped);
  t.deepEqual(summaries(changes), [
    'open 9422/tcp in zone public (permanent, with firewall-offline-cmd: firewalld is stopped; its runtime loads this when it starts)',
    'start firewalld (inactive): its runtime loads the permanent configuration of zone public, with the changes above, so they need no runtime command',
  ]);
  t.deepEqual(commands(changes), ['firewall-offline-cmd --zone=public --add-port=9422/tcp', 'systemctl start firewalld']);
  t.deepEqual(commands(firewalld.plan(firewalld.validate({ ports: ['9419-9421/tcp', '9425/tcp'] }), stopped)), ['systemctl start firewalld'], "seed 000's master ports: all there");
  t.deepEqual(firewalld.plan(firewalld.validate({ ports: ['9420/tcp', '9425/tcp'], services: ['ssh'], running: false }), stopped), [], 'running: false: converged');

  // An unknown zone: the listing fails, then --get-zones names the zones. firewall-offline-cmd's refusal of the zone is
  // not recorded: the stub's failure (exit 99) stands in for it; the gather reads only that the listing failed.
  const storage = firewalld.validate({ zone: 'storage', ports: ['3260/tcp'] });
  const unknown = parseGather(runStubbed(gatherScript(storage), OFFLINE).stdout, storage);
  t.deepEqual([unknown.permanent.zone, unknown.permanent.zones], [null, parseNames(rec('offline-get-zones').stdout)]);
  t.throws(() => firewalld.plan(storage, unknown), {
    message: 'zone storage does not exist (firewall-offline-cmd --get-zones: block, dmz, drop, external, home, internal, public, trusted, work)',
  });
});

test('runModule in check mode on the recorded lab: the plan, nothing run, the output', async (t) => {
  let count = 0;
  const conn: Connection = {
    host: 'master',
    exec: async (c: Command) => (count++, runStubbed(c, BEFORE_RELOAD)),
    put: async () => t.fail('nothing is written'),
    close: async () => {},
    get commandCount() {
      return count;
    },
  };
  const hostFacts = { systemd: true, os: { family: 'debian' } } as unknown as HostFacts;
  const r = await runModule(conn, firewalld, { ports: ['9419-9421/tcp', '9425/tcp'] }, { facts: hostFacts, check: true });
  t.true(r.changed);
  t.deepEqual(summaries(r.changes), ['open ports in zone public: 9419-9421/tcp (runtime only: the permanent configuration has it), 9425/tcp (permanent only: runtime has it)']);
  t.is(count, 1, 'one round trip');
  t.deepEqual([r.output.zone, r.output.runtime?.ports, r.output.permanent?.ports], ['public', ['9425/tcp'], ['9419-9421/tcp']]);
});

test('the step wrapper passes firewall-cmd\'s exit code and output through (recorded --state replies)', (t) => {
  const state = firewallCommand(['firewall-cmd', '--state']);
  const ok = runStubbed(state, { 'firewall-cmd --state': reply('state') });
  t.deepEqual([ok.exitCode, ok.stdout], [0, 'running\n']);
  const down = runStubbed(state, { 'firewall-cmd --state': reply('state-not-running') });
  t.deepEqual([down.exitCode, down.stdout, down.stderr], [252, '', 'not running\n']);
});
