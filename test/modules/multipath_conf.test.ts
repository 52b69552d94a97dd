/**
 * multipath_conf: the rendering (seed 000's defaults round-trip, quoting), the plan against recorded facts
 * (converged, create/update with the check-then-rename step, reload or handler, service enabled/started, what the
 * file does to live maps), and the check-then-rename script run by /bin/sh with unshare stubbed (no mount and
 * no multipath run on this machine).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quote } from '../../lib/command.ts';
import type { Change } from '../../lib/module.ts';
import { fixture } from '../helpers/blockdev-stubs.ts';
import { parseFileContent } from '../../modules/copy.ts';
import { parseSystemctlShow } from '../../modules/service.ts';
import {
  formatValue,
  installCommand,
  multipathConf,
  parseMapsJson,
  parseMultipathConf,
  renderMultipathConf,
  tokenize,
  type MultipathConfFacts,
} from '../../modules/multipath_conf.ts';

const WWID = '360014058773caba49b74f72b95652784';
const PATH = '/etc/multipath.conf';
const entries = (text: string) => parseMultipathConf(text).map((s) => [s.name, s.entries.map((e) => [e.key, e.value]), s.sections.map((x) => [x.name, x.entries.map((e) => [e.key, e.value])])]);

// Seed 000 (chunk1, `grep -A 5 'defaults {' /etc/multipath.conf`): the block the author wrote.
const SEED_DEFAULTS = `defaults {
  user_friendly_names yes
  find_multipaths yes
  path_grouping_policy failover
  features "1 queue_if_no_path"
  no_path_retry 100
}
`;
const seedParams = { defaults: { user_friendly_names: true, find_multipaths: 'yes', path_grouping_policy: 'failover', features: '1 queue_if_no_path', no_path_retry: 100 } };
const LIO = { vendor: 'LIO-ORG', product: '.*', hardware_handler: '1 alua', prio: 'alua', path_grouping_policy: 'group_by_prio', failback: 'immediate', no_path_retry: 12 };

test("render: seed 000's defaults block round-trips (same keywords, same values, same lines)", (t) => {
  const text = renderMultipathConf(multipathConf.validate(seedParams));
  t.deepEqual(entries(text), entries(SEED_DEFAULTS));
  t.true(text.includes('\n\ndefaults {\n\tuser_friendly_names yes\n\tfind_multipaths yes\n\tpath_grouping_policy failover\n\tfeatures "1 queue_if_no_path"\n\tno_path_retry 100\n}\n'), text);
  t.regex(text, /^# Managed by sanbook/);
});

test('render: values with blanks, regexes and quotes are quoted; booleans yes/no; numbers and words bare', (t) => {
  t.is(formatValue('path_selector', 'service-time 0'), '"service-time 0"');
  t.is(formatValue('prio_args', ''), '""');
  t.is(formatValue('devnode', '^nvme'), '"^nvme"');
  t.is(formatValue('vendor', 'LIO-ORG'), '"LIO-ORG"', 'a regex keyword is always quoted');
  t.is(formatValue('product', 'say "hi"'), '"say ""hi"""', 'a quote is doubled, as multipath reads it');
  t.is(formatValue('prio', 'alua'), 'alua');
  t.is(formatValue('user_friendly_names', false), 'no');
  t.is(formatValue('no_path_retry', 12), '12');
  t.is(formatValue('alias_prefix', 'a#b'), '"a#b"', '# outside quotes would start a comment');
  const text = renderMultipathConf(
    multipathConf.validate({
      defaults: { path_selector: 'round-robin 0', extra: { log_checker_err: 'once', ghost_delay: 5, strict_timing: true } },
      blacklist: { devnode: ['!^(sd[a-z]|nvme[0-9])', '^hd'], wwid: ['^0QEMU'], device: [{ vendor: 'QEMU', product: 'QEMU HARDDISK' }] },
      blacklistExceptions: { property: ['(SCSI_IDENT_|ID_WWN)'] },
      devices: [LIO],
      multipaths: [{ wwid: WWID, alias: 'data_chunk1', extra: { reservation_key: 'file' } }],
    }),
  );
  t.deepEqual(entries(text), [
    ['defaults', [['path_selector', 'round-robin 0'], ['log_checker_err', 'once'], ['ghost_delay', '5'], ['strict_timing', 'yes']], []],
    ['blacklist', [['devnode', '!^(sd[a-z]|nvme[0-9])'], ['devnode', '^hd'], ['wwid', '^0QEMU']], [['device', [['vendor', 'QEMU'], ['product', 'QEMU HARDDISK']]]]],
    ['blacklist_exceptions', [['property', '(SCSI_IDENT_|ID_WWN)']], []],
    ['devices', [], [['device', [['vendor', 'LIO-ORG'], ['product', '.*'], ['path_grouping_policy', 'group_by_prio'], ['prio', 'alua'], ['hardware_handler', '1 alua'], ['failback', 'immediate'], ['no_path_retry', '12']]]]],
    ['multipaths', [], [['multipath', [['wwid', WWID], ['alias', 'data_chunk1'], ['reservation_key', 'file']]]]],
  ]);
  t.true(text.includes('\tdevnode "!^(sd[a-z]|nvme[0-9])"\n'));
  t.true(text.includes('\t\thardware_handler "1 alua"\n'));
});

test("render: overrides come after devices; they take a device entry's settings but no vendor, product or hardware_handler", (t) => {
  // Seed 000's no_path_retry 100 in defaults lost to the built-in LIO-ORG entry (no_path_retry 12, see the recorded
  // `multipathd show config local`); in overrides it beats every device entry.
  const text = renderMultipathConf(multipathConf.validate({ defaults: { user_friendly_names: true }, devices: [LIO], overrides: { no_path_retry: 100, extra: { dev_loss_tmo: 'infinity' } } }));
  t.deepEqual(entries(text).map((s) => s[0]), ['defaults', 'devices', 'overrides']);
  t.deepEqual(entries(text)[2], ['overrides', [['no_path_retry', '100'], ['dev_loss_tmo', 'infinity']], []]);
  t.notThrows(() => multipathConf.validate({ overrides: { no_path_retry: 'queue' } }));
  t.throws(() => multipathConf.validate({ overrides: { vendor: 'LIO-ORG' } }), { message: /overrides/ });
  t.throws(() => multipathConf.validate({ overrides: { hardware_handler: '1 alua' } }), { message: /overrides/ });
  t.throws(() => multipathConf.validate({ overrides: { no_path_retry: 'forever' } }), { message: /no_path_retry/ });
});

test('render: empty sections are left out; a keyword typed and in extra, a WWID twice, an alias twice are errors', (t) => {
  t.false(renderMultipathConf(multipathConf.validate({})).includes('{'));
  t.false(renderMultipathConf(multipathConf.validate({ blacklist: {}, devices: [] })).includes('{'));
  t.throws(() => renderMultipathConf(multipathConf.validate({ defaults: { prio: 'alua', extra: { prio: 'const' } } })), { message: /prio is given twice/ });
  t.throws(() => renderMultipathConf(multipathConf.validate({ multipaths: [{ wwid: WWID }, { wwid: WWID }] })), { message: /listed twice/ });
  t.throws(() => renderMultipathConf(multipathConf.validate({ multipaths: [{ wwid: WWID, alias: 'a' }, { wwid: '3600b', alias: 'a' }] })), { message: /alias a is given to two WWIDs/ });
  t.throws(() => multipathConf.validate({ defaults: { path_grouping_policy: 'round-robin' } }));
  t.throws(() => multipathConf.validate({ defaults: { features: 'queue_if_no_path' } }), undefined, 'features start with their count');
  t.throws(() => multipathConf.validate({ devices: [{ vendor: 'LIO-ORG' }] }), undefined, 'a device needs vendor and product');
  t.throws(() => multipathConf.validate({ defaults: { alias_prefix: 'a\nb' } }), undefined, 'no line breaks in values');
});

test('tokenize: as multipath reads a line', (t) => {
  t.deepEqual(tokenize('\tfeatures "1 queue_if_no_path" # why'), ['features', '"1 queue_if_no_path"']);
  t.deepEqual(tokenize('devnode "!^sd" ! comment'), ['devnode', '"!^sd"']);
  t.deepEqual(tokenize('defaults{'), ['defaults', '{']);
  t.deepEqual(tokenize('product "a ""b"""'), ['product', '"a "b""']);
  t.deepEqual(tokenize('# alias "mpathb"'), []);
  t.throws(() => parseMultipathConf('defaults {\n'), { message: /not closed/ });
  t.throws(() => parseMultipathConf('}\n'), { message: /unmatched/ });
});

// ---------------------------------------------------------------- plan

const running = parseSystemctlShow(fixture('service/running-enabled').stdout, 'multipathd.service');
const stopped = parseSystemctlShow(fixture('service/stopped-static').stdout, 'multipathd.service');
const file = (text: string | null) => parseFileContent(PATH, text === null ? 'absent\n' : `644\t0\t0\troot\troot\t${Buffer.byteLength(text)}\tregular file\n${Buffer.from(text).toString('base64')}`);
const facts = (text: string | null, over: Partial<MultipathConfFacts> = {}): MultipathConfFacts => ({
  file: file(text),
  service: running,
  maps: parseMapsJson(fixture('multipath/maps-json').stdout),
  mapsFrom: 'multipathd',
  ...over,
});
const summaries = (c: readonly Change[]) => c.map((x) => x.summary);
const steps = (c: readonly Change[]) => c.flatMap((x) => x.steps.map((s) => (s.kind === 'exec' ? s.command.display : `put ${s.path}`)));

test('plan: converged when the file holds the rendering and multipathd runs enabled', (t) => {
  const p = multipathConf.validate({ ...seedParams, devices: [LIO] });
  t.deepEqual(multipathConf.plan(p, facts(renderMultipathConf(p))), []);
});

test('plan: a new file is written next to it, checked, renamed, then multipathd reconfigured', (t) => {
  const p = multipathConf.validate(seedParams);
  const changes = multipathConf.plan(p, facts(null));
  t.deepEqual(summaries(changes), [`create ${PATH} (checked with multipath -t; then multipathd reconfigure)`]);
  t.deepEqual(steps(changes), [`put ${PATH}.sanbook-new`, `multipath -t with ${PATH}.sanbook-new as ${PATH}, then mv ${PATH}.sanbook-new ${PATH}`, 'systemctl reload multipathd']);
  const put = changes[0]?.steps[0];
  t.true(put?.kind === 'put' && put.content === renderMultipathConf(p) && put.mode === 0o644 && put.owner === 'root');
  t.deepEqual(changes[0]?.diff, { label: PATH, before: '', after: renderMultipathConf(p) });
});

test('plan: reload false leaves the reconfigure to a handler; a stopped, disabled multipathd is enabled and started (it reads the file)', (t) => {
  const p = multipathConf.validate({ ...seedParams, reload: false });
  const handler = multipathConf.plan(p, facts(SEED_DEFAULTS));
  t.deepEqual(summaries(handler), [`update ${PATH} (checked with multipath -t; not applied: reload is false, notify a handler)`]);
  t.false(steps(handler).includes('systemctl reload multipathd'));
  t.deepEqual(handler[0]?.diff?.before, SEED_DEFAULTS);
  const off = multipathConf.plan(multipathConf.validate(seedParams), facts(SEED_DEFAULTS, { service: { ...stopped, unitFileState: 'disabled' } }));
  t.deepEqual(summaries(off), [`update ${PATH} (checked with multipath -t; multipathd reads it when it starts)`, 'enable multipathd (disabled)', 'start multipathd (inactive)']);
  t.deepEqual(steps(off).slice(2), ['systemctl enable multipathd', 'systemctl start multipathd']);
});

test('plan: what the new file does to the live map mpathb: renamed by an alias, or blacklisted (not with an exception)', (t) => {
  const alias = multipathConf.plan(multipathConf.validate({ multipaths: [{ wwid: WWID, alias: 'data_chunk1' }] }), facts(null));
  t.regex(alias[0]?.summary ?? '', new RegExp(`: map mpathb \\(${WWID}\\) becomes /dev/mapper/data_chunk1$`));
  const old = renderMultipathConf(multipathConf.validate({ multipaths: [{ wwid: WWID, alias: 'mpathb' }] }));
  t.regex(multipathConf.plan(multipathConf.validate({}), facts(old))[0]?.summary ?? '', /: map mpathb \(3600\S+\) loses its alias$/);
  const bl = (p: object) => multipathConf.plan(multipathConf.validate(p), facts(null))[0]?.summary ?? '';
  t.regex(bl({ blacklist: { wwid: ['^36001405'] } }), /map mpathb \(\S+\) is blacklisted: multipathd removes it once nothing holds it open$/);
  t.regex(bl({ blacklist: { device: [{ vendor: 'LIO-ORG', product: 'data' }] } }), /is blacklisted/);
  t.regex(bl({ blacklist: { devnode: ['^sd[b-c]'] } }), /is blacklisted/, 'every path of the map is blacklisted');
  t.notRegex(bl({ blacklist: { devnode: ['^sdb'] } }), /blacklisted/, 'sdc still carries it');
  t.notRegex(bl({ blacklist: { wwid: ['.*'] }, blacklistExceptions: { wwid: [WWID] } }), /blacklisted/);
  t.notRegex(bl({ multipaths: [{ wwid: WWID, alias: 'mpathb' }] }), /becomes/);
});

test('plan: refuses a symbolic link, a masked multipathd, a unit systemd does not know', (t) => {
  const p = multipathConf.validate({});
  t.throws(() => multipathConf.plan(p, facts(null, { file: parseFileContent(PATH, 'link\t/etc/mp.conf\n') })), { message: `${PATH} is a symbolic link to /etc/mp.conf: give the real file's path` });
  const masked = parseSystemctlShow(fixture('service/masked').stdout, 'multipathd');
  t.throws(() => multipathConf.plan(p, facts(null, { service: masked })), { message: /masked: unmask it first/ });
  const missing = parseSystemctlShow(fixture('service/not-found').stdout, 'multipathd');
  t.throws(() => multipathConf.plan(p, facts(null, { service: missing })), { message: /not known to systemd/ });
});

// ---------------------------------------------------------------- the check-then-rename script

/** Run installCommand under /bin/sh with `unshare` replaced by a function: it records its arguments, prints ERR, returns RC. */
function install(t: { teardown(f: () => void): void }, old: string | null, err: string, rc = 0) {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-mpinst-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'multipath.conf');
  const tmp = `${conf}.sanbook-new`;
  if (old !== null) writeFileSync(conf, old);
  writeFileSync(tmp, 'defaults {\n\tpolling_interval 5\n}\n');
  const stub = `unshare() { printf '%s\\n' "$@" > ${quote(join(dir, 'args'))}; printf '%s' ${quote(err)} >&2; return ${rc}; }`;
  const r = spawnSync('/bin/sh', ['-c', `${stub}\n${installCommand(tmp, conf).script.toString()}`], { encoding: 'utf8' });
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : null);
  return { status: r.status, stderr: r.stderr, conf: read(conf), tmp: read(tmp), args: read(join(dir, 'args'))?.split('\n').slice(0, -1), confPath: conf, tmpPath: tmp };
}

test('install: multipath -t silent and exit 0: the new file replaces the old; -t ran on it bind-mounted over the real path', (t) => {
  const r = install(t, 'old\n', '');
  t.is(r.status, 0, r.stderr);
  t.is(r.conf, 'defaults {\n\tpolling_interval 5\n}\n');
  t.is(r.tmp, null);
  t.deepEqual(r.args, ['--mount', '--propagation', 'private', '/bin/sh', '-c', 'mount --bind "$1" "$2" && exec multipath -v1 -t', 'sh', r.tmpPath, r.confPath]);
});

test('install: a complaint of multipath -t refuses the file with its words; the old file stays, the new one goes', (t) => {
  const msg = '/etc/multipath.conf line 2, invalid keyword in the defaults section: polling_intervall';
  const r = install(t, 'old\n', msg);
  t.is(r.status, 1);
  t.is(r.conf, 'old\n');
  t.is(r.tmp, null);
  t.is(r.stderr, `multipath -t refused the new ${r.confPath} (exit 0), which is left as it was:\n${msg}\n`);
  const failed = install(t, 'old\n', '', 1);
  t.is(failed.status, 1, 'a non-zero exit alone refuses it too');
  t.is(failed.conf, 'old\n');
});

test('install: with no file yet, the empty stand-in made for the bind mount is removed again on refusal', (t) => {
  const refused = install(t, null, 'error parsing config file', 1);
  t.is(refused.status, 1);
  t.is(refused.conf, null);
  t.is(refused.tmp, null);
  const ok = install(t, null, '');
  t.is(ok.status, 0);
  t.is(ok.conf, 'defaults {\n\tpolling_interval 5\n}\n');
});
