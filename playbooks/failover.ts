/**
 * The failover test of seed 000 (section 4) on the iSCSI initiators: on each host, write to the mounted
 * multipath volume, cut one storage interface, bring it back, wait for every path to be active again, read every
 * block back (see modules/failover.ts). After the run, one line of figures per host.
 *
 *   npx tsx playbooks/failover.ts -i INVENTORY [--check] [--limit chunk1]
 *
 * Hosts: the `chunks` group, or the host pattern in the FAILOVER_HOSTS environment variable
 * (FAILOVER_HOSTS=chunk2 npx tsx playbooks/failover.ts -i ...). Host variables:
 *   failover_interface     required: the interface to cut (enp0s9), never the one the SSH connection uses
 *   failover_mount         default /mnt/data_chunk1
 *   failover_down_seconds  default 15
 *
 * In check mode nothing runs; the lines printed at the end are the hosts' last results, if any.
 */
import { defineModule, isMain, main, parseCli, play, playbook, type Playbook, type TaskContext } from '../lib/index.ts';
import { failover, type FailoverFacts, type FailoverOutput, type FailoverParams } from '../modules/index.ts';
import { failoverOutput } from '../modules/failover.ts';

export const DEFAULT_MOUNT = '/mnt/data_chunk1';

/** The task's params from the host's variables. */
export function failoverParams(ctx: TaskContext): FailoverParams {
  const v = ctx.vars;
  const down = v['failover_down_seconds'];
  return {
    mount: typeof v['failover_mount'] === 'string' ? v['failover_mount'] : DEFAULT_MOUNT,
    interface: v['failover_interface'] as string,
    ...(typeof down === 'number' ? { downSeconds: down } : {}),
  };
}

/**
 * The playbook on a host pattern, and the outputs of its failover task by host, filled as the hosts finish (the
 * runner's summary holds no task output, so the task's module records it on the way out).
 */
export function failoverPlaybook(hosts = 'chunks'): { book: Playbook; outputs: Map<string, FailoverOutput> } {
  const outputs = new Map<string, FailoverOutput>();
  const recording = defineModule<FailoverParams, FailoverFacts, FailoverOutput>({
    ...failover,
    output(params, facts) {
      const out = failoverOutput(params, facts);
      outputs.set(out.host, out);
      return out;
    },
  });
  const book = playbook({
    name: 'failover',
    description: "seed 000's multipath failover test: cut a storage interface while writing, measure, check every block",
    varsSchema: {
      type: 'object',
      required: ['failover_interface'],
      properties: {
        failover_interface: { type: 'string', minLength: 1, description: 'the network interface to cut (enp0s9)' },
        failover_mount: { type: 'string', pattern: '^/', description: `the mounted multipath volume (default ${DEFAULT_MOUNT})` },
        failover_down_seconds: { type: 'integer', minimum: 1, maximum: 600, description: 'how long the interface stays down (default 15)' },
      },
    },
    plays: [
      play({
        name: 'multipath failover test',
        hosts,
        tasks: [recording.task('cut a storage interface while writing, then check every write', failoverParams)],
      }),
    ],
  });
  return { book, outputs };
}

/** The lines printed after the run: one per host that has figures. */
export function figureLines(outputs: ReadonlyMap<string, FailoverOutput>, check: boolean): string[] {
  if (outputs.size === 0) return [];
  const head = check ? 'FAILOVER last results (check mode: nothing ran now)' : 'FAILOVER figures';
  return [head, ...[...outputs.values()].map((o) => `  ${o.host}: ${o.summary ?? `no result yet (${o.resultFile})`}`)];
}

export const { book: failoverBook, outputs: failoverOutputs } = failoverPlaybook(process.env['FAILOVER_HOSTS'] ?? 'chunks');

if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2);
  process.exitCode = await main(failoverBook, argv, 'playbooks/failover.ts');
  let json = false;
  let check = false;
  try {
    ({ json, check } = parseCli(argv));
  } catch {
    // main() has said what is wrong with the arguments
  }
  if (!json) for (const line of figureLines(failoverOutputs, check)) process.stdout.write(`${line}\n`);
}
