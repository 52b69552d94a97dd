/**
 * A small real module for runner tests: ensures a file in a directory holds a line. It follows the contract
 * (gather reads the file, plan is pure) so that the runner's semantics are tested on real commands.
 */
import { defineModule, exec, put } from '../../lib/module.ts';
import { sh } from '../../lib/command.ts';

export interface LineParams {
  path: string;
  line: string;
  /** Test hooks: a plan that never converges, or a change marked destructive. */
  buggy?: boolean;
  destructive?: boolean;
  /** Also append to this log file when applying (to observe order across hosts). */
  log?: string;
  secret?: unknown;
  /** gather fails when the file does not exist (as a module editing a package's config file would). */
  mustExist?: boolean;
}

export interface LineFacts {
  lines: string[] | null;
}

export const lineModule = defineModule<LineParams, LineFacts, { lines: number }>({
  name: 'line',
  description: 'test module: a line in a file',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path', 'line'],
    properties: {
      path: { type: 'string', pattern: '^/', description: 'file' },
      line: { type: 'string', description: 'line' },
      buggy: { type: 'boolean', description: 'never converge' },
      destructive: { type: 'boolean', description: 'mark the change destructive' },
      log: { type: 'string', description: 'order log' },
      secret: { secret: true, description: 'a secret' },
      mustExist: { type: 'boolean', description: 'gather fails on a missing file' },
    },
  },
  async gather(conn, params) {
    const r = await conn.exec(sh`cat -- ${params.path} 2>/dev/null || echo @@missing@@`);
    if (params.mustExist && r.stdout === '@@missing@@\n') throw new Error(`${params.path} does not exist`);
    return { lines: r.stdout === '@@missing@@\n' ? null : r.stdout.split('\n').filter(Boolean) };
  },
  plan(params, facts) {
    if (!params.buggy && facts.lines?.includes(params.line)) return [];
    const content = [...(facts.lines ?? []), params.line].join('\n') + '\n';
    const steps = [put(params.path, content)];
    if (params.log) steps.push(exec(sh`date +%s%N >> ${params.log}`));
    return [
      {
        summary: `add "${params.line}" to ${params.path}`,
        steps,
        diff: { label: params.path, before: (facts.lines ?? []).join('\n'), after: content },
        ...(params.destructive ? { destructive: `${params.path} will be rewritten` } : {}),
      },
    ];
  },
  output(_params, facts) {
    return { lines: facts.lines?.length ?? 0 };
  },
});
