/**
 * Before any host is touched: every play's pattern resolved, every targeted host's variables checked against
 * the playbook's schema, and every task's params validated wherever they can be computed without running
 * (params that need facts or earlier results are checked when the task runs). Bad input throws UserError,
 * the CLI exits 1, and no command has reached any host.
 */
import { NotYetKnown, type HostContexts } from './context.ts';
import { UserError } from './errors.ts';
import { resolveParams } from './module.ts';
import type { Inventory } from './inventory.ts';
import type { Playbook } from './playbook.ts';
import { validateSchema } from './schema.ts';

export function preflight(
  book: Playbook,
  inventory: Inventory,
  playHosts: readonly (readonly string[])[],
  contexts: HostContexts,
): void {
  const targeted = new Set(playHosts.flat());
  if (book.varsSchema) {
    for (const host of targeted) {
      validateSchema(book.varsSchema, inventory.host(host).vars, { file: inventory.source, host });
    }
  }
  book.plays.forEach((play, i) => {
    for (const task of [...play.tasks, ...(play.handlers ?? [])]) {
      for (const host of playHosts[i] ?? []) {
        const ctx = contexts.context(host, play, 'preflight');
        let raw: unknown;
        try {
          if (task.when && !task.when(ctx)) continue;
          raw = resolveParams(task, ctx);
        } catch (e) {
          if (e instanceof NotYetKnown) continue;
          if (e instanceof UserError) throw e.at({ host, task: task.name });
          throw new UserError(`its params could not be computed: ${(e as Error).message}`, { host, task: task.name });
        }
        try {
          task.module.validate(raw);
        } catch (e) {
          if (e instanceof UserError) throw e.at({ host, task: task.name });
          throw e;
        }
        if (typeof task.params !== 'function') break; // the same static params for every host
      }
    }
  });
}
