/**
 * Test helpers for modules that touch files: a fresh temp directory per test (removed afterwards) and a
 * listing of a tree with each file's sha256, to prove that check mode changed nothing.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

/** A new empty directory under the OS temp dir, removed when the test ends. */
export async function makeTmpDir(t: ExecutionContext, prefix = 'sanbook-mod-'): Promise<string> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), prefix)));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** One line per entry under root (sorted): path, type, mode, owner, sha256 (files) or target (links). */
export async function listTree(root: string): Promise<string> {
  const lines: string[] = [];
  async function walk(dir: string, rel: string): Promise<void> {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const path = join(dir, name);
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(path);
      const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) lines.push(`${relPath} link ${meta} -> ${await readlink(path)}`);
      else if (st.isDirectory()) {
        lines.push(`${relPath} dir ${meta}`);
        await walk(path, relPath);
      } else {
        const sha = createHash('sha256').update(await readFile(path)).digest('hex');
        lines.push(`${relPath} file ${meta} ${sha}`);
      }
    }
  }
  await walk(root, '');
  return lines.join('\n');
}
