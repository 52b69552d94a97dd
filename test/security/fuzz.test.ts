/**
 * Bad input, generated: malformed inventories for playbooks/san.ts (run through the CLI's main(), as
 * `npx tsx playbooks/san.ts -i FILE --check` would) and malformed params for every module (run through
 * runPlaybook). Every case is malformed by construction (a wrong type against the schema, a missing or unknown
 * field, a value the field's pattern or range refuses, a NUL byte, text that is not UTF-8 or not valid Unicode,
 * a YAML error, a huge value). Each must end in one clear error that names the file or the host, and the field
 * where there is one, with no stack trace, and no connection may reach the host the inventory names: a real
 * sshd (the sandbox host: nothing it could run would matter) whose accepted logins are counted.
 */
import test from 'ava';
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { documented } from '../../docs/generate.ts';
import { main } from '../../lib/cli.ts';
import { ConnectionError } from '../../lib/connection/types.ts';
import { UserError } from '../../lib/errors.ts';
import { Inventory } from '../../lib/inventory.ts';
import type { Module } from '../../lib/module.ts';
import { play, playbook } from '../../lib/playbook.ts';
import { runPlaybook } from '../../lib/runner.ts';
import { san } from '../../playbooks/san.ts';
import { startSandboxHost, type SandboxHost } from '../helpers/sandbox-host.ts';
import { setAt } from '../helpers/params-paths.ts';
import { makeTmpDir } from '../helpers/tmpdir.ts';

const STACK = /\n\s+at .+:\d+/;

let host: SandboxHost;
test.before(async () => {
  host = await startSandboxHost();
});
test.after.always(async () => {
  await host?.stop();
});

/** main() of the SAN playbook, its output captured. */
async function cli(argv: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const write = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = ((c: string | Uint8Array) => out.push(String(c)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => err.push(String(c)) > 0) as typeof process.stderr.write;
  try {
    const code = await main(san, argv, 'playbooks/san.ts');
    return { code, stderr: err.join(''), stdout: out.join('') };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

// ---- inventories -----------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

/** Seed 000's inventory (inventory/tp2.yaml's shape), every host on the sandbox sshd. */
function baseInventory(): Obj {
  const at = (ips: string[]): Obj => ({ ansible_host: '127.0.0.1', ansible_port: host.sshd.port, storage_ips: ips });
  return {
    all: {
      vars: {
        ansible_user: host.sshd.user,
        ansible_ssh_private_key_file: host.sshd.clientKeyFile,
        known_hosts_file: host.sshd.knownHostsFile,
        host_key_checking: 'strict',
        become: true,
        san_iqn_prefix: 'iqn.2024-12.tp2.b3',
        san_chap_secret: 'replace-me-0001',
      },
      children: {
        storage: {
          vars: { data_disks: ['/dev/sdb', '/dev/sdc', '/dev/sdd', '/dev/sde', '/dev/sdf', '/dev/sdg'] },
          hosts: { sto1: at(['10.3.1.1', '10.3.2.1']), sto2: at(['10.3.1.2', '10.3.2.2']) },
        },
        chunks: {
          vars: { failover_interface: 'enp0s9' },
          hosts: { chunk1: at(['10.3.1.101', '10.3.2.101']), chunk2: at(['10.3.1.102', '10.3.2.102']), chunk3: at(['10.3.1.103', '10.3.2.103']) },
        },
        master: { hosts: { master: at(['10.3.1.100', '10.3.2.100']) } },
      },
    },
  };
}

const HOSTS = ['sto1', 'sto2', 'chunk1', 'chunk2', 'chunk3', 'master'] as const;
const GROUP_OF: Record<string, string> = { sto1: 'storage', sto2: 'storage', chunk1: 'chunks', chunk2: 'chunks', chunk3: 'chunks', master: 'master' };

function hostVars(inv: Obj, h: string): Obj {
  const all = inv['all'] as { children: Record<string, { hosts: Record<string, Obj> }> };
  return (all.children[GROUP_OF[h] as string] as { hosts: Record<string, Obj> }).hosts[h] as Obj;
}

/** A malformed inventory: the file's bytes, and words the error must contain (besides the file's path). */
interface BadInventory {
  readonly what: string;
  readonly bytes: Buffer;
  readonly mentions: readonly string[];
}

const yamlOf = (o: Obj): Buffer => Buffer.from(stringify(o), 'utf8');
const someHost = fc.constantFrom(...HOSTS);
const hostile = fc.constantFrom('$(touch /tmp/pwned)', '`id`', '; rm -rf /', 'a\nb', '|| true', "'\"", '../../etc/passwd', '*');
const notAPort = fc.oneof(fc.integer({ min: -1_000_000, max: 0 }), fc.integer({ min: 65536, max: 2 ** 40 }), fc.constantFrom(1.5, '22', 'ssh', true, null, [], {}, '', 1e300));
const notAList = fc.constantFrom('10.3.1.1', 42, true, null, {}, { a: 1 });
const badIp = fc.oneof(fc.constantFrom('10.3.1.256', '1.2.3', 'a.b.c.d', '', '10.3.1.1 ', '::1', '10.03.1.1x'), hostile);
const badDisk = fc.oneof(fc.constantFrom('/etc/passwd', 'sdb', '/dev/', '/dev/sd b', 'dev/sdb', '', '/tmp/disk'), hostile.map((h) => `/dev/sdb ${h}`));
const badIqn = fc.oneof(
  fc.constantFrom('iqn.2024-13.tp2.b3', 'IQN.2024-12.tp2.b3', 'iqn.24-12.tp2.b3', 'iqn.2024-12.tp2', 'eui.0123456789abcdef', '', 'iqn.2024-12.TP2.b3'),
  hostile.map((h) => `iqn.2024-12.tp2.b3${h}`),
);
const badSecret = fc.oneof(fc.constantFrom('short', 'x'.repeat(17), 'has space 12345', 'tab\there12345', 42, true, null, ['a']), hostile.map((h) => `abcdefghij${h}`));
const badHostName = fc.constantFrom('bad host', 'h$(id)', 'a'.repeat(300), '-dash', 'ünï', 'a;b', 'a/b', 'h\tt');
const hugeText = fc.integer({ min: 100_000, max: 1_000_000 }).map((n) => 'x'.repeat(n));

const badInventory: fc.Arbitrary<BadInventory> = fc.oneof(
  fc.tuple(someHost, notAPort).map(([h, v]) => {
    const inv = baseInventory();
    hostVars(inv, h)['ansible_port'] = v;
    return { what: `ansible_port ${JSON.stringify(v)}`, bytes: yamlOf(inv), mentions: [h, 'ansible_port'] };
  }),
  fc.tuple(someHost, fc.constantFrom('', 0, [], {}, true)).map(([h, v]) => {
    const inv = baseInventory();
    hostVars(inv, h)['ansible_host'] = v;
    return { what: `ansible_host ${JSON.stringify(v)}`, bytes: yamlOf(inv), mentions: [h, 'ansible_host'] };
  }),
  fc.tuple(someHost, fc.constantFrom('never', 'sometimes', 2, [])).map(([h, v]) => {
    const inv = baseInventory();
    hostVars(inv, h)['host_key_checking'] = v;
    return { what: `host_key_checking ${JSON.stringify(v)}`, bytes: yamlOf(inv), mentions: [h, 'host_key_checking'] };
  }),
  fc.tuple(someHost, fc.oneof(badIp.map((ip) => [ip]), notAList)).map(([h, v]) => {
    const inv = baseInventory();
    hostVars(inv, h)['storage_ips'] = v;
    return { what: `storage_ips ${JSON.stringify(v)}`, bytes: yamlOf(inv), mentions: ['storage_ips'] };
  }),
  fc.constantFrom(...HOSTS).map((h) => {
    const inv = baseInventory();
    delete hostVars(inv, h)['storage_ips'];
    return { what: `${h} without storage_ips`, bytes: yamlOf(inv), mentions: [h, 'storage_ips'] };
  }),
  fc.tuple(fc.constantFrom('sto1', 'sto2'), badDisk, fc.nat(5)).map(([h, d, i]) => {
    const inv = baseInventory();
    const disks = ['/dev/sdb', '/dev/sdc', '/dev/sdd', '/dev/sde', '/dev/sdf', '/dev/sdg'];
    disks[i] = d;
    hostVars(inv, h)['data_disks'] = disks;
    return { what: `data_disks[${i}] ${JSON.stringify(d)}`, bytes: yamlOf(inv), mentions: [h, 'data_disks'] };
  }),
  fc.tuple(someHost, badIqn).map(([h, v]) => {
    const inv = baseInventory();
    hostVars(inv, h)['san_iqn_prefix'] = v;
    return { what: `san_iqn_prefix ${JSON.stringify(v)}`, bytes: yamlOf(inv), mentions: [h, 'san_iqn_prefix'] };
  }),
  fc.tuple(someHost, badSecret).map(([h, v]) => {
    const inv = baseInventory();
    hostVars(inv, h)['san_chap_secret'] = v;
    return { what: 'a bad san_chap_secret', bytes: yamlOf(inv), mentions: [h, 'san_chap_secret'] };
  }),
  fc.tuple(someHost, fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udfffy'), fc.constantFrom('failover_interface', 'ansible_user', 'note')).map(([h, v, k]) => {
    const inv = baseInventory();
    hostVars(inv, h)[k] = v;
    return { what: `${k} with ${JSON.stringify(v)}`, bytes: yamlOf(inv), mentions: [h, k] };
  }),
  fc.tuple(someHost, hugeText).map(([h, v]) => {
    const inv = baseInventory();
    hostVars(inv, h)['san_iqn_prefix'] = `iqn.2024-12.${v}`;
    return { what: `a ${v.length}-character san_iqn_prefix`, bytes: yamlOf(inv), mentions: [h, 'san_iqn_prefix'] };
  }),
  badHostName.map((name) => {
    const inv = baseInventory();
    const hosts = ((inv['all'] as Obj)['children'] as Record<string, { hosts: Obj }>)['master'] as { hosts: Obj };
    hosts.hosts = { [name]: hosts.hosts['master'] };
    return { what: `host name ${JSON.stringify(name)}`, bytes: yamlOf(inv), mentions: ['host name'] };
  }),
  fc.constantFrom('hostz', 'host', 'var', 'childs').map((k) => {
    const inv = baseInventory();
    (((inv['all'] as Obj)['children'] as Obj)['chunks'] as Obj)[k] = { x: 1 };
    return { what: `unknown group key ${k}`, bytes: yamlOf(inv), mentions: ['chunks', k] };
  }),
  fc.constantFrom(0, 1, 2).map((k) => {
    const inv = baseInventory();
    const children = (inv['all'] as Obj)['children'] as Record<string, Obj>;
    if (k === 0) (children['storage'] as Obj)['hosts'] = ['sto1', 'sto2'];
    if (k === 1) (children['chunks'] as Obj)['children'] = { chunks: {} };
    if (k === 2) (children['master'] as Obj)['vars'] = ['a'];
    return { what: ['hosts as a list', 'a group its own child', 'vars as a list'][k] as string, bytes: yamlOf(inv), mentions: [['storage', 'chunks', 'master'][k] as string] };
  }),
  fc.tuple(fc.nat(), fc.constantFrom(Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xe2, 0x82]), Buffer.from([0x80, 0x80]))).map(([n, junk]) => {
    const text = yamlOf(baseInventory());
    const at = text.indexOf(0x0a, n % text.length) + 1 || text.length;
    return { what: `bytes ${junk.toString('hex')} that are not UTF-8`, bytes: Buffer.concat([text.subarray(0, at), Buffer.from('# '), junk, Buffer.from('\n'), text.subarray(at)]), mentions: ['not UTF-8', 'line '] };
  }),
  fc.nat().map((n) => {
    const text = yamlOf(baseInventory());
    const at = n % text.length;
    return { what: `a NUL byte at ${at}`, bytes: Buffer.concat([text.subarray(0, at), Buffer.from([0]), text.subarray(at)]), mentions: ['NUL', 'line '] };
  }),
  fc.tuple(fc.nat(), fc.constantFrom('  x: [unclosed\n', '\tbad: tab\n', 'a: "no end\n', '  - : :\n  ]\n')).map(([n, junk]) => {
    const text = yamlOf(baseInventory());
    const at = text.indexOf(0x0a, n % text.length) + 1 || text.length;
    return { what: `YAML broken by ${JSON.stringify(junk)}`, bytes: Buffer.concat([text.subarray(0, at), Buffer.from(junk), text.subarray(at)]), mentions: [] };
  }),
  fc.constantFrom('', '[]\n', '42\n', 'just text\n', '- a\n- b\n').map((t) => ({ what: `a file of ${JSON.stringify(t)}`, bytes: Buffer.from(t), mentions: [] })),
);

test.serial('600 malformed inventories: each is refused with a clear error naming the file, and no login reaches the host', async (t) => {
  t.timeout(300_000);
  const dir = await makeTmpDir(t, 'sanbook-fuzz-');
  const before = host.sshd.acceptedConnections();
  // The base inventory itself is good: the playbook gets as far as its hosts (a run with no host that answers).
  const good = join(dir, 'good.yaml');
  writeFileSync(good, yamlOf(baseInventory()));
  const inventory = Inventory.fromObject(baseInventory(), good);
  const book = san.build(inventory);
  const r = await runPlaybook(book, { inventory, check: true, connect: async (h) => Promise.reject(new ConnectionError(h.name, 'not connecting in this test')), reporters: [] });
  t.is(r.exitCode, 4, 'the base inventory passes every check and the run reaches its hosts');
  t.is(host.sshd.acceptedConnections(), before);

  let n = 0;
  const kinds = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(badInventory, async (bad) => {
      const file = join(dir, `bad-${n++}.yaml`);
      writeFileSync(file, bad.bytes);
      const { code, stderr, stdout } = await cli(['-i', file, '--check', '--json']);
      const kind = bad.what.replace(/[[\d\]]+|".*|\d+-character/g, '').trim();
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      const why = `${bad.what}: exit ${code}, ${stderr.slice(0, 600)}`;
      t.is(code, 1, why);
      t.true(stderr.startsWith('error: '), why);
      t.false(STACK.test(stderr), `a stack trace: ${why}`);
      t.true(stderr.includes(file), `the file is not named: ${why}`);
      for (const word of bad.mentions) t.true(stderr.includes(word), `"${word}" is not named: ${why}`);
      t.is(stdout, '', `something was printed as if the run started: ${why}`);
    }),
    { numRuns: 600, seed: 20261122 },
  );
  t.is(n, 600);
  t.is(host.sshd.acceptedConnections(), before, 'a malformed inventory reached the host');
  t.log(`600 inventories, ${kinds.size} kinds of damage; logins on the host: ${host.sshd.acceptedConnections() - before}`);
});

// ---- module params -----------------------------------------------------------------------------------------

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  required?: string[];
  items?: SchemaNode;
  additionalProperties?: boolean | SchemaNode;
  pattern?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  anyOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  secret?: unknown;
}

/** The schema of the value at path (undefined where it cannot be known for sure: anyOf, oneOf). */
function schemaAt(schema: SchemaNode, path: (string | number)[]): SchemaNode | undefined {
  let s: SchemaNode | undefined = schema;
  for (const k of path) {
    if (s === undefined || s.anyOf || s.oneOf) return undefined;
    if (typeof k === 'number') s = s.items;
    else s = s.properties?.[k] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
  }
  return s !== undefined && (s.anyOf || s.oneOf) ? undefined : s;
}

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);
const SAMPLES: unknown[] = ['text', 42, 4.5, true, null, ['a'], { a: 1 }];

/** A value of a type the schema does not allow (undefined if every sample is allowed). */
function wrongType(s: SchemaNode): unknown {
  if (s.type === undefined || s.secret !== undefined) return undefined;
  const allowed = new Set(Array.isArray(s.type) ? s.type : [s.type]);
  if (allowed.has('number')) allowed.add('integer');
  return SAMPLES.find((v) => !allowed.has(typeOf(v)) && !(typeOf(v) === 'integer' && allowed.has('number')));
}

/** Strings a pattern refuses: hostile text, an invalid IQN, a device path outside /dev. */
const CANDIDATES = ['$(touch /tmp/pwned)', '; rm -rf /', 'a`id`b', 'line\nbreak', 'iqn.2024-13.bad', '/etc/passwd', 'sdb', '', ' ', 'x'.repeat(5000)];

type Mutation = { what: string; raw: unknown; field: string };

function paths(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  const here = at.length > 0 ? [at] : [];
  if (Array.isArray(value)) return [...here, ...value.flatMap((v, i) => paths(v, [...at, i]))];
  if (value !== null && typeof value === 'object') return [...here, ...Object.entries(value).flatMap(([k, v]) => paths(v, [...at, k]))];
  return here;
}

/** Malformed by construction: each mutation breaks a rule the schema states. */
function mutations(schema: SchemaNode, base: Record<string, unknown>): Mutation[] {
  const out: Mutation[] = [{ what: 'an unknown key', raw: { ...base, zzUnknownKey: 1 }, field: 'zzUnknownKey' }];
  for (const r of schema.required ?? []) if (r in base) out.push({ what: `${r} missing`, raw: setAt(base, [r], undefined), field: r });
  out.push({ what: 'not an object', raw: ['a list'], field: '' });
  for (const p of paths(base)) {
    const s = schemaAt(schema, p);
    const field = String(p[p.length - 1]);
    const v = p.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], base);
    if (typeof v === 'string') {
      out.push({ what: `${p.join('.')} with a NUL byte`, raw: setAt(base, p, `${v}\u0000x`), field });
      out.push({ what: `${p.join('.')} with a lone surrogate`, raw: setAt(base, p, `${v}\ud800`), field });
    }
    if (s === undefined) continue;
    const wrong = wrongType(s);
    if (wrong !== undefined) out.push({ what: `${p.join('.')} of the wrong type (${JSON.stringify(wrong)})`, raw: setAt(base, p, wrong), field });
    if (s.pattern !== undefined) {
      const re = new RegExp(s.pattern, 'u');
      for (const c of CANDIDATES) if (!re.test(c)) out.push({ what: `${p.join('.')} = ${JSON.stringify(c.slice(0, 30))}`, raw: setAt(base, p, c), field });
    }
    if (s.enum !== undefined) out.push({ what: `${p.join('.')} not in its enum`, raw: setAt(base, p, 'no-such-choice'), field });
    if (s.maximum !== undefined) out.push({ what: `${p.join('.')} huge`, raw: setAt(base, p, s.maximum + 1e12), field });
    if (s.minimum !== undefined) out.push({ what: `${p.join('.')} below its minimum`, raw: setAt(base, p, s.minimum - 1), field });
    if (s.maxLength !== undefined) out.push({ what: `${p.join('.')} too long`, raw: setAt(base, p, 'x'.repeat(s.maxLength + 1)), field });
    if (s.type === 'object' && s.additionalProperties === false && typeof v === 'object' && v !== null && !Array.isArray(v)) {
      out.push({ what: `${p.join('.')} with an unknown key`, raw: setAt(base, [...p, 'zzUnknownKey'], 1), field: 'zzUnknownKey' });
    }
  }
  return out;
}

test.serial('malformed params of every module: refused before any host is reached, naming host, task and field', async (t) => {
  t.timeout(300_000);
  const before = host.sshd.acceptedConnections();
  const inventory = Inventory.fromObject(
    {
      all: {
        vars: { ansible_user: host.sshd.user, ansible_ssh_private_key_file: host.sshd.clientKeyFile, known_hosts_file: host.sshd.knownHostsFile },
        hosts: { h1: { ansible_host: '127.0.0.1', ansible_port: host.sshd.port } },
      },
    },
    'fuzz.yaml',
  );
  let cases = 0;
  const perModule: string[] = [];
  for (const m of documented as unknown as Module<unknown, unknown, unknown>[]) {
    const bases = (m.examples ?? []).map((e) => e.params as Record<string, unknown>);
    t.true(bases.length > 0, `${m.name} has no example in its reference`);
    let here = 0;
    for (const base of bases) {
      t.notThrows(() => m.validate(base), `${m.name}: the base params are valid`);
      for (const mutation of mutations(m.schema as SchemaNode, base)) {
        here++;
        const book = playbook({ name: 'fuzz', plays: [play({ name: 'fuzz', hosts: 'all', tasks: [m.task('fuzz', mutation.raw)] })] });
        const why = `${m.name}, ${mutation.what}`;
        const error = await runPlaybook(book, { inventory, reporters: [] }).then(
          () => undefined,
          (e: unknown) => e,
        );
        t.true(error instanceof UserError, `${why}: not refused as a user error (${String(error)})`);
        const message = (error as Error | undefined)?.message ?? '';
        t.true(message.includes('host h1') && message.includes('task "fuzz"'), `${why}: ${message}`);
        if (mutation.field !== '') t.true(message.includes(mutation.field), `${why}: the field is not named: ${message}`);
        t.false(STACK.test(message), `${why}: a stack trace`);
      }
    }
    cases += here;
    perModule.push(`${m.name} ${here}`);
  }
  t.log(`${cases} malformed params: ${perModule.join(', ')}`);
  t.true(cases >= 1000, `only ${cases} cases`);
  t.is(host.sshd.acceptedConnections(), before, 'bad params reached the host');
});
