/**
 * command: run a program (argv, every word quoted) or an author-written shell script (run as is, like
 * Ansible's shell module).
 *
 * With `creates` or `removes` it converges: it runs only while the path is missing (creates) or present
 * (removes), and after it ran the path must be there (or gone). Without them it is an action: planned every
 * time, reported as changed every time.
 */
import { cmd, raw, sh, type Command } from '../lib/command.ts';
import { defineModule, exec } from '../lib/module.ts';
import type { Secret } from '../lib/secret.ts';
import { pathSchema } from './file.ts';

/** What runs: argv or shell, and how (shared with query). */
export interface RunSpec {
  /** The program and its arguments; each word is quoted. A Secret word is passed as is and shown as ***. */
  argv?: (string | Secret)[];
  /** A POSIX sh script written by the playbook's author, run as is. */
  shell?: string;
  /** Change to this directory first. */
  chdir?: string;
  stdin?: string | Secret;
  /** Exit codes that mean success (default [0]). */
  okCodes?: number[];
}

export interface CommandParams extends RunSpec {
  creates?: string;
  removes?: string;
}

export interface CommandFacts {
  /** Whether `creates` exists (null: not asked). */
  readonly createsExists: boolean | null;
  /** Whether `removes` exists (null: not asked). */
  readonly removesExists: boolean | null;
}

/** Schema properties shared with query. */
export const runSpecSchema = {
  argv: {
    type: 'array',
    minItems: 1,
    items: { anyOf: [{ type: 'string' }, { secret: true }] },
    description:
      "The program and its arguments, one word each (quoted for the shell: no shell syntax applies). A word may be a Secret: it is shown as *** (it is still on the program's command line, so briefly visible in the host's process list; prefer stdin).",
  },
  shell: {
    type: 'string',
    minLength: 1,
    description:
      'A POSIX sh script written by the playbook author, run as is (pipes, redirections, variables). Never build it from untrusted values: use argv for those.',
  },
  chdir: { ...pathSchema, description: 'Absolute path of the directory to run in.' },
  stdin: {
    anyOf: [{ type: 'string' }, { secret: true }],
    description: 'Text written to the standard input (may be a Secret; stdin is never displayed).',
  },
  okCodes: {
    type: 'array',
    minItems: 1,
    items: { type: 'integer', minimum: 0, maximum: 255 },
    description: 'Exit codes that mean success (default [0]).',
  },
} as const;

/** The Command a RunSpec describes. */
export function buildCommand(spec: RunSpec): Command {
  if (spec.argv !== undefined && spec.shell !== undefined) throw new Error('give argv or shell, not both');
  let body: Command;
  if (spec.argv !== undefined) {
    const [program, ...args] = spec.argv;
    if (program === undefined) throw new Error('argv must name a program');
    body = cmd(program, ...args);
    if (spec.chdir !== undefined) body = sh`cd -- ${spec.chdir} || exit 1
exec ${body}`;
  } else if (spec.shell !== undefined) {
    body = spec.chdir !== undefined ? sh`cd -- ${spec.chdir} || exit 1
${raw(spec.shell)}` : sh`${raw(spec.shell)}`;
  } else {
    throw new Error('give argv or shell');
  }
  return body.with({
    ...(spec.stdin !== undefined ? { stdin: spec.stdin } : {}),
    ...(spec.okCodes !== undefined ? { okCodes: spec.okCodes } : {}),
  });
}

/** A one-line description of what runs, for summaries (secrets never appear: stdin is not shown). */
export function describeRun(spec: RunSpec): string {
  const text = spec.argv !== undefined ? cmd(spec.argv[0] ?? '', ...spec.argv.slice(1)).display : (spec.shell ?? '');
  const lines = text.split('\n');
  const first = lines.length > 1 ? `${lines[0] ?? ''} ...` : text;
  return spec.chdir !== undefined ? `${first} (in ${spec.chdir})` : first;
}

export const command = defineModule<CommandParams, CommandFacts>({
  name: 'command',
  description:
    'Run a program or an author-written shell script; with creates/removes it runs only until the path exists/is gone, without them it runs every time (an action).',
  examples: [
    { title: 'Initialise once: runs until the file it creates exists', params: { argv: ['mfsmaster', '-a'], chdir: '/var/lib/mfs', creates: '/var/lib/mfs/metadata.mfs' } },
    { title: 'A program fed a secret on stdin (never shown)', params: { argv: ['chpasswd'], stdin: 'app:s3cret-pass' } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    // Exactly one of argv and shell: the schema asks for one, buildCommand/gather refuse both.
    anyOf: [{ properties: { argv: true }, required: ['argv'] }, { properties: { shell: true }, required: ['shell'] }],
    properties: {
      ...runSpecSchema,
      creates: { ...pathSchema, description: 'Absolute path: run only while it does not exist; the command must create it.' },
      removes: { ...pathSchema, description: 'Absolute path: run only while it exists; the command must remove it.' },
    },
  },
  readAhead: true,
  async gather(conn, params) {
    buildCommand(params); // refuses argv + shell before anything runs
    if (params.creates === undefined && params.removes === undefined) return { createsExists: null, removesExists: null };
    const c = params.creates ?? '';
    const r = params.removes ?? '';
    const res = await conn.exec(sh`if [ -n ${c} ] && { [ -e ${c} ] || [ -L ${c} ]; }; then echo creates; fi
if [ -n ${r} ] && { [ -e ${r} ] || [ -L ${r} ]; }; then echo removes; fi`);
    if (res.exitCode !== 0) throw new Error(`cannot test creates/removes: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
    const seen = res.stdout.split('\n');
    return {
      createsExists: params.creates === undefined ? null : seen.includes('creates'),
      removesExists: params.removes === undefined ? null : seen.includes('removes'),
    };
  },
  plan(params, facts) {
    if (facts.createsExists === true || facts.removesExists === false) return [];
    const run = buildCommand(params);
    const converges = params.creates !== undefined || params.removes !== undefined;
    const why =
      params.creates !== undefined ? ` (${params.creates} is missing)` : params.removes !== undefined ? ` (${params.removes} exists)` : '';
    return [{ summary: `run ${describeRun(params)}${why}`, steps: [exec(run)], ...(converges ? {} : { action: true }) }];
  },
});
