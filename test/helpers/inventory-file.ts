/** An inventory written to a temporary file (removed when the test ends) and loaded as a user's would be. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory, type Inventory } from '../../lib/inventory.ts';

export async function inventoryWith(t: { teardown(f: () => Promise<void>): void }, yaml: string): Promise<Inventory> {
  const dir = await mkdtemp(join(tmpdir(), 'sanbook-inv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'inv.yaml');
  await writeFile(file, yaml);
  return loadInventory(file);
}
