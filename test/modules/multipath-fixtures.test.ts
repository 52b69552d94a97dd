/**
 * multipath_conf's parsers on output recorded on the lab's chunk1 (multipath-tools 0.9.4, Debian 12; two iSCSI
 * sessions to one LIO LUN, then one storage link cut) and on seed 000's `multipath -ll` (two maps, failover, a
 * failed path); the real gather script run by /bin/sh with the tools replaced by functions replaying them.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, runStubbed, type Reply } from '../helpers/blockdev-stubs.ts';
import { confValue, gatherScript, mapsOutput, multipathConf, parseGather, parseMapsJson, parseMultipathConf, parseMultipathLl } from '../../modules/multipath_conf.ts';

const WWID = '360014058773caba49b74f72b95652784';
const IQN = 'iqn.2024-12.tp2.b3:data-chunk1';
const mp = (name: string) => fixture(`multipath/${name}`);

test('recorded with multipath-tools 0.9.4 on chunk1, by the commands gather runs', (t) => {
  for (const name of ['ll', 'll-one-path-failed', 'maps-json', 'maps-json-one-path-failed', 'show-config-local']) {
    const f = mp(name);
    t.is(f.tool, 'multipath-tools 0.9.4-3+deb12u2');
    t.is(f.host, 'chunk1');
    t.is(f.exitCode, 0);
  }
  const script = gatherScript('/etc/multipath.conf').display;
  t.true(script.includes(`sanbook_run maps ${mp('maps-json').command}`));
  t.true(script.includes(`sanbook_run ll ${mp('ll').command}`));
});

test('multipathd show maps json: one map over two paths, both up', (t) => {
  const [m, ...rest] = parseMapsJson(mp('maps-json').stdout);
  t.is(rest.length, 0);
  t.like(m, { name: 'mpathb', wwid: WWID, sysfs: 'dm-0', vendor: 'LIO-ORG', product: 'data1', features: '1 queue_if_no_path', hwhandler: '1 alua', dmState: 'active' });
  t.deepEqual(m?.groups, [{ group: 1, selector: 'service-time 0', priority: 50, state: 'active' }]);
  t.deepEqual(m?.paths, [
    { dev: 'sdb', devT: '8:16', state: 'active', checker: 'ready', devState: 'running', group: 1, hbtl: '', target: IQN, hostAdapter: '10.3.2.101' },
    { dev: 'sdc', devT: '8:32', state: 'active', checker: 'ready', devState: 'running', group: 1, hbtl: '', target: IQN, hostAdapter: '10.3.1.101' },
  ]);
  t.deepEqual(mapsOutput(m ? [m] : []), [
    {
      name: 'mpathb',
      wwid: WWID,
      sysfs: 'dm-0',
      device: '/dev/mapper/mpathb',
      paths: [
        { dev: 'sdb', state: 'active', checker: 'ready', group: 1 },
        { dev: 'sdc', state: 'active', checker: 'ready', group: 1 },
      ],
      activePaths: 2,
    },
  ]);
});

test('multipathd show maps json with one storage link cut: sdb failed/faulty, its adapter unknown; one active path', (t) => {
  const [m] = parseMapsJson(mp('maps-json-one-path-failed').stdout);
  t.like(m?.paths[0], { dev: 'sdb', state: 'failed', checker: 'faulty', devState: 'running', hostAdapter: null, target: IQN });
  t.like(m?.paths[1], { dev: 'sdc', state: 'active', checker: 'ready', hostAdapter: '10.3.1.101' });
  t.is(mapsOutput(m ? [m] : [])[0]?.activePaths, 1);
});

test('multipath -ll: the same map, the same paths and states as multipathd says', (t) => {
  for (const [ll, json] of [['ll', 'maps-json'], ['ll-one-path-failed', 'maps-json-one-path-failed']] as const) {
    const [a] = parseMultipathLl(mp(ll).stdout);
    const [b] = parseMapsJson(mp(json).stdout);
    t.like(a, { name: 'mpathb', wwid: WWID, sysfs: 'dm-0', vendor: 'LIO-ORG', product: 'data1', features: '1 queue_if_no_path', hwhandler: '1 alua' });
    t.deepEqual(a?.groups, b?.groups);
    const key = (p: { dev: string; devT: string; state: string; checker: string; devState: string; group: number }) => [p.dev, p.devT, p.state, p.checker, p.devState, p.group];
    t.deepEqual(a?.paths.map(key), b?.paths.map(key), ll);
    t.deepEqual(a?.paths.map((p) => p.hbtl), ['3:0:0:0', '4:0:0:0']);
  }
  t.deepEqual(parseMultipathLl(mp('ll-one-path-failed').stdout)[0]?.paths.map((p) => `${p.dev} ${p.state} ${p.checker}`), ['sdb failed faulty', 'sdc active ready']);
});

// Seed 000, "Simulation de panne" (multipath-tools of Rocky Linux 9, path_grouping_policy failover).
const SEED_LL = `mpatha (36001405d363af4e9a69472cbd4711629) dm-2 LIO-ORG,data-chunk1
size=1022M features='1 queue_if_no_path' hwhandler='1 alua' wp=rw
|-+- policy='service-time 0' prio=0 status=enabled
| \`- 3:0:0:0 sdb 8:16 failed faulty running
\`-+- policy='service-time 0' prio=50 status=active
  \`- 4:0:0:0 sdc 8:32 active ready running
mpathb (36001405b52f5c056b524a9c8633cf2b0) dm-3 LIO-ORG,data-chunk1
size=1022M features='1 queue_if_no_path' hwhandler='1 alua' wp=rw
|-+- policy='service-time 0' prio=50 status=active
| \`- 5:0:0:0 sdd 8:48 active ready running
\`-+- policy='service-time 0' prio=0 status=enabled
  \`- 6:0:0:0 sde 8:64 failed faulty running
`;

test("multipath -ll of seed 000: two maps, two path groups each (failover), the failed path in its group", (t) => {
  const maps = parseMultipathLl(SEED_LL);
  t.deepEqual(maps.map((m) => [m.name, m.wwid, m.sysfs, m.product]), [
    ['mpatha', '36001405d363af4e9a69472cbd4711629', 'dm-2', 'data-chunk1'],
    ['mpathb', '36001405b52f5c056b524a9c8633cf2b0', 'dm-3', 'data-chunk1'],
  ]);
  t.deepEqual(maps[0]?.groups.map((g) => [g.group, g.priority, g.state]), [[1, 0, 'enabled'], [2, 50, 'active']]);
  t.deepEqual(maps[0]?.paths.map((p) => [p.dev, p.group, p.state]), [['sdb', 1, 'failed'], ['sdc', 2, 'active']]);
  t.deepEqual(maps[1]?.paths.map((p) => [p.dev, p.hbtl, p.group, p.checker]), [['sdd', '5:0:0:0', 1, 'ready'], ['sde', '6:0:0:0', 2, 'faulty']]);
  t.deepEqual(mapsOutput(maps).map((m) => m.activePaths), [1, 1]);
  t.deepEqual(parseMultipathLl('mpatha (3600) dm-2 LIO-ORG,x\n36001405aa dm-5 LIO-ORG,y\n').map((m) => [m.name, m.wwid]), [['mpatha', '3600'], ['36001405aa', '36001405aa']], 'a map without a friendly name is named by its WWID');
});

test('multipathd show config local: sections, quoted values with blanks and "!" kept, comments dropped', (t) => {
  const conf = parseMultipathConf(mp('show-config-local').stdout);
  t.deepEqual(conf.map((s) => s.name), ['defaults', 'blacklist', 'blacklist_exceptions', 'devices', 'overrides', 'multipaths']);
  const [defaults, blacklist, exceptions, devices, overrides, multipaths] = conf;
  t.is(confValue(defaults, 'polling_interval'), '5');
  t.is(confValue(defaults, 'path_selector'), 'service-time 0');
  t.is(confValue(defaults, 'user_friendly_names'), 'yes');
  t.is(confValue(defaults, 'find_multipaths'), 'off');
  t.is(confValue(defaults, 'prio_args'), '', 'an empty quoted value');
  t.is(confValue(defaults, 'find_multipaths_timeout'), '-10');
  t.is(defaults?.entries.length, 55);
  t.is(confValue(blacklist, 'devnode'), '!^(sd[a-z]|dasd[a-z]|nvme[0-9])', 'a "!" inside quotes is no comment');
  t.is(blacklist?.sections.length, 14);
  t.deepEqual(blacklist?.sections.map((d) => [confValue(d, 'vendor'), confValue(d, 'product')])[0], ['SGI', 'Universal Xport']);
  t.is(confValue(exceptions, 'property'), '(SCSI_IDENT_|ID_WWN)');
  const lio = devices?.sections[0];
  t.deepEqual(lio?.entries.map((e) => [e.key, e.value]), [
    ['vendor', '(LIO-ORG|SUSE)'],
    ['product', '.*'],
    ['path_grouping_policy', 'group_by_prio'],
    ['hardware_handler', '1 alua'],
    ['prio', 'alua'],
    ['failback', 'immediate'],
    ['no_path_retry', '12'],
  ]);
  // So a no_path_retry in defaults (seed 000's 100) never reaches a LIO map: the device entry is nearer the map.
  t.not(confValue(defaults, 'no_path_retry'), confValue(lio, 'no_path_retry'));
  t.deepEqual(overrides, { name: 'overrides', entries: [], sections: [] });
  t.deepEqual(multipaths?.sections[0]?.entries.map((e) => [e.key, e.value]), [['wwid', WWID]], 'the "# alias" line is a comment');
});

// ---------------------------------------------------------------- the gather script, for real under /bin/sh

const service = (name: string): Reply => fixture(`service/${name}`);
const word = (w: string, exitCode = 0): Reply => ({ stdout: `${w}\n`, exitCode });

function gather(t: { teardown(f: () => void): void }, content: string | null, stubs: Record<string, [string, Reply][]>) {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-mp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'multipath.conf');
  if (content !== null) writeFileSync(path, content);
  const stdout = runStubbed(gatherScript(path), { multipath: [], multipathd: [], ...stubs }, dir);
  return parseGather(stdout, path);
}

test('gather: multipathd runs: the maps come from multipathd show maps json', (t) => {
  const f = gather(t, 'defaults {\n\tuser_friendly_names yes\n}\n', {
    systemctl: [['show *', service('running-enabled')], ['is-active multipathd', word('active')]],
    multipathd: [['show maps json', mp('maps-json')]],
  });
  t.is(f.mapsFrom, 'multipathd');
  t.is(f.file.content?.toString(), 'defaults {\n\tuser_friendly_names yes\n}\n');
  t.like(f.service, { activeState: 'active', unitFileState: 'enabled' });
  t.deepEqual(f.maps.map((m) => [m.name, m.paths.length]), [['mpathb', 2]]);
  t.deepEqual(multipathConf.output?.(multipathConf.validate({}), f).maps.map((m) => m.device), ['/dev/mapper/mpathb']);
});

test('gather: multipathd does not answer: multipath -ll; stopped with its socket listening: no maps read (it would start)', (t) => {
  const failing = gather(t, null, {
    systemctl: [['show *', service('running-enabled')], ['is-active multipathd', word('active')]],
    multipathd: [['show maps json', { stdout: '', stderr: 'timeout', exitCode: 1 }]],
    multipath: [['-ll', mp('ll-one-path-failed')]],
  });
  t.is(failing.mapsFrom, 'multipath -ll');
  t.is(failing.file.content, null);
  t.deepEqual(failing.maps[0]?.paths.map((p) => p.state), ['failed', 'active']);
  const socket = gather(t, null, {
    systemctl: [['show *', service('stopped-static')], ['is-active multipathd', word('inactive', 3)], ['is-active multipathd.socket', word('active')]],
    multipath: [['-ll', { stdout: 'must not run', exitCode: 0 }]],
  });
  t.is(socket.mapsFrom, 'none');
  t.deepEqual(socket.maps, []);
  const idle = gather(t, null, {
    systemctl: [['show *', service('stopped-static')], ['is-active multipathd', word('inactive', 3)], ['is-active multipathd.socket', word('inactive', 3)]],
    multipath: [['-ll', mp('ll')]],
  });
  t.is(idle.mapsFrom, 'multipath -ll');
  t.is(idle.maps[0]?.name, 'mpathb');
});

test('gather: multipath-tools missing is a clear error', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-mp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = '/etc/no-such-dir/multipath.conf';
  // No stub for multipath: `command -v multipath` fails on this machine, which has no multipath-tools.
  const stdout = runStubbed(gatherScript(path), { systemctl: [] }, dir);
  t.throws(() => parseGather(stdout, path), { message: 'multipath-tools is not installed (no multipath/multipathd): install it first' });
});
