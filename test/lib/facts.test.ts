import test from 'ava';
import { readFile } from 'node:fs/promises';
import { parseHostFacts, parseOsRelease } from '../../lib/facts.ts';

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

test('the facts script reads what the tools themselves say, on this machine, with one program started', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { LocalConnection } = await import('../../lib/connection/local.ts');
  const { hostFactsCommand } = await import('../../lib/facts.ts');
  const tool = (...argv: string[]): string => execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' }).trim();
  const r = await new LocalConnection().exec(hostFactsCommand);
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stderr, '');
  const f = parseHostFacts(r.stdout);
  t.is(f.kernel, tool('uname', '-r'));
  t.is(f.arch, tool('uname', '-m'));
  t.is(f.uid, Number(tool('id', '-u')));
  t.is(f.user, tool('id', '-un'));
  t.is(f.hostname, tool('hostname'));
  const osRelease = parseOsRelease(await readFile('/etc/os-release', 'utf8'));
  t.is(f.os.id, osRelease['ID'] ?? 'unknown');
  t.is(f.os.prettyName, osRelease['PRETTY_NAME'] ?? f.os.id);
  // The script's own text starts no program but `id` (and uname where /proc/sys/kernel/arch is missing).
  const programs = hostFactsCommand.script.toString().match(/\b(cat|uname|hostname|id)\b/g) ?? [];
  t.deepEqual([...new Set(programs)].sort(), ['hostname', 'id', 'uname']);
});
