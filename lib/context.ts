/**
 * What tasks can read while a playbook runs: each host's variables, groups and facts, and the outputs of
 * earlier tasks on any host (the targets' IQNs feed the initiators).
 */
import type { HostFacts } from './facts.ts';
import type { Inventory } from './inventory.ts';
import type { Task, TaskContext } from './module.ts';
import type { Play } from './playbook.ts';

/** Thrown by a preflight context when a value only exists at run time (facts, earlier results). */
export class NotYetKnown extends Error {
  override name = 'NotYetKnown';
}

export class HostContexts {
  readonly #inventory: Inventory;
  readonly #facts = new Map<string, HostFacts>();
  readonly #results = new Map<Task<unknown, unknown>, Map<string, unknown>>();

  constructor(inventory: Inventory) {
    this.#inventory = inventory;
  }

  setFacts(host: string, facts: HostFacts): void {
    this.#facts.set(host, facts);
  }

  setResult(task: Task<unknown, unknown>, host: string, output: unknown): void {
    let byHost = this.#results.get(task);
    if (!byHost) {
      byHost = new Map();
      this.#results.set(task, byHost);
    }
    byHost.set(host, output);
  }

  /**
   * The context of a host. During the run ('run'); before it ('preflight': facts and results throw
   * NotYetKnown); gathering ahead ('ahead': results throw NotYetKnown, since a later task's params may read a
   * result that does not exist yet or will be another).
   */
  context(host: string, play: Play | undefined, mode: 'run' | 'preflight' | 'ahead' = 'run'): TaskContext {
    const inv = this.#inventory;
    const entry = inv.host(host);
    const allFacts = this.#facts;
    const results = this.#results;
    const playHosts = play ? inv.select(play.hosts) : inv.select('all');
    return {
      host,
      vars: entry.vars,
      groups: entry.groups,
      get facts(): HostFacts {
        // Read when asked: the context is made before the host is connected and its facts gathered.
        const facts = allFacts.get(host);
        if (!facts) throw new NotYetKnown(`the facts of ${host} are gathered when the run reaches it`);
        return facts;
      },
      result<R>(task: Task<unknown, R>, of: string = host): R | undefined {
        if (mode !== 'run') throw new NotYetKnown(`the result of "${task.name}" is read when the task runs`);
        return results.get(task as Task<unknown, unknown>)?.get(of) as R | undefined;
      },
      hosts(pattern?: string): readonly string[] {
        return pattern === undefined ? playHosts : inv.select(pattern);
      },
      varsOf(name: string) {
        return inv.host(name).vars;
      },
    };
  }
}
