/**
 * moosefs_facts: the state of a MooseFS cluster as its master reports it, for later tasks to read and assert on
 * (read-only: it never plans a change, and runs in check mode too). gather is one round trip:
 * `mfscli -H MASTER -P PORT -n -p -SIN -SCS -SHD -SMB` (master info, chunks by number of copies, chunkservers,
 * their disks, metaloggers; -n: addresses, not names), parsed by mfscli.ts.
 *
 * `wait` makes that round trip a loop on the host: mfscli every 2 s until the cluster has the chunkservers, disks
 * and metaloggers asked for (and every chunk at its goal when healthy is asked), or the timeout; the task then fails
 * naming what is missing. So a playbook waits for "all 3 chunkservers connected" after starting them.
 */
import { raw, sh, type Command } from '../../lib/command.ts';
import { defineModule } from '../../lib/module.ts';
import { MARK, SECTION_FUNCTION, sectionOf, splitSections } from '../blockdev.ts';
import { HOST_PATTERN } from './cfg.ts';
import { allAtGoal, parseMfscli, type MfscliReport } from './mfscli.ts';

export interface MoosefsWait {
  chunkservers?: number;
  disks?: number;
  metaloggers?: number;
  healthy?: boolean;
  timeoutSeconds?: number;
}

export interface MoosefsFactsParams {
  masterHost?: string;
  masterPort?: number;
  wait?: MoosefsWait;
}

export interface MoosefsFacts extends MfscliReport {
  readonly master: { readonly host: string; readonly port: number; readonly reachable: boolean };
  /** Every chunk at its goal (no missing, endangered or undergoal chunk). */
  readonly atGoal: boolean;
}

export function mfscliCommand(p: MoosefsFactsParams): Command {
  return sh`mfscli -H ${p.masterHost ?? 'mfsmaster'} -P ${p.masterPort ?? 9421} -n -p -SIN -SCS -SHD -SMB`;
}

/** The shell test of a wait, on the output in "$out" (cheap counts; the parsed facts are checked again after). */
function waitTest(w: MoosefsWait): Command {
  const count = (prefix: string, n: number | undefined) => (n === undefined ? [] : [sh`[ "$(printf '%s\\n' "$out" | grep -c ${`^${prefix}:`})" -ge ${n} ]`]);
  const tests = [
    sh`printf '%s\\n' "$out" | grep -q '^master info:'`,
    ...count('chunk servers', w.chunkservers),
    ...count('disks', w.disks),
    ...count('metadata backup loggers', w.metaloggers),
    ...(w.healthy ? [sh`! printf '%s\\n' "$out" | grep -Eq '^all chunks matrix:.chunkclass (missing|endangered|undergoal):.[1-9]'`] : []),
  ];
  return tests.slice(1).reduce((all, t) => sh`${all} && ${t}`, tests[0] ?? sh`:`);
}

export function factsGatherScript(p: MoosefsFactsParams): Command {
  const mfscli = mfscliCommand(p);
  const w = p.wait;
  const loop =
    w === undefined
      ? raw(':')
      : sh`deadline=$(( $(date +%s) + ${w.timeoutSeconds ?? 120} ))
while :; do
  out=$(${mfscli} 2>/dev/null)
  if ${waitTest(w)}; then break; fi
  if [ "$(date +%s)" -gt "$deadline" ]; then break; fi
  sleep 2
done`;
  const script = sh`${SECTION_FUNCTION}
if ! command -v mfscli >/dev/null 2>&1; then echo ${`${MARK} missing`}; exit 0; fi
${loop}
sanbook_run mfscli ${mfscli}
:`;
  return w === undefined ? script : script.with({ timeoutMs: ((w.timeoutSeconds ?? 120) + 60) * 1000 });
}

/** What a wait still lacks in these facts ([] when satisfied). */
export function unmet(w: MoosefsWait, f: MoosefsFacts): string[] {
  const out: string[] = [];
  if (!f.master.reachable) out.push(`no working master at ${f.master.host}:${f.master.port}${f.masterError ? ` (${f.masterError})` : ''}`);
  const need = (what: string, n: number | undefined, have: number, list: readonly string[]) => {
    if (n !== undefined && have < n) out.push(`${have} of ${n} ${what}${list.length > 0 ? ` (${list.join(', ')})` : ''}`);
  };
  need('chunkservers connected', w.chunkservers, f.chunkservers.length, f.chunkservers.map((c) => `${c.host}:${c.port}`));
  need('disks', w.disks, f.disks.length, f.disks.map((d) => `${d.chunkserver}:${d.path}`));
  need('metaloggers', w.metaloggers, f.metaloggers.length, f.metaloggers.map((m) => m.host));
  if (w.healthy && !f.atGoal) {
    const c = f.classes;
    out.push(c === null ? 'no chunk counts from the master' : `chunks not at their goal: ${c.missing} missing, ${c.endangered} endangered, ${c.undergoal} undergoal`);
  }
  return out;
}

export function parseFactsGather(stdout: string, p: MoosefsFactsParams, host: string): MoosefsFacts {
  if (stdout.split('\n').includes(`${MARK} missing`)) throw new Error(`moosefs_facts: package moosefs-cli is not installed on ${host} (no mfscli): install it first (package module)`);
  const s = sectionOf(splitSections(stdout), 'mfscli', 'moosefs_facts');
  if (s.exitCode !== 0) throw new Error(`moosefs_facts: mfscli failed on ${host} (exit ${s.exitCode}): ${s.stderr || s.stdout.trim()}`);
  const report = parseMfscli(s.stdout);
  const facts: MoosefsFacts = {
    ...report,
    master: { host: p.masterHost ?? 'mfsmaster', port: p.masterPort ?? 9421, reachable: report.masterError === null && report.info !== null },
    atGoal: allAtGoal(report),
  };
  const problems = p.wait === undefined ? [] : unmet(p.wait, facts);
  if (problems.length > 0) {
    throw new Error(`moosefs_facts: after waiting up to ${p.wait?.timeoutSeconds ?? 120} s on ${host}, master ${facts.master.host}:${facts.master.port}: ${problems.join('; ')}`);
  }
  return facts;
}

export const moosefsFacts = defineModule<MoosefsFactsParams, MoosefsFacts>({
  name: 'moosefs_facts',
  description:
    'Read-only: the cluster as its master reports it (mfscli: chunkservers, disks, metaloggers, space, chunks by number of copies), optionally waiting until N chunkservers are connected and every chunk is at its goal. Never changes anything.',
  examples: [
    { title: 'Wait for the 3 chunkservers of seed 000 and every chunk at its goal', params: { masterHost: '10.3.1.100', wait: { chunkservers: 3, healthy: true, timeoutSeconds: 300 } } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      masterHost: { type: 'string', pattern: HOST_PATTERN, default: 'mfsmaster', description: 'The master asked (mfscli -H), from the host the task runs on.' },
      masterPort: { type: 'integer', minimum: 1, maximum: 65535, default: 9421, description: 'The master\'s port for clients and tools (mfscli -P).' },
      wait: {
        type: 'object',
        additionalProperties: false,
        description: 'Ask again every 2 s (on the host, in the same round trip) until all of these hold, or fail after timeoutSeconds naming what is missing.',
        properties: {
          chunkservers: { type: 'integer', minimum: 0, description: 'At least this many chunkservers connected.' },
          disks: { type: 'integer', minimum: 0, description: 'At least this many disks reported by the chunkservers.' },
          metaloggers: { type: 'integer', minimum: 0, description: 'At least this many metaloggers connected.' },
          healthy: { type: 'boolean', description: 'Every chunk has as many copies as its goal (none missing, endangered or undergoal).' },
          timeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 120, description: 'How long to wait.' },
        },
      },
    },
  },
  async gather(conn, params, ctx) {
    const r = await conn.exec(factsGatherScript(params));
    if (r.exitCode !== 0) throw new Error(`moosefs_facts: reading the cluster failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseFactsGather(r.stdout, params, ctx.host);
  },
  plan: () => [],
});
