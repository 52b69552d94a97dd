/**
 * Gathering ahead. When a play reaches a host (and again after a task that changed nothing on any host), the
 * gathers of that task and of the play's later tasks whose module allows it (`readAhead`) start at once, and
 * their commands go to the host together: one round trip (Connection.execBatch) instead of one per task.
 *
 * A task uses what was gathered ahead for it only when nothing changed on any host between that read and the
 * task's start (the runner counts changes), and when its params are still the same; otherwise it gathers as
 * it always does. A gather that failed ahead is simply run again in its turn. So the plan of every task is the
 * plan it would have had, and a converged run costs about one round trip per host for all those tasks.
 */
import type { BatchItem, Connection, ExecOptions, ExecResult } from './connection/types.ts';
import { inScope, type ScopeOptions } from './connection/scoped.ts';
import type { Command } from './command.ts';
import type { HostContexts } from './context.ts';
import type { HostFacts } from './facts.ts';
import { resolveParams, type Task } from './module.ts';
import type { Play } from './playbook.ts';
import { Secret } from './secret.ts';

/** What was read ahead for a task on a host, with the params it was read for. */
export interface GatheredAhead {
  readonly params: unknown;
  /** undefined: the gather failed or did not finish ahead; the task gathers in its turn. */
  readonly gathered: Promise<{ readonly facts: unknown } | undefined>;
}

interface Queued {
  readonly item: BatchItem;
  resolve(r: ExecResult): void;
  reject(e: unknown): void;
}

/**
 * Collects the commands that gathers ask for in the same turn of the event loop and sends them as one batch
 * (DataLoader's trick): every gather started together gets its first command into the first batch; a gather
 * that needs a second command gets it into the next.
 */
export class ExecBatcher {
  readonly #conn: Connection;
  #queue: Queued[] = [];

  constructor(conn: Connection) {
    this.#conn = conn;
  }

  exec(command: Command, options: ExecOptions): Promise<ExecResult> {
    if (this.#conn.execBatch === undefined || command.stdin !== undefined) return this.#conn.exec(command, options);
    return new Promise<ExecResult>((resolve, reject) => {
      if (this.#queue.length === 0) setImmediate(() => this.#flush());
      this.#queue.push({ item: { command, options }, resolve, reject });
    });
  }

  /** A connection for one task's gather: its commands go into the batches, with the task's become and timeout. */
  view(scope: ScopeOptions): Connection {
    const conn = this.#conn;
    return {
      host: conn.host,
      get commandCount() {
        return conn.commandCount;
      },
      exec: (command, options) => this.exec(command, inScope(scope, options)),
      put: () => Promise.reject(new Error('a gather does not write files')),
      close: () => Promise.resolve(),
    };
  }

  #flush(): void {
    const queue = this.#queue;
    this.#queue = [];
    if (queue.length === 0) return;
    const only = queue.length === 1 ? queue[0] : undefined;
    if (only !== undefined) {
      this.#conn.exec(only.item.command, only.item.options ?? {}).then(only.resolve, only.reject);
      return;
    }
    const batch = this.#conn.execBatch?.(queue.map((q) => q.item));
    if (batch === undefined) throw new Error('unreachable: the batcher only queues when execBatch exists');
    batch.then(
      (results) =>
        queue.forEach((q, i) => {
          const r = results[i];
          if (r !== undefined) q.resolve(r);
          else q.reject(new Error(`\`${q.item.command.display}\` did not finish in its batch`));
        }),
      (e: unknown) => queue.forEach((q) => q.reject(e)),
    );
  }
}

/**
 * The same params, value for value: plain objects, arrays, strings, numbers, booleans, null, bytes, and
 * secrets compared by their value. Anything else (a class instance, a function) is never the same, so its
 * task gathers in its turn.
 */
export function sameParams(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Secret || b instanceof Secret) return a instanceof Secret && b instanceof Secret && a.reveal() === b.reveal();
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a).equals(Buffer.from(b));
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameParams(x, b[i]));
  }
  if (!isPlain(a) || !isPlain(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && sameParams(a[k], b[k]));
}

function isPlain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * The runner's side: counts the changes made on any host, and per host what was read ahead for the current
 * play (by task index) and at which count. A read is good for a task only if the count has not moved since.
 */
export class ReadAhead {
  readonly #contexts: HostContexts;
  readonly #connection: (host: string) => Promise<{ conn: Connection; facts: HostFacts }>;
  readonly #ahead = new Map<string, { readonly at: number; readonly byTask: Map<number, GatheredAhead> }>();
  #changes = 0;

  constructor(contexts: HostContexts, connection: (host: string) => Promise<{ conn: Connection; facts: HostFacts }>) {
    this.#contexts = contexts;
    this.#connection = connection;
  }

  /** Changes made so far on any host (steps run: a task changed, failed or lost its host). */
  get changes(): number {
    return this.#changes;
  }

  changed(): void {
    this.#changes++;
  }

  /** A play ended: its reads are by its task indexes. */
  endPlay(): void {
    this.#ahead.clear();
  }

  /**
   * What was read ahead for this task on this host, if still good (`startedAt`: the count when the task began).
   * Reads ahead again at a play's first task, or after a task that changed nothing (`quiet`): after a change,
   * reading ahead would mostly be thrown away.
   */
  async forTask(play: Play, tasks: readonly Task[], index: number, host: string, startedAt: number, quiet: boolean): Promise<GatheredAhead | undefined> {
    let a = this.#ahead.get(host);
    if (a !== undefined && a.at < startedAt) {
      this.#ahead.delete(host);
      a = undefined;
    }
    if (a === undefined && (index === 0 || quiet)) {
      a = await this.#start(play, tasks, index, host);
      if (a !== undefined) this.#ahead.set(host, a);
    }
    return a?.byTask.get(index);
  }

  /** Start the gathers of the play's tasks from `from` on that allow it, as one batch; undefined: fewer than 2. */
  async #start(play: Play, tasks: readonly Task[], from: number, host: string) {
    let opened: { conn: Connection; facts: HostFacts };
    try {
      opened = await this.#connection(host);
    } catch {
      return undefined; // the task reports it
    }
    const at = this.#changes;
    const ctx = this.#contexts.context(host, play, 'ahead');
    const ready: { index: number; task: Task; params: unknown }[] = [];
    for (let i = from; i < tasks.length; i++) {
      const t = tasks[i] as Task;
      if (t.module.readAhead !== true) continue;
      try {
        if (t.when && !t.when(ctx)) continue;
        ready.push({ index: i, task: t, params: t.module.validate(resolveParams(t, ctx)) });
      } catch {
        continue; // not knowable yet (an earlier result, a bad variable): gathered in its turn
      }
    }
    if (ready.length < 2) return undefined;
    const batcher = new ExecBatcher(opened.conn);
    const byTask = new Map<number, GatheredAhead>();
    for (const r of ready) {
      const become = r.task.become ?? play.become;
      const view = batcher.view({
        ...(become !== undefined ? { become } : {}),
        ...(r.task.timeoutMs !== undefined ? { timeoutMs: r.task.timeoutMs } : {}),
      });
      const gathered = r.task.module.gather(view, r.params, { host, facts: opened.facts }).then(
        (facts: unknown) => ({ facts }),
        () => undefined,
      );
      byTask.set(r.index, { params: r.params, gathered });
    }
    return { at, byTask };
  }
}
