/**
 * The runner: plays in order; in a play, tasks in order and hosts in parallel (bounded by forks), every host
 * finishing task N before any starts N+1 (Ansible's linear strategy); handlers once at the end of the play.
 * A host that fails or becomes unreachable stops; the others go on.
 */
import { connectHost, type Connector } from './connection/connect.ts';
import type { Connection } from './connection/types.ts';
import type { HostRecap, Reporter, RunEvent } from './events.ts';
import { gatherHostFacts, type HostFacts } from './facts.ts';
import { runHostTask, type HostTaskResult } from './host-task.ts';
import { limitHosts, type Inventory } from './inventory.ts';
import type { Task } from './module.ts';
import { notifiedBy, type Play, type Playbook } from './playbook.ts';
import { preflight } from './preflight.ts';
import { HostContexts } from './context.ts';
import { ReadAhead } from './read-ahead.ts';
import { precompile } from './schema.ts';
import { maskDeep } from './secret.ts';

export interface RunOptions {
  inventory: Inventory;
  check?: boolean;
  diff?: boolean;
  limit?: string;
  tags?: readonly string[];
  skipTags?: readonly string[];
  /** Hosts worked on at once (default 20). */
  forks?: number;
  reporters?: readonly Reporter[];
  /** How to open a host's connection (default: SSH or local from the inventory). */
  connect?: Connector;
  /** Stop cleanly: no task starts after the signal; the tasks running finish (files are written atomically). */
  signal?: AbortSignal;
  /** Gather ahead in batches (lib/read-ahead.ts); default true. False: every task gathers in its turn. */
  readAhead?: boolean;
}

export interface RunSummary {
  /** 130 when interrupted through `signal`. */
  exitCode: 0 | 2 | 4 | 130;
  recap: Record<string, HostRecap>;
  durationMs: number;
}

type HostState = 'active' | 'failed' | 'unreachable';

/** Run `fn` over items with at most `limit` at once, preserving nothing but completion. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

function taskTags(task: Task, play: Play): string[] {
  return [...(task.tags ?? []), ...(play.tags ?? [])];
}

function selectedByTags(task: Task, play: Play, options: RunOptions): boolean {
  const tags = taskTags(task, play);
  if (tags.includes('always')) return !(options.skipTags ?? []).includes('always');
  // `never`: only when one of its tags is asked for by name (a check of a machine that may be down, say).
  if (tags.includes('never') && !(options.tags ?? []).some((t) => t !== 'all' && tags.includes(t))) return false;
  if (options.tags && options.tags.length > 0 && !options.tags.some((t) => t === 'all' || tags.includes(t))) return false;
  if (options.skipTags && options.skipTags.some((t) => tags.includes(t))) return false;
  return true;
}

/**
 * Compile the schemas of a play's modules one per turn of the event loop, started as the play's first task
 * begins: the compiling (tens of milliseconds) fills the time spent waiting for the hosts to connect.
 */
async function warmSchemas(tasks: readonly Task[]): Promise<void> {
  for (const schema of new Set(tasks.map((t) => t.module.schema))) {
    await new Promise((resolve) => setImmediate(resolve));
    try {
      precompile(schema);
    } catch {
      // A bad schema fails its task when the task validates its params: the same error, at the same place.
    }
  }
}

export async function runPlaybook(book: Playbook, options: RunOptions): Promise<RunSummary> {
  const started = performance.now();
  const inventory = options.inventory;
  const check = options.check ?? false;
  const forks = options.forks ?? 20;
  const connector = options.connect ?? connectHost;
  const reporters = options.reporters ?? [];
  const emit = (event: RunEvent): void => {
    const masked = maskDeep(event) as RunEvent;
    for (const r of reporters) r.onEvent(masked);
  };

  // Everything the user wrote is checked before any host is touched (throws UserError: exit 1).
  const playHosts = book.plays.map((p) => limitHosts(inventory, inventory.select(p.hosts), options.limit));
  const contexts = new HostContexts(inventory);
  preflight(book, inventory, playHosts, contexts);

  const allHosts = [...new Set(playHosts.flat())];
  const state = new Map<string, HostState>(allHosts.map((h) => [h, 'active']));
  /** Check mode: hosts on which a change was planned (and so not made). */
  const pending = new Set<string>();
  const recap: Record<string, HostRecap> = {};
  for (const h of allHosts) recap[h] = { ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0 };
  const connections = new Map<string, Promise<{ conn: Connection; facts: HostFacts }>>();
  const connection = (host: string): Promise<{ conn: Connection; facts: HostFacts }> => {
    let c = connections.get(host);
    if (!c) {
      c = (async () => {
        const conn = await connector(inventory.host(host));
        const facts = await gatherHostFacts(conn);
        contexts.setFacts(host, facts);
        return { conn, facts };
      })();
      connections.set(host, c);
    }
    return c;
  };

  // Changes made so far on any host, and what was read ahead per host for the current play (lib/read-ahead.ts).
  const readAhead = new ReadAhead(contexts, connection);

  emit({ type: 'run:start', playbook: book.name, check, diff: options.diff ?? false, hosts: allHosts });

  interface TaskTurn {
    /** The play's tasks (for gathering ahead), and whether the task before this one changed nothing. */
    readonly tasks: readonly Task[];
    readonly quiet: boolean;
  }

  const runTask = async (
    play: Play,
    task: Task,
    hosts: readonly string[],
    handler: boolean,
    index: number,
    turn?: TaskTurn,
  ): Promise<Set<string>> => {
    const changedHosts = new Set<string>();
    const startedAt = readAhead.changes;
    emit({ type: 'task:start', play: play.name, task: task.name, index, handler, hosts: [...hosts] });
    await mapLimit(hosts, forks, async (host) => {
      const t0 = performance.now();
      emit({ type: 'host:start', task: task.name, host });
      const gathered =
        turn !== undefined && options.readAhead !== false
          ? await readAhead.forTask(play, turn.tasks, index, host, startedAt, turn.quiet)
          : undefined;
      const result: HostTaskResult = await runHostTask({
        task,
        ctx: contexts.context(host, play),
        check,
        diff: options.diff ?? false,
        pendingChanges: pending.has(host),
        ...(gathered !== undefined ? { ahead: gathered } : {}),
        become: task.become ?? play.become,
        connection: () => connection(host),
        onPlan: (changes) => emit({ type: 'host:plan', task: task.name, host, changes }),
        onStep: (step) => emit({ type: 'host:apply', task: task.name, host, step }),
      });
      const r = recap[host] as HostRecap;
      const status = result.status;
      if (!check && status !== 'ok' && status !== 'skipped') readAhead.changed();
      const ignored = status === 'failed' && task.ignoreErrors === true;
      if (status === 'ok' || status === 'changed' || ignored) r.ok++;
      if (status === 'changed') {
        r.changed++;
        changedHosts.add(host);
        if (check) pending.add(host);
      }
      if (status === 'skipped') r.skipped++;
      if (status === 'failed' && !ignored) {
        r.failed++;
        state.set(host, 'failed');
        r.stoppedAt = { task: task.name, reason: result.message ?? 'failed' };
      }
      if (ignored) r.ignored++;
      if (status === 'unreachable') {
        r.unreachable++;
        state.set(host, 'unreachable');
        r.stoppedAt = { task: task.name, reason: result.message ?? 'unreachable' };
      }
      if (result.output !== undefined) contexts.setResult(task, host, result.output);
      const conn = connections.get(host);
      const commands = conn ? await conn.then((c) => c.conn.commandCount).catch(() => 0) : 0;
      emit({
        type: 'host:end',
        task: task.name,
        host,
        status,
        changes: result.changes,
        ...(result.message !== undefined ? { message: result.message } : {}),
        ...(ignored ? { ignored } : {}),
        durationMs: performance.now() - t0,
        commands,
      });
    });
    emit({ type: 'task:end', play: play.name, task: task.name, handler });
    return changedHosts;
  };

  for (const [i, play] of book.plays.entries()) {
    if (options.signal?.aborted) break;
    const hosts = (playHosts[i] ?? []).filter((h) => state.get(h) === 'active');
    const tasks = play.tasks.filter((t) => selectedByTags(t, play, options));
    void warmSchemas(tasks);
    emit({ type: 'play:start', play: play.name, index: i, hosts, tasks: tasks.map((t) => t.name) });
    const notified = new Map<string, Set<string>>();
    let quiet = true;
    for (const [n, task] of tasks.entries()) {
      const active = hosts.filter((h) => state.get(h) === 'active');
      if (active.length === 0 || options.signal?.aborted) break;
      const before = readAhead.changes;
      const changed = await runTask(play, task, active, false, n, { tasks, quiet });
      quiet = readAhead.changes === before;
      for (const name of notifiedBy(task)) {
        const set = notified.get(name) ?? new Set<string>();
        for (const h of changed) set.add(h);
        notified.set(name, set);
      }
    }
    for (const handler of play.handlers ?? []) {
      if (options.signal?.aborted) break;
      const targets = hosts.filter((h) => notified.get(handler.name)?.has(h) && state.get(h) === 'active');
      if (targets.length > 0) await runTask(play, handler, targets, true, -1);
    }
    readAhead.endPlay();
    emit({ type: 'play:end', play: play.name });
  }

  await Promise.all(
    [...connections.values()].map((c) =>
      // A host that never connected has nothing to close.
      c.then(({ conn }) => conn.close()).catch(() => undefined),
    ),
  );
  const values = Object.values(recap);
  const exitCode: RunSummary['exitCode'] = options.signal?.aborted
    ? 130
    : values.some((r) => r.unreachable > 0)
      ? 4
      : values.some((r) => r.failed > 0)
        ? 2
        : 0;
  const durationMs = performance.now() - started;
  emit({ type: 'run:end', recap, exitCode, durationMs, check, interrupted: options.signal?.aborted ?? false });
  await Promise.all(reporters.map((r) => r.done()));
  return { exitCode, recap, durationMs };
}
