/**
 * Run a storage module's real gather script under /bin/sh with the storage tools replaced by shell functions
 * that replay recorded outputs (test/fixtures/{parted,blkid,lsblk}/*.json), and a fake sysfs tree. No storage
 * command runs on this machine; the script's shell (sections, loops, globs, quoting) runs for real.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { quote, type Command } from '../../lib/command.ts';

import { fixture, type Recorded } from './fixtures.ts';

export { fixture, type Recorded };

/** What a stub prints: a recording, or a plain value (numbers the kernel reports, e.g. blockdev's). */
export type Reply = Pick<Recorded, 'stdout' | 'exitCode'> & { stderr?: string };

/** tool -> [glob on "$*", reply]: the first glob that matches the arguments answers. */
export type Stubs = Record<string, [string, Reply][]>;

/** A fake /sys/class/block: files under dir (path relative to dir -> content). */
export function fakeSysfs(dir: string, files: Record<string, string>): string {
  const root = join(dir, 'sys');
  mkdirSync(root, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

/** Run the gather script with the stubs defined first; returns its stdout. */
export function runStubbed(script: Command, stubs: Stubs, dir: string, prelude = ''): string {
  let n = 0;
  const functions = Object.entries(stubs).map(([tool, cases]) => {
    const arms = cases.map(([glob, reply]) => {
      const out = join(dir, `stub${n}.out`);
      const err = join(dir, `stub${n++}.err`);
      writeFileSync(out, reply.stdout);
      writeFileSync(err, reply.stderr ?? '');
      return `${glob.replace(/ /g, "\\ ")}) cat ${quote(out)}; cat ${quote(err)} >&2; return ${reply.exitCode};;`;
    });
    return `${tool}() { case "$*" in ${arms.join(' ')} esac; echo "no stub for ${tool} $*" >&2; return 99; }`;
  });
  return execFileSync('/bin/sh', ['-c', `${prelude}\n${functions.join('\n')}\n${script.script.toString('utf8')}`], { encoding: 'utf8' });
}
