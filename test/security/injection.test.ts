/**
 * Every string that reaches a command goes through the quoter. For every module of the reference, every string
 * in the params of its reference examples (values and map keys, at any depth) is given hostile text: `$(touch F)`, backticks, `; touch F`,
 * newlines, quotes, pipes, `&&`, `; rm -f CANARY`. Each set of params the module accepts is gathered on a real
 * sshd host (test/helpers/sandbox-host.ts: commands run as nobody, every program but touch, rm and timeout a
 * stub that records its arguments), then planned, and every step of the plan is run there. No marker file may
 * appear and the canary must survive; the stubs' records show the hostile text arriving as plain argument bytes.
 */
import test from 'ava';
import { chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { documented } from '../../docs/generate.ts';
import { Command } from '../../lib/command.ts';
import { putCommand } from '../../lib/connection/put.ts';
import { connectSsh, type SshConnection } from '../../lib/connection/ssh.ts';
import type { Connection } from '../../lib/connection/types.ts';
import { parseHostFacts } from '../../lib/facts.ts';
import type { Module } from '../../lib/module.ts';
import { editAt } from '../helpers/params-paths.ts';
import { startSandboxHost, type SandboxHost } from '../helpers/sandbox-host.ts';

const asRoot = process.getuid?.() === 0;

/** Fields whose string is a script or data by design, not a value put into a command. */
const BY_DESIGN: Record<string, string[]> = { command: ['shell'], query: ['shell'] };

type Path = (string | number)[];
type Leaf = { path: Path; key: boolean };

/** Every string value and every object key below the top level. */
function leaves(value: unknown, path: Path = []): Leaf[] {
  if (typeof value === 'string') return [{ path, key: false }];
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => [...(path.length > 0 ? [{ path: [...path, k], key: true }] : []), ...leaves(v, [...path, k])]);
  }
  return [];
}

function replaced(root: unknown, leaf: Leaf, make: (old: string) => string): unknown {
  if (!leaf.key) return editAt(root, leaf.path, (parent, last) => void (parent[last] = make(parent[last] as string)));
  // A map key: rebuilt in its place, the order of the keys kept.
  return editAt(root, leaf.path, (parent, last) => {
    const entries = Object.entries(parent).map(([k, v]) => (k === last ? [make(k), v] : [k, v]));
    for (const k of Object.keys(parent)) delete parent[k];
    for (const [k, v] of entries) parent[k as string] = v;
  });
}

/** Hostile text: each piece creates its own marker (or removes the canary) if it ever runs. */
function hostile(trap: string, id: string, canary: string): string[] {
  const m = (k: string): string => join(trap, `pwned-${id}-${k}`);
  const loud = [
    `$(touch ${m('a')})`,
    `\`touch ${m('b')}\``,
    `; touch ${m('c')};`,
    `\ntouch ${m('d')}\n`,
    `' ; touch ${m('e')} ; '`,
    `" ; touch ${m('f')} ; "`,
    `| touch ${m('g')}`,
    `&& touch ${m('h')} #`,
    `; rm -f ${canary}`,
  ].join('');
  const quiet = `$(touch\${IFS}${m('i')})\`touch\${IFS}${m('j')}\``; // no spaces, for fields that refuse them
  return [`x${loud}`, loud, quiet];
}

interface Tally {
  cases: number;
  refused: number;
  gathered: number;
  steps: number;
  /** Stub calls that got hostile text as (part of) an argument: it reached a program as plain bytes. */
  literal: number;
  /** Steps that sent hostile text as a file's content (stdin). */
  content: number;
  /** Commands sent to the host (gathers and steps) whose script holds hostile text. */
  sent: number;
}

const isHostileArg = (trap: string) => (a: string): boolean => a.includes(`touch ${trap}/pwned-`) || a.includes('touch${IFS}');

async function attack(m: Module<unknown, unknown, unknown>, bases: readonly Record<string, unknown>[], host: SandboxHost, conn: SshConnection, canary: string, t: import('ava').ExecutionContext): Promise<Tally> {
  const tally: Tally = { cases: 0, refused: 0, gathered: 0, steps: 0, literal: 0, content: 0, sent: 0 };
  const callsBefore = host.calls().length;
  const hostileText = isHostileArg(host.trapDir);
  // The connection the module gets, counting what reaches the host with hostile text in it.
  const counted: Connection = {
    host: conn.host,
    get commandCount() {
      return conn.commandCount;
    },
    exec: (c, o) => {
      if (hostileText(c.script.toString('utf8'))) tally.sent++;
      return conn.exec(c, o);
    },
    put: (path, content, o) => conn.put(path, content, o),
    close: () => conn.close(),
  };
  // A Debian host as root, with systemd (the recorded facts of a container, which has no systemd).
  const facts = { ...parseHostFacts((JSON.parse(readFileSync(new URL('../fixtures/facts/debian12-container.json', import.meta.url), 'utf8')) as { stdout: string }).stdout), systemd: true };
  let n = 0;
  for (const base of bases) {
    for (const leaf of leaves(base)) {
      if (!leaf.key && BY_DESIGN[m.name]?.includes(String(leaf.path[0]))) continue;
      for (const text of hostile(host.trapDir, `${m.name}-${n++}`, canary)) {
        tally.cases++;
        const raw = replaced(base, leaf, (old) => (text.startsWith('x') ? `${old}${text.slice(1)}` : text));
        let params: unknown;
        try {
          params = m.validate(raw);
        } catch (e) {
          tally.refused++;
          const message = (e as Error).message;
          t.false(/\n\s+at /.test(message), `${m.name}: a refusal carries a stack trace: ${message}`);
          continue;
        }
        let gathered: unknown;
        try {
          gathered = await m.gather(counted, params, { host: 'sandbox', facts });
          tally.gathered++;
        } catch {
          continue; // the stubs print nothing: many gathers cannot parse that; their commands ran all the same
        }
        let changes;
        try {
          changes = m.plan(params, gathered);
        } catch (e) {
          tally.refused++; // the plan refuses what the schema cannot see (a LUN naming a backstore not given)
          t.false(/\n\s+at /.test((e as Error).message), `${m.name}: a plan refusal carries a stack trace`);
          continue;
        }
        for (const change of changes) {
          for (const step of change.steps) {
            tally.steps++;
            const command = step.kind === 'exec' ? step.command : putCommand(step.path, step.content, step);
            if (command.stdin !== undefined && hostileText(command.stdin.toString('utf8'))) tally.content++;
            await counted.exec(command).catch(() => undefined);
          }
        }
      }
    }
  }
  tally.literal = host.calls().slice(callsBefore).filter((c) => c.args.some(isHostileArg(host.trapDir))).length;
  return tally;
}

(asRoot ? test : test.skip)('hostile text in every string param of every module never runs on the host', async (t) => {
  t.timeout(300_000);
  const host = await startSandboxHost({ replies: { id: '0\n', lsblk: '{"blockdevices": []}\n' } });
  t.teardown(() => host.stop());
  const conn = await connectSsh(host.sshd.sshOptions({ commandTimeoutMs: 10_000 }));
  t.teardown(() => conn.close());
  const canary = join(host.trapDir, 'canary');
  writeFileSync(canary, 'still here\n');
  chownSync(canary, 65534, 65534);

  // The trap works: the same host runs an unquoted string, and the marker appears.
  const control = join(host.trapDir, 'control');
  await conn.exec(new Command(Buffer.from(`echo x$(touch ${control})`), 'the control: an unquoted $(touch)'));
  t.true(existsSync(control), 'the trap did not catch an unquoted $(touch)');

  const rows: string[] = [];
  let total = 0;
  for (const m of documented as unknown as Module<unknown, unknown, unknown>[]) {
    const examples = (m.examples ?? []).map((e) => e.params as Record<string, unknown>);
    t.true(examples.length > 0, `${m.name}: no params to attack`);
    const tally = await attack(m, examples, host, conn, canary, t);
    total += tally.cases;
    const row = `${m.name}: ${tally.cases} cases, ${tally.refused} refused (schema or plan), ${tally.gathered} gathered, ${tally.steps} steps run; hostile text in ${tally.sent} commands sent, ${tally.content} file contents, ${tally.literal} arguments of stubbed programs`;
    rows.push(row);
    t.log(row);
    // Where the schema let hostile text through, it must have reached the host (else this proved nothing).
    if (tally.refused < tally.cases) t.true(tally.sent + tally.content > 0, `${m.name}: accepted hostile text never reached the host`);
    const pwned = readdirSync(host.trapDir).filter((f) => f.startsWith('pwned-'));
    t.deepEqual(pwned, [], `${m.name}: hostile text ran on the host`);
    t.true(existsSync(canary), `${m.name}: the canary was removed`);
  }
  const literal = host.calls().filter((c) => c.args.some(isHostileArg(host.trapDir)));
  t.log(`${total} cases; ${host.calls().length} stub calls, ${literal.length} of them with hostile text as plain argument bytes`);
  t.is(readFileSync(canary, 'utf8'), 'still here\n');
});
