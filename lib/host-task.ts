/**
 * One task on one host: when -> params -> gather -> plan -> (check: stop) -> apply -> gather -> plan again.
 * Returns what happened; never throws for the host's own failures (they become a status).
 */
import { converge, ConvergenceError, DestructiveChangeError, describeStep, StepError } from './apply.ts';
import { renderDiff } from './textdiff.ts';
import type { ChangeView, HostStatus } from './events.ts';
import { ConnectionError, type Connection } from './connection/types.ts';
import { scoped, type ScopeOptions } from './connection/scoped.ts';
import { UserError } from './errors.ts';
import type { HostFacts } from './facts.ts';
import { resolveParams, type Change, type Task, type TaskContext } from './module.ts';
import { sameParams, type GatheredAhead } from './read-ahead.ts';
import { maskSecrets } from './secret.ts';

export interface HostTaskResult {
  status: HostStatus;
  changes: ChangeView[];
  message?: string;
  output?: unknown;
  /** The task failed but ignoreErrors let the host go on. */
  ignored?: boolean;
}

export interface HostTaskEnv {
  readonly task: Task;
  readonly ctx: TaskContext;
  readonly check: boolean;
  /**
   * Check mode only: an earlier task planned changes on this host that were not made. A task that then cannot
   * be planned (its gather fails: a file the skipped package install would have created...) is reported as
   * not plannable yet, rather than as a failure the real run would not have.
   */
  readonly pendingChanges?: boolean;
  readonly become: boolean | string | undefined;
  /** Render each change's diff for the reporters (--diff); without it no diff is computed. */
  readonly diff: boolean;
  /** What the runner gathered ahead for this task, with the params it was gathered for (lib/read-ahead.ts). */
  readonly ahead?: GatheredAhead;
  readonly connection: () => Promise<{ conn: Connection; facts: HostFacts }>;
  readonly onPlan: (changes: ChangeView[]) => void;
  readonly onStep: (step: string) => void;
}

export function viewChange(change: Change, withDiff = true): ChangeView {
  const view: ChangeView = {
    summary: maskSecrets(change.summary),
    commands: change.steps.map((s) => maskSecrets(s.kind === 'exec' ? s.command.display : `write ${s.path}`)),
  };
  if (change.diff && withDiff) view.diff = maskSecrets(renderDiff(change.diff));
  if (change.destructive !== undefined) view.destructive = maskSecrets(change.destructive);
  if (change.action) view.action = true;
  return view;
}

function failure(message: string, changes: ChangeView[] = []): HostTaskResult {
  return { status: 'failed', changes, message: maskSecrets(message) };
}


export async function runHostTask(env: HostTaskEnv): Promise<HostTaskResult> {
  const { task, ctx } = env;
  // Connect (and gather the host's facts) first: `when` and params may read ctx.facts.
  try {
    await env.connection();
  } catch (e) {
    if (e instanceof ConnectionError) return { status: 'unreachable', changes: [], message: maskSecrets(e.message) };
    return failure(`${(e as Error).message}`);
  }
  try {
    if (task.when && !task.when(ctx)) return { status: 'skipped', changes: [], message: 'condition is false' };
  } catch (e) {
    return failure(`its "when" condition failed: ${(e as Error).message}`);
  }
  let params: unknown;
  try {
    params = task.module.validate(resolveParams(task, ctx));
  } catch (e) {
    if (e instanceof UserError) return failure(e.at({ host: ctx.host, task: task.name }).message);
    // In check mode a param read from an earlier task's output (a partition made by it) may not exist yet.
    if (env.check && env.pendingChanges) return { status: 'skipped', changes: [], message: `not plannable before the changes planned above are made (${maskSecrets((e as Error).message)})` };
    return failure(`its params could not be computed: ${(e as Error).message}`);
  }
  let views: ChangeView[] = [];
  try {
    const { conn, facts } = await env.connection();
    const scope: ScopeOptions = {
      ...(env.become !== undefined ? { become: env.become } : {}),
      ...(task.timeoutMs !== undefined ? { timeoutMs: task.timeoutMs } : {}),
    };
    const runOn = scoped(conn, scope);
    const gathered = env.ahead !== undefined && sameParams(env.ahead.params, params) ? await env.ahead.gathered : undefined;
    const outcome = await converge(runOn, task.module, params, { host: ctx.host, facts }, {
      ...(gathered !== undefined ? { gathered } : {}),
      check: env.check,
      force: task.force === true,
      onPlan: (changes) => {
        views = changes.map((c) => viewChange(c, env.diff));
        env.onPlan(views);
      },
      onStep: (step) => env.onStep(maskSecrets(describeStep(step))),
    });
    return { status: outcome.changed ? 'changed' : 'ok', changes: outcome.changed ? views : [], output: outcome.output };
  } catch (e) {
    if (e instanceof ConnectionError) return { status: 'unreachable', changes: views, message: maskSecrets(e.message) };
    if (e instanceof DestructiveChangeError) {
      const why = e.refused.map((c) => `${c.summary}: ${c.destructive ?? ''}`).join('; ');
      return failure(`refused destructive change (set force: true on the task to allow it): ${why}`, views);
    }
    if (env.check && env.pendingChanges && views.length === 0) {
      const why = maskSecrets((e as Error).message);
      return { status: 'skipped', changes: [], message: `not plannable before the changes planned above are made (${why})` };
    }
    if (e instanceof StepError || e instanceof ConvergenceError || e instanceof UserError) return failure(e.message, views);
    return failure(`${(e as Error).name === 'Error' ? '' : `${(e as Error).name}: `}${(e as Error).message}`, views);
  }
}
