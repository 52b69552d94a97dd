import test from 'ava';
import { readFile } from 'node:fs/promises';
import { parseHostFacts } from '../../lib/facts.ts';

interface Recorded {
  command: string;
  exitCode: number;
  stdout: string;
}

const fixture = async (name: string): Promise<Recorded> =>
  JSON.parse(await readFile(new URL(`../fixtures/facts/${name}.json`, import.meta.url), 'utf8')) as Recorded;

test('host facts of a Debian 12 machine without systemd (recorded)', async (t) => {
  const r = await fixture('debian12-container');
  t.is(r.exitCode, 0);
  const f = parseHostFacts(r.stdout);
  t.is(f.os.id, 'debian');
  t.is(f.os.versionId, '12');
  t.is(f.os.family, 'debian');
  t.is(f.os.prettyName, 'Debian GNU/Linux 12 (bookworm)');
  t.is(f.packageManager, 'apt');
  t.is(f.uid, 0);
  t.is(f.user, 'root');
  t.is(f.arch, 'x86_64');
  t.false(f.systemd);
  t.regex(f.kernel, /^\d+\.\d+/);
});
