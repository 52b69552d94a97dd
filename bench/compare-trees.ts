/**
 * Did both sides converge on the same thing? Lists a host's files under each side's directory (type, mode,
 * content hash or link target with the side's own root replaced by ROOT) and returns the differences.
 * The `initialised` file holds a date written by the command task: only its presence is compared.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';

const DATED = new Set(['var/lib/app/initialised']);

async function describe(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const rel = relative(root, path);
      const st = await lstat(path);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      if (st.isSymbolicLink()) out.set(rel, `link -> ${(await readlink(path)).replace(root, 'ROOT')}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${mode}`);
        await walk(path);
      } else {
        const hash = DATED.has(rel) ? 'dated' : createHash('sha256').update(await readFile(path)).digest('hex').slice(0, 12);
        out.set(rel, `file ${mode} ${hash}`);
      }
    }
  };
  await walk(root);
  return out;
}

/** Differences between the two trees, one line each ("path: ours | theirs"); empty when they are the same. */
export async function compareTrees(ours: string, theirs: string): Promise<string[]> {
  const a = await describe(ours);
  const b = await describe(theirs);
  const diffs: string[] = [];
  for (const path of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (a.get(path) !== b.get(path)) diffs.push(`${path}: ${a.get(path) ?? 'missing'} | ${b.get(path) ?? 'missing'}`);
  }
  return diffs;
}
