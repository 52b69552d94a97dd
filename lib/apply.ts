/**
 * Running one module on one connection: gather -> plan -> (apply -> gather -> plan again).
 *
 * This is what the runner does for every task on every host, and what a custom script calls to use a module
 * without a playbook:
 *
 *   const conn = new LocalConnection();
 *   const r = await runModule(conn, file, { path: '/srv/data', state: 'directory' });
 */
import { gatherHostFacts, type HostFacts } from './facts.ts';
import type { Connection, ExecResult } from './connection/types.ts';
import type { Change, GatherContext, Module, Step } from './module.ts';

export interface StepLog {
  readonly step: string;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

export interface ModuleOutcome<R> {
  /** The plan was not empty (in check mode: would change). */
  readonly changed: boolean;
  /** The plan gathered before anything was done. */
  readonly changes: readonly Change[];
  /** What later tasks read (module output of the final facts). */
  readonly output: R;
  /** The commands that ran, with their results (empty in check mode). */
  readonly log: readonly StepLog[];
}

export interface RunModuleOptions {
  /** Plan only: nothing that changes the host runs. */
  check?: boolean;
  /** Allow destructive changes. */
  force?: boolean;
  /** Host facts, when already gathered (otherwise gathered here: one round trip). */
  facts?: HostFacts;
  /** Timeout of each command, in ms. */
  timeoutMs?: number;
}

/** A step failed on the host: the task fails with this message. */
export class StepError extends Error {
  override name = 'StepError';
  constructor(
    message: string,
    readonly log: readonly StepLog[],
  ) {
    super(message);
  }
}

/** The module's plan after apply was not empty: the module did not converge (a module bug). */
export class ConvergenceError extends Error {
  override name = 'ConvergenceError';
  constructor(
    readonly remaining: readonly Change[],
    readonly log: readonly StepLog[],
  ) {
    super(
      `the module did not converge: after applying its changes it still plans: ${remaining.map((c) => c.summary).join('; ')} (a module bug)`,
    );
  }
}

/** Destructive changes asked without force. */
export class DestructiveChangeError extends Error {
  override name = 'DestructiveChangeError';
  constructor(readonly refused: readonly Change[]) {
    super(
      `refused destructive change${refused.length > 1 ? 's' : ''} (set force: true to allow): ${refused
        .map((c) => `${c.summary}: ${c.destructive ?? ''}`)
        .join('; ')}`,
    );
  }
}

export function describeStep(step: Step): string {
  return step.kind === 'exec' ? step.command.display : `write ${step.path}`;
}

/** Run the steps of changes in order; stops at the first failing step (throws StepError). */
export async function applyChanges(
  conn: Connection,
  changes: readonly Change[],
  options: { timeoutMs?: number; onStep?: (step: Step) => void } = {},
): Promise<StepLog[]> {
  const log: StepLog[] = [];
  for (const change of changes) {
    for (const step of change.steps) {
      options.onStep?.(step);
      const started = performance.now();
      if (step.kind === 'put') {
        try {
          await conn.put(step.path, step.content, step);
        } catch (e) {
          log.push({ step: describeStep(step), exitCode: 1, stdout: '', stderr: (e as Error).message, durationMs: 0 });
          throw new StepError(`${change.summary}: ${(e as Error).message}`, log);
        }
        log.push({ step: describeStep(step), exitCode: 0, stdout: '', stderr: '', durationMs: performance.now() - started });
        continue;
      }
      const r: ExecResult = await conn.exec(
        step.command,
        options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {},
      );
      log.push({ step: step.command.display, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, durationMs: r.durationMs });
      if (r.timedOut) {
        throw new StepError(`${change.summary}: timed out after ${Math.round(r.durationMs / 1000)} s: ${step.command.display}`, log);
      }
      if (!step.command.okCodes.includes(r.exitCode)) {
        const why = r.stderr.trim() || r.stdout.trim() || '(no output)';
        throw new StepError(`${change.summary}: \`${step.command.display}\` exited ${r.exitCode}: ${why}`, log);
      }
    }
  }
  return log;
}

/** Changes that count for convergence (actions are planned every time by design). */
export function stateChanges(changes: readonly Change[]): Change[] {
  return changes.filter((c) => !c.action);
}

export interface ConvergeOptions {
  /** Plan only: nothing that changes the host runs. */
  check?: boolean;
  /** Allow destructive changes. */
  force?: boolean;
  /** Timeout of each command, in ms. */
  timeoutMs?: number;
  /** Told the plan as soon as it is made (before a refusal or any step). */
  onPlan?: (changes: readonly Change[]) => void;
  /** The facts, gathered already (ahead, by the runner): the first gather is skipped. */
  gathered?: { readonly facts: unknown };
  /** Told each step just before it runs. */
  onStep?: (step: Step) => void;
}

/**
 * The one sequence every task goes through, in a playbook or a script, with validated params:
 * gather -> plan -> (refuse destructive changes without force) -> (check: stop) -> apply -> gather -> plan.
 * Throws DestructiveChangeError, StepError or ConvergenceError; the module's own gather errors pass through.
 */
export async function converge<P, F, R>(
  conn: Connection,
  module: Module<P, F, R>,
  params: P,
  ctx: GatherContext,
  options: ConvergeOptions = {},
): Promise<ModuleOutcome<R>> {
  const before = options.gathered !== undefined ? (options.gathered.facts as F) : await module.gather(conn, params, ctx);
  const changes = module.plan(params, before);
  options.onPlan?.(changes);
  const output = (f: F): R => (module.output ? module.output(params, f) : (f as unknown as R));
  const refused = changes.filter((c) => c.destructive !== undefined);
  if (refused.length > 0 && !options.force) throw new DestructiveChangeError(refused);
  if (options.check || changes.length === 0) {
    return { changed: changes.length > 0, changes, output: output(before), log: [] };
  }
  const log = await applyChanges(conn, changes, {
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.onStep ? { onStep: options.onStep } : {}),
  });
  const after = await module.gather(conn, params, ctx);
  const remaining = stateChanges(module.plan(params, after));
  if (remaining.length > 0) throw new ConvergenceError(remaining, log);
  return { changed: true, changes, output: output(after), log };
}

/** For scripts: validate the params, gather the host facts if not given, then converge(). */
export async function runModule<P, F, R>(
  conn: Connection,
  module: Module<P, F, R>,
  rawParams: unknown,
  options: RunModuleOptions = {},
): Promise<ModuleOutcome<R>> {
  const params = module.validate(rawParams);
  const facts = options.facts ?? (await gatherHostFacts(conn));
  return converge(conn, module, params, { host: conn.host, facts }, options);
}
