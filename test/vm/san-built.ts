/** The full lab with the network playbooks/san.ts builds: kept as it is when it has it, built when not. */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { loadInventory, type Inventory } from '../../lib/inventory.ts';
import { labUp, type Lab } from '../../lab/lab.ts';
import { san } from '../../playbooks/san.ts';
import { changedTasks, failedTasks, runBook } from './connections.ts';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function sanLab(log: (line: string) => void): Promise<{ lab: Lab; inventory: Inventory }> {
  const lab = await labUp({ projectRoot, topology: 'full', log });
  const inventory = await loadInventory(lab.inventoryFile);
  const check = await runBook(san.build(inventory), inventory, { check: true });
  if (check.exitCode !== 0 || changedTasks(check.ended).length > 0) {
    log(`building the network (check mode: exit ${check.exitCode}, ${changedTasks(check.ended).length} tasks to change)`);
    const built = await runBook(san.build(inventory), inventory);
    if (built.exitCode !== 0) throw new Error(`san.ts failed: ${failedTasks(built.ended)}`);
    log(`built in ${built.seconds} s`);
  } else log(`the network is built (check mode: ${check.seconds} s, nothing to change)`);
  return { lab, inventory };
}
