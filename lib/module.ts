/**
 * The module contract. Every module has four parts and nothing else decides what happens on a host:
 *
 *   params   a typed interface plus its JSON schema (ajv), a description on every field
 *   gather   (conn, params, ctx) -> facts        reads the host, never changes it
 *   plan     (params, facts) -> Change[]         pure and synchronous
 *   apply    the runner runs the changes' steps, then gathers and plans again: an empty second plan is the
 *            proof of convergence, a non-empty one is a module bug and fails the task.
 *
 * `changed` is "the plan was not empty"; check mode is "print the plan, run nothing". No module ever sees a
 * check flag.
 */
import { cmd, type Command } from './command.ts';
import type { Connection, PutOptions } from './connection/types.ts';
import type { HostFacts } from './facts.ts';
import type { ModuleExample } from './reference.ts';
import { validateParams } from './schema.ts';

/** One thing a change does on the host. */
export type Step =
  | { readonly kind: 'exec'; readonly command: Command }
  | ({ readonly kind: 'put'; readonly path: string; readonly content: string | Uint8Array } & PutOptions);

export interface Diff {
  /** What the diff is of: a file path, or a setting's name. */
  readonly label: string;
  readonly before: string;
  readonly after: string;
}

export interface Change {
  /** What the change does, in words ("create directory /etc/foo", "start multipathd"). */
  readonly summary: string;
  readonly steps: readonly Step[];
  readonly diff?: Diff;
  /** Set when the change can destroy data: the reason, naming the device or file. Refused unless force. */
  readonly destructive?: string;
  /**
   * An action that is planned every time it is asked for (a restart, a command without creates/removes).
   * The convergence check after apply ignores actions.
   */
  readonly action?: boolean;
}

/** What gather() may know besides its params: the host and its basic facts. */
export interface GatherContext {
  readonly host: string;
  readonly facts: HostFacts;
}

export interface ModuleDefinition<P, F, R> {
  /** Short name used in output and docs (e.g. "file", "mdadm"). */
  readonly name: string;
  readonly description: string;
  /** JSON schema of the params; `description` on every property; `secret: true` marks a secret string. */
  readonly schema: Readonly<Record<string, unknown>>;
  /** Examples for the reference (each validated by the docs test). */
  readonly examples?: readonly ModuleExample[];
  gather(conn: Connection, params: P, ctx: GatherContext): Promise<F>;
  /**
   * The gather is a quick read of this host's own state (a stat, a file, the package database): the runner may
   * start it ahead of the task, batched with other tasks' gathers in one round trip, and use it while nothing
   * has changed on any host since (lib/read-ahead.ts). Leave unset for a gather that waits, takes long, or
   * reads another host.
   */
  readonly readAhead?: boolean;
  plan(params: P, facts: F): Change[];
  /** What later tasks read from this task (default: the facts gathered after apply). */
  output?(params: P, facts: F): R;
}

export interface Module<P, F, R> extends ModuleDefinition<P, F, R> {
  /** Validate raw params against the schema (defaults applied, strings of secret fields wrapped). */
  validate(raw: unknown): P;
  /** A task of this module, for a playbook. */
  task(name: string, params: Params<P>, options?: TaskOptions): Task<P, R>;
}

/** The view of a host that task params, `when` and playbooks read. */
export interface TaskContext {
  /** Inventory name of the host this task runs on. */
  readonly host: string;
  /** The host's variables (all < groups < host), connection variables included. */
  readonly vars: Readonly<Record<string, unknown>>;
  readonly facts: HostFacts;
  /** The host's groups. */
  readonly groups: readonly string[];
  /** The output of an earlier task on this host, or on another host of the run. */
  result<R>(task: Task<unknown, R>, host?: string): R | undefined;
  /** Names of the hosts matching a pattern in the inventory (default: the hosts of the current play). */
  hosts(pattern?: string): readonly string[];
  /** Variables of another host. */
  varsOf(host: string): Readonly<Record<string, unknown>>;
}

export type Params<P> = P | ((ctx: TaskContext) => P);

export interface TaskOptions {
  /** Run the task on this host only when this returns true (otherwise: skipped). */
  when?: (ctx: TaskContext) => boolean;
  /** Handlers (by name) to run at the end of the play if this task changed something. */
  notify?: string | readonly string[];
  tags?: readonly string[];
  /** Allow destructive changes (refused otherwise). */
  force?: boolean;
  /** Run as this user through sudo -n (true = root); default: the host's `become` variable. */
  become?: boolean | string;
  /** A failure does not stop the host. */
  ignoreErrors?: boolean;
  /** Timeout of each command of this task, in milliseconds. */
  timeoutMs?: number;
}

export interface Task<P = unknown, R = unknown> extends TaskOptions {
  readonly name: string;
  // The module is held with erased types so that tasks of different modules fit in one list.
  readonly module: Module<P, unknown, R>;
  readonly params: Params<P>;
}

/** Params may be a function of the host; it may throw (a bad variable): that is the task's failure. */
export function resolveParams(task: Task, ctx: TaskContext): unknown {
  return typeof task.params === 'function' ? (task.params as (c: TaskContext) => unknown)(ctx) : task.params;
}

/** Define a module: the definition plus validation and a task factory. */
export function defineModule<P, F, R = F>(definition: ModuleDefinition<P, F, R>): Module<P, F, R> {
  const module: Module<P, F, R> = {
    ...definition,
    validate(rawParams: unknown): P {
      return validateParams<P>(definition.name, definition.schema, rawParams);
    },
    task(name: string, params: Params<P>, options: TaskOptions = {}): Task<P, R> {
      return { ...options, name, module: module as unknown as Module<P, unknown, R>, params };
    },
  };
  return module;
}

/** Steps helpers for plan() authors. */
export function exec(command: Command): Step {
  return { kind: 'exec', command };
}

export function put(path: string, content: string | Uint8Array, options: PutOptions = {}): Step {
  return { kind: 'put', path, content, ...options };
}

/** `mkdir -p` of the folder a file goes in (put writes into an existing folder only): a drop-in's NAME.d, say. */
export function mkdirFor(path: string): Step {
  return exec(cmd('mkdir', '-p', '--', path.slice(0, path.lastIndexOf('/')) || '/'));
}
