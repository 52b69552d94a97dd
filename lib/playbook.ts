/**
 * Plays and playbooks: plain typed data. A playbook module exports its playbook and runs it only when it is
 * the program being run (see cli.ts), so users can import and compose playbooks in their own scripts.
 */
import type { Inventory } from './inventory.ts';
import type { Task } from './module.ts';
import { UserError } from './errors.ts';

export interface Play {
  readonly name: string;
  /** Host pattern: group or host names, globs, `a:b` unions, `&x` intersections, `!x` exclusions. */
  readonly hosts: string;
  readonly tasks: readonly Task[];
  /** Handlers run once at the end of the play, in this order, on the hosts whose tasks notified them. */
  readonly handlers?: readonly Task[];
  /** Tags added to every task of the play. */
  readonly tags?: readonly string[];
  /** Default become for the play's tasks (a task's own setting wins). */
  readonly become?: boolean | string;
}

export interface Playbook {
  readonly name: string;
  readonly description?: string;
  readonly plays: readonly Play[];
  /** Inventory used when -i is not given. */
  readonly defaultInventory?: string;
  /**
   * JSON schema the variables of every targeted host must satisfy; checked before anything runs, so a missing
   * or mistyped variable is an error naming the host and the field.
   */
  readonly varsSchema?: Readonly<Record<string, unknown>>;
}

/**
 * A playbook whose plays depend on the inventory (one RAID array per chunk host, say): what it is called and
 * where its inventory is are known before, its plays once the inventory is loaded. `main()` takes either form.
 */
export interface PlaybookFactory {
  readonly name: string;
  readonly description?: string;
  readonly defaultInventory?: string;
  build(inventory: Inventory): Playbook;
}

export function isPlaybookFactory(book: Playbook | PlaybookFactory): book is PlaybookFactory {
  return typeof (book as PlaybookFactory).build === 'function';
}

function checkTasks(play: Play): void {
  const handlerNames = new Set<string>();
  for (const h of play.handlers ?? []) {
    if (handlerNames.has(h.name)) throw new UserError(`two handlers are named "${h.name}"`, { task: h.name });
    handlerNames.add(h.name);
  }
  for (const t of [...play.tasks, ...(play.handlers ?? [])]) {
    if (typeof t.name !== 'string' || t.name.trim() === '') {
      throw new UserError(`play "${play.name}" has a task without a name`);
    }
    const notify = t.notify === undefined ? [] : typeof t.notify === 'string' ? [t.notify] : t.notify;
    for (const n of notify) {
      if (!handlerNames.has(n)) {
        throw new UserError(`notifies "${n}", but play "${play.name}" has no handler of that name`, { task: t.name });
      }
    }
  }
}

export function play(definition: Play): Play {
  checkTasks(definition);
  return definition;
}

export function playbook(definition: Playbook): Playbook {
  if (definition.plays.length === 0) throw new UserError(`playbook "${definition.name}" has no play`);
  return definition;
}

export function notifiedBy(task: Task): readonly string[] {
  return task.notify === undefined ? [] : typeof task.notify === 'string' ? [task.notify] : task.notify;
}
