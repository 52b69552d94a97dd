/**
 * Path probes read together in a batch (lib/connection/probe.ts) give each probe the very bytes its own script
 * prints alone, on real files read by the real stat, cat, base64, readlink, find and du of this machine, over
 * the local connection and a real OpenSSH server on loopback. Where the batch cannot be sure (a file changed
 * while it was read), the probe has no result and is read alone in its turn.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalConnection } from '../../lib/connection/local.ts';
import { probeCommand, type PathProbe } from '../../lib/connection/probe.ts';
import type { Connection, ExecResult } from '../../lib/connection/types.ts';
import { sharedSshd } from '../helpers/shared-sshd.ts';
import { makeTmpDir } from '../helpers/tmpdir.ts';

const server = sharedSshd(test);
const local = new LocalConnection();

const isRoot = process.getuid?.() === 0;

/** A tree with one of everything a probe meets; returns the paths to probe (some absent). */
async function tree(dir: string): Promise<string[]> {
  const at = (name: string): string => join(dir, name);
  await writeFile(at('text'), 'hello\n');
  await writeFile(at('empty'), '');
  await writeFile(at('no-newline'), 'last line');
  await writeFile(at('binary'), Buffer.concat([randomBytes(70_000), Buffer.alloc(300), randomBytes(5)]));
  await writeFile(at('a b'), 'space\n');
  await writeFile(at('new\nline'), 'newline in the name\n');
  await writeFile(at("quote'd"), 'quote\n');
  await writeFile(at('é-ütf8'), 'utf-8 name\n');
  await writeFile(at('$(touch pwned)'), 'not run\n');
  await writeFile(at('mode-4750'), '#!/bin/sh\n');
  await chmod(at('mode-4750'), 0o4750);
  await writeFile(at('locked'), 'secret\n');
  await chmod(at('locked'), 0o000);
  await mkdir(at('dir/sub'), { recursive: true });
  await writeFile(at('dir/one'), '1\n');
  await writeFile(at('dir/sub/two'), '22\n');
  await mkdir(at('empty-dir'));
  await symlink(at('text'), at('link-to-file'));
  await symlink('dir', at('relative-link-to-dir'));
  await symlink(at('nowhere'), at('dangling'));
  await symlink('link-to-file', at('link-to-link'));
  execFileSync('mkfifo', [at('fifo')]);
  return [
    ...['text', 'empty', 'no-newline', 'binary', 'a b', 'new\nline', "quote'd", 'é-ütf8', '$(touch pwned)', 'mode-4750', 'locked'],
    ...['dir', 'dir/sub', 'empty-dir', 'link-to-file', 'relative-link-to-dir', 'dangling', 'link-to-link', 'fifo'],
    ...['absent', 'text/under-a-file', 'dir/absent'],
    dir,
  ].map((n) => (n === dir ? dir : at(n)));
}

function probesOf(paths: readonly string[]): PathProbe[] {
  return paths.flatMap((path) => [
    { path, kind: 'content' as const, tree: false },
    { path, kind: 'file' as const, tree: false },
    { path, kind: 'file' as const, tree: true },
  ]);
}

const shown = (r: ExecResult | undefined): string | undefined => (r === undefined ? undefined : `${r.exitCode} ${r.stdoutBytes.toString('hex')}`);

for (const [name, conn] of [
  ['local', (): Connection => local],
  ['ssh', (): Connection => server.ssh],
] as const) {
  test.serial(`${name}: probes read together give each the bytes its own script prints alone`, async (t) => {
    const dir = await makeTmpDir(t);
    const probes = probesOf(await tree(dir));
    const c = conn();
    const before = c.commandCount;
    const together = await c.execBatch!(probes.map((probe) => ({ command: probeCommand(probe) })));
    t.is(c.commandCount - before, 1, 'one command on the connection');
    for (const [i, probe] of probes.entries()) {
      const alone = await c.exec(probeCommand(probe));
      const label = `${probe.kind}${probe.tree ? '+tree' : ''} ${JSON.stringify(probe.path)}`;
      const got = together[i];
      // A file that is not readable is left to its own script, which reports the error (as root it is readable).
      if (!isRoot && probe.kind === 'content' && probe.path.endsWith('/locked')) {
        t.is(got, undefined, label);
        t.not(alone.exitCode, 0, label);
        continue;
      }
      t.is(alone.exitCode, 0, `${label}: ${alone.stderr}`);
      t.is(shown(got), shown(alone), label);
    }
    t.false(execFileSync('ls', [dir]).toString().split('\n').includes('pwned'));
  });
}

/** A directory whose `cat` and `stat` log each start, so that the programs a batch starts can be counted. */
async function countingPath(t: ExecutionContext, before?: string): Promise<{ path: string; log: string; count: (program: string) => string[] }> {
  const bin = await makeTmpDir(t, 'sanbook-bin-');
  const log = join(bin, 'log');
  await writeFile(log, '');
  for (const program of ['stat', 'cat', 'base64', 'readlink']) {
    const real = execFileSync('sh', ['-c', `command -v ${program}`]).toString().trim();
    await writeFile(join(bin, program), `#!/bin/sh\necho ${program} >> ${log}\n${program === 'cat' && before ? before : ''}\nexec ${real} "$@"\n`, { mode: 0o755 });
  }
  const { readFileSync } = await import('node:fs');
  return { path: `${bin}:${process.env['PATH'] ?? ''}`, log, count: (program) => readFileSync(log, 'utf8').split('\n').filter((l) => l === program) };
}

test.serial('local: 20 files read together start one cat and two stats, not 20 stats and 20 base64', async (t) => {
  const dir = await makeTmpDir(t);
  const paths = Array.from({ length: 20 }, (_, i) => join(dir, `f${i}`));
  for (const p of paths) await writeFile(p, `${p}\n`);
  const shim = await countingPath(t);
  const oldPath = process.env['PATH'];
  process.env['PATH'] = shim.path;
  try {
    const together = await local.execBatch(paths.map((path) => ({ command: probeCommand({ path, kind: 'content', tree: false }) })));
    t.true(together.every((r) => r !== undefined));
    t.is(shim.count('stat').length, 2);
    t.is(shim.count('cat').length, 1);
    t.is(shim.count('base64').length, 0);
    await writeFile(shim.log, '');
    for (const path of paths) await local.exec(probeCommand({ path, kind: 'content', tree: false }));
    t.is(shim.count('stat').length, 20);
    t.is(shim.count('base64').length, 20);
  } finally {
    process.env['PATH'] = oldPath;
  }
});

test.serial('local: a file that grows while the batch reads it leaves the read files to their own scripts', async (t) => {
  const dir = await makeTmpDir(t);
  const growing = join(dir, 'growing');
  const paths = [join(dir, 'steady'), growing, join(dir, 'other')];
  for (const p of paths) await writeFile(p, 'before\n');
  // `cat` appends to one file just before it reads: the sizes the first stat gave no longer cut its output.
  const shim = await countingPath(t, `echo more >> ${growing}`);
  const oldPath = process.env['PATH'];
  process.env['PATH'] = shim.path;
  try {
    const probes: PathProbe[] = [...paths.map((path) => ({ path, kind: 'content' as const, tree: false })), { path: dir, kind: 'file', tree: true }];
    const together = await local.execBatch(probes.map((probe) => ({ command: probeCommand(probe) })));
    t.deepEqual(together.slice(0, 3), [undefined, undefined, undefined]);
    // What needs no bytes is still answered.
    t.is(shown(together[3]), shown(await local.exec(probeCommand(probes[3] as PathProbe))));
  } finally {
    process.env['PATH'] = oldPath;
  }
});

test.serial('local: a file replaced by another of the same size while read is not taken for the first (inode, ctime)', async (t) => {
  const dir = await makeTmpDir(t);
  const replaced = join(dir, 'replaced');
  const paths = [replaced, join(dir, 'other')];
  for (const p of paths) await writeFile(p, 'AAAA\n');
  const shim = await countingPath(t, `printf 'BBBB\\n' > ${replaced}.new && mv ${replaced}.new ${replaced}`);
  const oldPath = process.env['PATH'];
  process.env['PATH'] = shim.path;
  try {
    const together = await local.execBatch(paths.map((path) => ({ command: probeCommand({ path, kind: 'content', tree: false }) })));
    t.deepEqual(together, [undefined, undefined]);
  } finally {
    process.env['PATH'] = oldPath;
  }
});

test.serial('local: probes under become and not are read in one line per become, each as it reads alone', async (t) => {
  const dir = await makeTmpDir(t);
  const paths = ['a', 'b', 'c'].map((n) => join(dir, n));
  for (const p of paths) await writeFile(p, `${p}\n`);
  await chmod(paths[2] as string, 0o600);
  const items = paths.flatMap((path) => [
    { command: probeCommand({ path, kind: 'content', tree: false }), options: { become: true } },
    { command: probeCommand({ path, kind: 'file', tree: false }), options: { become: false } },
  ]);
  const together = await local.execBatch(items);
  for (const [i, item] of items.entries()) {
    const alone = await local.exec(item.command, item.options);
    t.is(shown(together[i]), alone.exitCode === 0 ? shown(alone) : undefined, `${i}: ${alone.stderr}`);
  }
});
