import test from 'ava';
import fc from 'fast-check';
import { homedir, userInfo } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { UserError } from '../lib/errors.ts';
import { Inventory, limitHosts, loadInventory } from '../lib/inventory.ts';
import { expandHostRange } from '../lib/patterns.ts';
import { Secret } from '../lib/secret.ts';
import { decodeText } from '../lib/inventory-file.ts';
import { validateSchema } from '../lib/schema.ts';

/** A fixture's path as the user would type it (relative to the project), which is what messages name. */
const fx = (name: string): string =>
  relative(process.cwd(), fileURLToPath(new URL(`fixtures/inventory/${name}`, import.meta.url)));

const names = (inv: Inventory): string[] => inv.hosts().map((h) => h.name);

async function loadError(name: string): Promise<UserError> {
  const error = await loadInventory(fx(name)).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof UserError)) throw new Error(`expected a UserError loading ${name}, got ${String(error)}`);
  return error;
}

// ---- loading ----------------------------------------------------------------------------------------------

test('loads the lab YAML: hosts in order of first appearance, groups, descendants', async (t) => {
  const inv = await loadInventory(fx('lab.yaml'));
  t.is(inv.source, fx('lab.yaml'));
  t.deepEqual(names(inv), ['master', 'sto1', 'sto2', 'chunk1', 'chunk2', 'chunk3', 'chunk4']);
  t.deepEqual(
    inv.groups().map((g) => g.name),
    ['all', 'storage', 'chunks', 'chunks_ssd', 'chunks_nvme', 'ungrouped'],
  );
  t.deepEqual(inv.group('chunks')?.children, ['chunks_ssd']);
  t.deepEqual(inv.group('chunks')?.hosts, ['sto2', 'chunk1', 'chunk2', 'chunk3', 'chunk4']);
  t.deepEqual(inv.group('storage')?.vars, { raid_level: 1 });
  t.deepEqual(inv.group('ungrouped')?.hosts, ['master']);
  t.is(inv.group('nope'), undefined);
  t.true(inv.hasHost('sto1'));
  t.false(inv.hasHost('sto3'));
  t.deepEqual(inv.host('sto1').vars['storage_ip'], ['10.3.1.1', '10.3.2.1']);
});

test('the groups of a host: every group containing it, ancestors included, all first', async (t) => {
  const inv = await loadInventory(fx('lab.yaml'));
  t.deepEqual(inv.host('sto2').groups, ['all', 'chunks', 'storage', 'chunks_ssd', 'chunks_nvme']);
  t.deepEqual(inv.host('chunk3').groups, ['all', 'chunks', 'chunks_ssd']);
  t.deepEqual(inv.host('master').groups, ['all', 'ungrouped']);
});

test('a top level that is a map of groups, null hosts, a host in several groups, host ranges', async (t) => {
  const inv = await loadInventory(fx('groups.yaml'));
  t.deepEqual(names(inv), ['web1', 'web2', 'db1', 'db2', 'db3']);
  t.deepEqual(inv.host('web1').groups, ['all', 'alpha', 'webservers', 'zeta']);
  t.deepEqual(inv.host('db3').groups, ['all', 'dbservers', 'replicas']);
  t.deepEqual(inv.group('all')?.children, ['webservers', 'zeta', 'alpha', 'dbservers', 'ungrouped']);
  t.is(inv.host('db1').connection.port, 2222);
});

test('host order follows the file even when all: comes after other top-level groups', async (t) => {
  const inv = await loadInventory(fx('all-last.yaml'));
  t.deepEqual(names(inv), ['sto1', 'master']);
  t.is(inv.host('sto1').connection.user, 'root');
});

test('loads JSON', async (t) => {
  const inv = await loadInventory(fx('lab.json'));
  t.deepEqual(names(inv), ['sto1', 'sto2']);
  t.is(inv.host('sto1').connection.port, 2202);
  t.is(inv.host('sto2').vars['raid_level'], 6);
});

test('loads a TS inventory exporting the object shape', async (t) => {
  const inv = await loadInventory(fx('lab.ts'));
  t.deepEqual(names(inv), ['t1', 't2', 't3']);
  t.deepEqual(inv.host('t3').groups, ['all', 'targets']);
  t.is(inv.host('t3').connection.port, 2203);
  t.is(inv.host('t2').connection.user, 'admin');
  t.true(inv.host('t1').connection.password instanceof Secret);
  t.is(inv.host('t1').connection.password?.reveal(), 'ts-inventory-pw');
});

test('loads a TS inventory exporting an Inventory, and a JS one exporting a function', async (t) => {
  const built = await loadInventory(fx('instance.ts'));
  t.is(built.source, 'built in instance.ts');
  t.deepEqual(built.select('built'), ['b1', 'b2']);
  const made = await loadInventory(fx('factory.mjs'));
  t.is(made.host('f1').connection.address, '10.0.0.1');
  t.is(Inventory.fromObject(built, 'x'), built);
});

// ---- precedence -------------------------------------------------------------------------------------------

test('precedence: all < parent < child < host', async (t) => {
  const inv = await loadInventory(fx('precedence.yaml'));
  const h1 = inv.host('h1').vars;
  t.is(h1['level'], 'child');
  t.is(h1['from_all'], 'all');
  t.is(h1['from_parent'], 'parent');
  t.is(inv.host('h2').vars['level'], 'host');
  t.deepEqual(inv.host('h1').groups, ['all', 'aaa', 'parent', 'child']);
});

test('precedence: groups of the same depth merge alphabetically, later wins (not in file order)', async (t) => {
  const inv = await loadInventory(fx('precedence.yaml'));
  t.is(inv.host('h1').vars['same_depth'], 'parent');
  const groups = await loadInventory(fx('groups.yaml'));
  const web1 = groups.host('web1').vars;
  t.is(web1['color'], 'zeta');
  t.true(web1['alpha_only']);
  t.true(web1['zeta_only']);
  t.is(web1['tier'], 'web');
  t.is(groups.host('web2').vars['color'], 'host');
  t.is(groups.host('db3').vars['color'], 'replicas');
  t.is(groups.host('db2').vars['color'], 'dbservers');
});

test('a group or host defined in several places merges its vars, the later definition winning', (t) => {
  const inv = Inventory.fromObject(
    {
      a: { hosts: { h: { x: 1, y: 1 } }, children: { shared: { vars: { s: 'first', t: 'first' } } } },
      b: { hosts: { h: { y: 2 } }, children: { shared: { vars: { t: 'second' }, hosts: { h: null } } } },
    },
    'inline',
  );
  t.deepEqual(inv.group('shared')?.vars, { s: 'first', t: 'second' });
  t.like(inv.host('h').vars, { x: 1, y: 2, s: 'first', t: 'second' });
  t.deepEqual(inv.group('a')?.hosts, ['h']);
});

// ---- patterns ---------------------------------------------------------------------------------------------

test('patterns: all, *, group, host, globs, regex', async (t) => {
  const inv = await loadInventory(fx('lab.yaml'));
  const every = names(inv);
  t.deepEqual(inv.select('all'), every);
  t.deepEqual(inv.select('*'), every);
  t.deepEqual(inv.select('storage'), ['sto1', 'sto2']);
  t.deepEqual(inv.select('chunk3'), ['chunk3']);
  t.deepEqual(inv.select('sto?'), ['sto1', 'sto2']);
  t.deepEqual(inv.select('chunk[1-3]'), ['chunk1', 'chunk2', 'chunk3']);
  // A glob matches group names too (chunks, chunks_ssd, ...), as in Ansible.
  t.deepEqual(inv.select('chunk*'), ['sto2', 'chunk1', 'chunk2', 'chunk3', 'chunk4']);
  t.deepEqual(inv.select('sto[12]'), ['sto1', 'sto2']);
  t.deepEqual(inv.select('chunk[!12s]'), ['chunk3', 'chunk4']);
  t.deepEqual(inv.select('~chunk[34]'), ['chunk3', 'chunk4']);
  t.deepEqual(inv.select('~(mas|sto1)'), ['master', 'sto1']);
  t.deepEqual(inv.select('nothing*'), []);
});

test('patterns: unions, intersections and exclusions, in any written order', async (t) => {
  const inv = await loadInventory(fx('lab.yaml'));
  t.deepEqual(inv.select('chunk4:storage'), ['sto1', 'sto2', 'chunk4']);
  t.deepEqual(inv.select('chunk4,storage'), ['sto1', 'sto2', 'chunk4']);
  t.deepEqual(inv.select('all:!chunks'), ['master', 'sto1']);
  t.deepEqual(inv.select('!chunks:all'), ['master', 'sto1']);
  t.deepEqual(inv.select('!chunks'), ['master', 'sto1']);
  t.deepEqual(inv.select('chunks:&storage'), ['sto2']);
  t.deepEqual(inv.select('&storage:chunks'), ['sto2']);
  t.deepEqual(inv.select('chunks:master:&chunks_ssd:!chunks_nvme'), ['chunk3']);
  t.deepEqual(inv.select('storage,!sto[2]'), ['sto1']);
  t.deepEqual(inv.select('~sto.*:&chunks'), ['sto2']);
  t.deepEqual(inv.select('storage:!storage'), []);
});

test('patterns: a plain name that is neither host nor group is an error with a did-you-mean', async (t) => {
  const inv = await loadInventory(fx('lab.yaml'));
  const file = fx('lab.yaml');
  t.is(
    t.throws(() => inv.select('storag'), { instanceOf: UserError }).message,
    `no host or group named 'storag' in ${file}; did you mean 'storage'?`,
  );
  // A typo in an exclusion must not silently run on the hosts meant to be excluded.
  t.is(
    t.throws(() => inv.select('all:!chnks'), { instanceOf: UserError }).message,
    `no host or group named 'chnks' in ${file}; did you mean 'chunks'?`,
  );
  t.is(t.throws(() => inv.select('zzzzzz'), { instanceOf: UserError }).message, `no host or group named 'zzzzzz' in ${file}`);
  t.throws(() => inv.select(''), { instanceOf: UserError, message: /empty host pattern/ });
  t.throws(() => inv.select('~sto('), { instanceOf: UserError, message: /not a valid regular expression/ });
});

test('limitHosts intersects the play hosts with the limit, keeping their order', async (t) => {
  const inv = await loadInventory(fx('lab.yaml'));
  const play = inv.select('storage:chunks');
  t.deepEqual(limitHosts(inv, play, 'sto2:chunk1:master'), ['sto2', 'chunk1']);
  t.deepEqual(limitHosts(inv, play, '!chunks'), ['sto1']);
  t.deepEqual(limitHosts(inv, play, undefined), play);
  t.deepEqual(limitHosts(inv, play, ''), play);
  t.throws(() => limitHosts(inv, play, 'sto9'), { instanceOf: UserError, message: /no host or group named 'sto9'/ });
});

test('host ranges expand like Ansible', (t) => {
  t.deepEqual(expandHostRange('sto[1:3]'), ['sto1', 'sto2', 'sto3']);
  t.deepEqual(expandHostRange('web[01:05:2].lab'), ['web01.lab', 'web03.lab', 'web05.lab']);
  t.deepEqual(expandHostRange('n[a:b][1:2]'), ['na1', 'na2', 'nb1', 'nb2']);
  t.deepEqual(expandHostRange('plain'), ['plain']);
  t.throws(() => expandHostRange('x[3:1]'), { instanceOf: UserError, message: /ends before it starts/ });
  t.throws(() => expandHostRange('x[a:3]'), { instanceOf: UserError, message: /mixes/ });
});

// ---- connections ------------------------------------------------------------------------------------------

test('connection spec defaults', (t) => {
  const inv = Inventory.fromObject({ all: { hosts: { sto1: null } } }, 'inline');
  t.deepEqual(inv.host('sto1').connection, {
    kind: 'ssh',
    address: 'sto1',
    port: 22,
    user: userInfo().username,
    hostKeyChecking: 'strict',
    knownHostsFile: join(homedir(), '.ssh/known_hosts'),
    become: false,
    connectTimeoutMs: 20_000,
    commandTimeoutMs: 600_000,
    keepaliveIntervalMs: 15_000,
  });
});

test('connection spec: every variable', async (t) => {
  const inv = await loadInventory(fx('connection.yaml'));
  const full = inv.host('full').connection;
  t.like(full, {
    kind: 'ssh',
    address: '10.3.1.5',
    port: 2222,
    user: 'admin',
    privateKeyFile: join(homedir(), '.ssh/lab_ed25519'),
    hostKeyChecking: 'accept-new',
    knownHostsFile: join(homedir(), 'lab/known_hosts'),
    become: 'postgres',
    connectTimeoutMs: 2500,
    commandTimeoutMs: 30_000,
    keepaliveIntervalMs: 5000,
  });
  t.is(full.password?.reveal(), 'hunter2-full');
  const byName = (n: string) => inv.host(n).connection;
  t.is(byName('localhost').kind, 'local');
  t.is(byName('local_explicit').kind, 'local');
  t.is(byName('become_root').become, true);
  t.is(byName('become_root').password?.reveal(), 'sshpass-plain-text');
  t.true(inv.host('become_root').vars['ansible_ssh_pass'] instanceof Secret);
  t.is(byName('become_user_only').become, false);
  t.is(byName('ansible_hkc_off').hostKeyChecking, 'off');
  t.is(byName('hkc_bool_off').hostKeyChecking, 'off');
  t.is(byName('abs_key').privateKeyFile, '/etc/keys/id_rsa');
  t.is(byName('abs_key').hostKeyChecking, 'strict');
});

test('connection spec: localhost with an address is reached over ssh; the most specific setting wins', (t) => {
  const inv = Inventory.fromObject(
    {
      all: {
        vars: { ansible_host_key_checking: false, ansible_become: true },
        hosts: { localhost: { ansible_host: '127.0.0.1', ansible_port: 2201, host_key_checking: 'accept-new' } },
        children: { g: { vars: { ansible_become: 'no', connect_timeout: 1 }, hosts: { other: null } } },
      },
    },
    'inline',
  );
  t.like(inv.host('localhost').connection, { kind: 'ssh', address: '127.0.0.1', port: 2201, hostKeyChecking: 'accept-new', become: true });
  t.like(inv.host('other').connection, { kind: 'ssh', hostKeyChecking: 'off', become: false, connectTimeoutMs: 1000 });
});

test('!secret values are Secrets and never printed', async (t) => {
  const inv = await loadInventory(fx('secrets.yaml'));
  const host = inv.host('t1');
  t.true(host.vars['chap_password'] instanceof Secret);
  t.true(host.vars['ansible_password'] instanceof Secret);
  t.true((host.vars['iscsi'] as Record<string, unknown>)['password'] instanceof Secret);
  t.is(host.connection.password?.reveal(), 'pw-for-t1');
  for (const text of [JSON.stringify(host), JSON.stringify(inv.hosts()), JSON.stringify(inv.groups()), inspect(host, { depth: 9 })]) {
    t.false(text.includes('pw-for-t1'));
    t.false(text.includes('s3cret-chap-pw'));
    t.false(text.includes('nested-secret-pw'));
    t.true(text.includes('***'));
  }
  // A password typed as a plain string is made a Secret too.
  const plain = Inventory.fromObject({ all: { hosts: { h: { ansible_password: 'plain-pw-typed' } } } }, 'inline');
  t.true(plain.host('h').connection.password instanceof Secret);
  t.false(JSON.stringify(plain.host('h')).includes('plain-pw-typed'));
});

// ---- errors: each names the exact place ---------------------------------------------------------------------

test('error: a connection variable out of range names file, host and field', async (t) => {
  const e = await loadError('bad-port.yaml');
  t.is(e.message, `${fx('bad-port.yaml')}, host sto1, field ansible_port: must be <= 65535`);
  t.deepEqual(e.where, { file: fx('bad-port.yaml'), host: 'sto1', field: 'ansible_port' });
  t.false(e.message.includes('    at '));
});

test('error: a bad connection variable in group vars names the group', async (t) => {
  const e = await loadError('group-vars.yaml');
  t.is(e.message, `${fx('group-vars.yaml')}, group all, field ansible_user: must be string`);
});

test('error: hosts written as a list', async (t) => {
  const e = await loadError('hosts-list.yaml');
  t.is(e.message, `${fx('hosts-list.yaml')}, group storage, field hosts: must be object`);
});

test('error: an unknown key at group level', async (t) => {
  const e = await loadError('unknown-key.yaml');
  t.is(e.message, `${fx('unknown-key.yaml')}, group storage, field hostz: is not a known field; did you mean 'hosts'?`);
  const f = t.throws(() => Inventory.fromObject({ g: { raid_level: 1 } }, 'inline'), { instanceOf: UserError });
  t.is(f.message, 'inline, group g, field raid_level: is not a known field (a group holds only hosts, vars and children; variables go under vars)');
});

test('error: a host name that is not a valid host name', async (t) => {
  const e = await loadError('bad-hostname.yaml');
  t.true(e.message.startsWith(`${fx('bad-hostname.yaml')}, group storage, field hosts: 'sto 1' is not a valid host name`), e.message);
  const g = t.throws(() => Inventory.fromObject({ 'bad group': {} }, 'inline'), { instanceOf: UserError });
  t.true(g.message.startsWith(`inline, group all, field children: 'bad group' is not a valid group name`), g.message);
});

test('error: a host given a value that is not a map of vars', async (t) => {
  const e = await loadError('host-value.yaml');
  t.is(e.message, `${fx('host-value.yaml')}, host sto1: must be a map of variables (or empty), not string`);
});

test('error: a host and a group with the same name that mean different hosts', async (t) => {
  const e = await loadError('same-name.yaml');
  t.is(e.message, `${fx('same-name.yaml')}, host storage: is also the name of a group it is not in; a name shared by a host and a group must mean the same hosts`);
});

test('a host may share its name with a group it is in (seed 000: host master in group master)', (t) => {
  const inv = Inventory.fromObject({ all: { children: { master: { hosts: { master: null } }, chunks: { hosts: { chunk1: null } } } } }, 'inline');
  t.deepEqual(inv.select('master'), ['master']);
  t.deepEqual(inv.select('all:!master'), ['chunk1']);
  t.deepEqual(inv.host('master').groups, ['all', 'master']);
});

test('error: a cycle in children', async (t) => {
  const e = await loadError('cycle.yaml');
  t.is(e.message, `${fx('cycle.yaml')}, group storage, field children: cycle among groups: san -> storage -> san`);
  const self = await loadError('self-cycle.yaml');
  t.is(self.message, `${fx('self-cycle.yaml')}, group storage, field children: cycle among groups: storage -> storage`);
});

test('error: a group whose definition contains itself (YAML alias loop, cyclic TS object)', async (t) => {
  const e = await loadError('alias-loop.yaml');
  t.is(e.message, `${fx('alias-loop.yaml')}, group b: its definition contains itself (an alias loop)`);
  const g: Record<string, unknown> = { hosts: { h1: null } };
  g['children'] = { inner: g };
  const f = t.throws(() => Inventory.fromObject({ outer: g }, 'inline'), { instanceOf: UserError });
  t.is(f.message, 'inline, group inner: its definition contains itself (an alias loop)');
});

test('error: YAML syntax, with line and column', async (t) => {
  const e = await loadError('syntax.yaml');
  t.regex(e.message, new RegExp(`^${fx('syntax.yaml')}: line 5, column \\d+: `));
  t.deepEqual(e.where, { file: fx('syntax.yaml') });
  const v = await loadError('vault.yaml');
  t.regex(v.message, /line 4, column 25: Unresolved tag: !vault \(Ansible Vault is not supported/);
});

test('error: a file that is not UTF-8, or holds a NUL, with the line and column of the first bad byte', (t) => {
  const at = (bytes: Buffer): string => {
    const e = t.throws(() => decodeText(bytes, 'inv.yaml'), { instanceOf: UserError });
    return e?.message ?? '';
  };
  t.is(decodeText(Buffer.from('a: é\n'), 'inv.yaml'), 'a: é\n');
  t.is(at(Buffer.from('a: 1\nb: \xff\n', 'latin1')), 'inv.yaml: line 2, column 4: not UTF-8 (the bytes \\xff\\x0a...); save the file as UTF-8');
  // A character cut short is pointed at by its lead byte, also at the very end of the file.
  t.regex(at(Buffer.concat([Buffer.from('héllo: '), Buffer.from([0xe2, 0x82]), Buffer.from(' x')])), /^inv\.yaml: line 1, column 8: not UTF-8 \(the bytes \\xe2\\x82/);
  t.regex(at(Buffer.concat([Buffer.from('x: ok\ny: é'), Buffer.from([0xc3])])), /^inv\.yaml: line 2, column 5: not UTF-8 \(the bytes \\xc3\.\.\.\)/);
  t.is(at(Buffer.from('a: 1\nb: x\0y\n')), 'inv.yaml: line 2, column 5: a NUL byte (is this a text file?)');
});

test('error: a variable whose text no command could carry (a NUL, a lone surrogate) names host and field', (t) => {
  const inv = Inventory.fromObject({ all: { hosts: { h1: { note: 'a\u0000b', good: 'x' } } } }, 'inline');
  const e = t.throws(() => validateSchema({ type: 'object' }, inv.host('h1').vars, { file: 'inline', host: 'h1' }), { instanceOf: UserError });
  t.is(e?.message, 'inline, host h1, field note: contains a NUL byte, which no command argument, path or text file line can carry');
  const k = t.throws(() => validateSchema({ type: 'object' }, { m: { 'k\ud800': 1 } }, {}), { instanceOf: UserError });
  t.is(k?.message, 'field m.k\ud800 (the key): is not valid Unicode text (it holds a lone UTF-16 surrogate)');
});

test('error: invalid JSON, with line and column', async (t) => {
  const e = await loadError('bad.json');
  t.regex(e.message, new RegExp(`^${fx('bad.json')}: line 3, column \\d+: invalid JSON`));
});

test('error: a file that does not exist, or of an unknown type', async (t) => {
  t.is((await loadError('missing.yaml')).message, `${fx('missing.yaml')}: inventory file not found`);
  t.regex((await loadError('lab.ini')).message, /lab\.ini: unsupported inventory type '\.ini'/);
});

test('error: an empty file, and top-level hosts outside any group', async (t) => {
  t.regex((await loadError('empty.yaml')).message, /empty\.yaml: an inventory is a map of groups.*this one is empty$/);
  t.is((await loadError('top-hosts.yaml')).message, `${fx('top-hosts.yaml')}: top-level 'hosts' must be inside a group, such as all: { hosts: ... }`);
});

test('error: a TS inventory that throws, or exports nothing usable', async (t) => {
  t.is((await loadError('throws.ts')).message, `${fx('throws.ts')}: the inventory module failed: cannot reach the CMDB`);
  t.regex((await loadError('nothing.ts')).message, new RegExp(`^${fx('nothing.ts')}: exports nothing usable`));
});

test('error: every problem of a file in one message', async (t) => {
  const e = await loadError('many-errors.yaml');
  t.is(
    e.message,
    [
      `${fx('many-errors.yaml')}: 4 errors:`,
      `  - group all, field ansible_connection: must be one of "ssh", "local"`,
      `  - host sto1, field ansible_port: must be >= 1`,
      `  - host sto2, field connect_timeout: must be > 0`,
      `  - group chunks, field host: is not a known field; did you mean 'hosts'?`,
    ].join('\n'),
  );
});

test('error: host() of an unknown host names it', async (t) => {
  const inv = await loadInventory(fx('lab.yaml'));
  const e = t.throws(() => inv.host('sto3'), { instanceOf: UserError });
  t.is(e.message, `host sto3: not in inventory ${fx('lab.yaml')}; did you mean 'sto1'?`);
});

// ---- properties -------------------------------------------------------------------------------------------

// Few names, so that hosts and groups collide, groups recur (cycles) and some names are invalid.
const someName = fc.constantFrom(
  ...['all', 'web', 'db', 'sto1', 'sto2', 'chunk_1', 'bad name', '1x', 'storage', 'ungrouped', 'localhost'],
  ...['hosts', 'h[1:2]', '__proto__'],
);
const someVars = fc.dictionary(
  fc.constantFrom(
    ...['ansible_port', 'ansible_user', 'ansible_connection', 'ansible_become', 'host_key_checking'],
    ...['ansible_password', 'connect_timeout', 'x', 'y'],
  ),
  fc.oneof(
    ...[fc.integer({ min: -5, max: 70_000 }), fc.string(), fc.boolean(), fc.constant(null)],
    fc.constantFrom('ssh', 'local', 'off', 'yes', 'strict'),
  ),
);
const { group: chaoticGroup } = fc.letrec<{ group: unknown }>((tie) => ({
  group: fc.oneof(
    { maxDepth: 4 },
    fc.constant(null),
    fc.record(
      {
        hosts: fc.option(fc.dictionary(someName, fc.oneof(fc.constant(null), someVars, fc.anything()))),
        vars: fc.option(fc.oneof(someVars, fc.anything())),
        children: fc.option(fc.dictionary(someName, tie('group'))),
        hostz: fc.anything(),
      },
      { requiredKeys: [] },
    ),
    fc.anything(),
  ),
}));

function checkValid(inv: Inventory): void {
  const hosts = names(inv);
  const selected = inv.select('all');
  if (JSON.stringify(selected) !== JSON.stringify(hosts)) throw new Error(`select('all') ${selected} != ${hosts}`);
  if (new Set(selected).size !== selected.length) throw new Error('a host selected twice');
  for (const h of inv.hosts()) {
    if (h.groups[0] !== 'all') throw new Error(`${h.name}: groups ${h.groups} do not start with all`);
    for (const g of h.groups) if (!inv.group(g)?.hosts.includes(h.name)) throw new Error(`${g} misses ${h.name}`);
  }
}

test('property: random nested inventories throw only UserErrors; valid ones are consistent', (t) => {
  let valid = 0;
  fc.assert(
    fc.property(fc.oneof(fc.dictionary(someName, chaoticGroup), fc.record({ all: chaoticGroup }), fc.anything()), (data) => {
      let inv: Inventory;
      try {
        inv = Inventory.fromObject(data, 'random');
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        if (!e.message.startsWith('random')) throw new Error(`the file is not named: ${e.message}`);
        return;
      }
      valid++;
      checkValid(inv);
    }),
    { numRuns: 500 },
  );
  t.true(valid > 10, `only ${valid} valid inventories generated`);
});

test('property: valid nested inventories load; every host is in all and selected once', (t) => {
  // Group names carry their depth, so no cycle can be drawn; host names never collide with group names.
  const hostMap = fc.dictionary(
    fc.constantFrom('h1', 'h2', 'h3', 'sto1', 'web-1.lab'),
    fc.option(fc.record({ ansible_port: fc.integer({ min: 1, max: 65535 }), v: fc.string() })),
  );
  const childName = (depth: number) => fc.constantFrom(`g${depth}a`, `g${depth}b`, `g${depth}c`);
  const groupAt = (depth: number): fc.Arbitrary<unknown> =>
    fc.record(
      {
        hosts: hostMap,
        vars: fc.dictionary(fc.constantFrom('a', 'b', 'ansible_user'), fc.string({ minLength: 1 })),
        children: depth >= 3 ? fc.constant({}) : fc.dictionary(childName(depth + 1), groupAt(depth + 1), { maxKeys: 3 }),
      },
      { requiredKeys: [] },
    );
  fc.assert(
    fc.property(fc.oneof(fc.record({ all: groupAt(0) }), fc.dictionary(childName(1), groupAt(1))), (data) => {
      checkValid(Inventory.fromObject(data, 'valid'));
    }),
    { numRuns: 300 },
  );
  t.pass();
});
