/**
 * query: run a read-only command during gather and hand its output to later tasks
 * (`ctx.result(task)` -> `{ exitCode, stdout, stderr }`).
 *
 * It never plans a change, so it never reports changed, and it runs in check mode too: the command MUST NOT
 * change the host (cat, ls, lsblk, iscsiadm -m session, ...). Use `command` for anything that writes.
 */
import { defineModule } from '../lib/module.ts';
import { buildCommand, runSpecSchema, type RunSpec } from './command.ts';

export type QueryParams = RunSpec;

export interface QueryOutput {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export const query = defineModule<QueryParams, QueryOutput>({
  name: 'query',
  description:
    'Run a read-only command and expose { exitCode, stdout, stderr } to later tasks. Runs in check mode too: it must not change the host.',
  examples: [
    { title: 'Read a value other tasks use (never a change)', params: { argv: ['cat', '/etc/iscsi/initiatorname.iscsi'] } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    // Exactly one of argv and shell: the schema asks for one, buildCommand/gather refuse both.
    anyOf: [{ properties: { argv: true }, required: ['argv'] }, { properties: { shell: true }, required: ['shell'] }],
    properties: { ...runSpecSchema },
  },
  async gather(conn, params) {
    const command = buildCommand(params);
    const r = await conn.exec(command);
    if (r.timedOut || !command.okCodes.includes(r.exitCode)) {
      const why = r.timedOut ? 'timed out' : `exited ${r.exitCode}`;
      throw new Error(`query \`${command.display}\` ${why}: ${r.stderr.trim() || r.stdout.trim() || '(no output)'}`);
    }
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  },
  plan: () => [],
});
