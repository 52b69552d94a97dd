/**
 * The dpkg-query of several package tasks read together in a batch (modules/package.ts DpkgRead) gives each
 * task the very output its own query gives alone, on this machine's real dpkg database; dpkg-query runs once.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalConnection } from '../../lib/connection/local.ts';
import type { ExecResult } from '../../lib/connection/types.ts';
import { aptGatherCommand, parseAptGather } from '../../modules/package.ts';
import { makeTmpDir } from '../helpers/tmpdir.ts';

const local = new LocalConnection();
const shown = (r: ExecResult | undefined): string | undefined => (r === undefined ? undefined : `${r.exitCode}\n${r.stdout}`);

test.serial('package tasks read together: each gets its own rows and exit code, from one dpkg-query', async (t) => {
  const sets = [
    ['openssh-server'],
    ['coreutils', 'openssh-client'],
    ['sanbook-no-such-package'],
    ['bash', 'sanbook-no-such-package'],
    ['bash'],
    ['dash', 'coreutils'],
  ];
  const bin = await makeTmpDir(t, 'sanbook-bin-');
  const log = join(bin, 'log');
  const real = execFileSync('sh', ['-c', 'command -v dpkg-query']).toString().trim();
  await writeFile(join(bin, 'dpkg-query'), `#!/bin/sh\necho run >> ${log}\nexec ${real} "$@"\n`, { mode: 0o755 });
  await writeFile(log, '');
  const oldPath = process.env['PATH'];
  process.env['PATH'] = `${bin}:${oldPath ?? ''}`;
  try {
    const together = await local.execBatch(sets.map((names) => ({ command: aptGatherCommand(names, false) })));
    t.is(readFileSync(log, 'utf8'), 'run\n', 'one dpkg-query for the six tasks');
    for (const [i, names] of sets.entries()) {
      const alone = await local.exec(aptGatherCommand(names, false));
      t.is(shown(together[i]), shown(alone), names.join(' '));
      t.deepEqual(parseAptGather(together[i]?.stdout ?? '', names, false), parseAptGather(alone.stdout, names, false));
    }
  } finally {
    process.env['PATH'] = oldPath;
  }
});

test('an architecture-qualified name and a latest query are read by their own scripts', async (t) => {
  t.is(aptGatherCommand(['bash:amd64'], false).together, undefined);
  t.is(aptGatherCommand(['bash'], true).together, undefined);
  t.not(aptGatherCommand(['bash'], false).together, undefined);
  const items = [['bash:amd64'], ['bash'], ['coreutils']].map((names) => ({ command: aptGatherCommand(names, false) }));
  const together = await local.execBatch(items);
  for (const [i, item] of items.entries()) t.is(shown(together[i]), shown(await local.exec(item.command)));
});
