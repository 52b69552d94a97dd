/**
 * package on apt hosts: the gather script (dpkg-query, apt-cache policy for latest, whether the package lists
 * exist), and the read a batch joins across package tasks (DpkgRead). The parser is in modules/package.ts.
 */
import { cmd, sh, type Command } from '../lib/command.ts';
import { answered, ReadTogether, sameFamily, type Joined } from '../lib/connection/together.ts';
import type { ExecResult } from '../lib/connection/types.ts';

/** The marker lines of the package gather scripts: `MARK TOOL EXIT-CODE`, and `MARK lists`. */
export const MARK = '@@sanbook-package@@';

/** dpkg-query -W --showformat: name, db:Status-Abbrev, version. */
export const DPKG_FORMAT = '${Package}\\t${db:Status-Abbrev}\\t${Version}\\n';

export function dpkgQueryCommand(names: readonly string[]): Command {
  return cmd('dpkg-query', '-W', `--showformat=${DPKG_FORMAT}`, '--', names);
}

export function aptPolicyCommand(names: readonly string[]): Command {
  return cmd('apt-cache', 'policy', '--', names);
}

/**
 * The apt gather script: sections separated by marker lines carrying each tool's exit code. Without latest,
 * and for plain names, a read a batch may join with the other package tasks' (DpkgRead): one dpkg-query for
 * all, which costs a host about as much as one for a single name (it reads dpkg's whole database).
 */
export function aptGatherCommand(names: readonly string[], latest: boolean): Command {
  const script = aptGatherScript(names, latest);
  return !latest && names.every((n) => PLAIN_NAME.test(n)) ? script.with({ together: new DpkgRead(names) }) : script;
}

function aptGatherScript(names: readonly string[], latest: boolean): Command {
  const policy = latest ? sh`${aptPolicyCommand(names)}; echo ${MARK} apt-cache $?` : sh`:`;
  return sh`${dpkgQueryCommand(names)}; echo ${MARK} dpkg-query $?
${policy}
for f in /var/lib/apt/lists/*_Packages*; do if [ -e "$f" ]; then echo ${MARK} lists; fi; break; done`;
}

/**
 * A package name as Debian Policy (5.6.1) has it, with no architecture and nothing dpkg-query would take as a
 * pattern: dpkg-query -W prints every package of that name, once, and exits 1 when there is none.
 */
const PLAIN_NAME = /^[a-z0-9][a-z0-9+.-]*$/;

/**
 * The dpkg-query of several package tasks in one: dpkg-query -W for all their names prints the same rows, in
 * the same (database) order, as each would alone; each task gets the rows of its own names, and exit 1 when
 * one of its names has none (dpkg-query's "no packages found matching"). Anything else (an exit of 2 or
 * more, output out of shape) gives no result: each runs its own query in its turn.
 */
export class DpkgRead extends ReadTogether {
  readonly family = 'dpkg-query';
  constructor(readonly names: readonly string[]) {
    super();
  }

  join(others: readonly ReadTogether[]): Joined {
    const reads = sameFamily(this, others, DpkgRead);
    const all = [...new Set(reads.flatMap((r) => r.names))];
    return {
      script: aptGatherScript(all, false),
      display: `(the packages of ${reads.length} tasks: ${dpkgQueryCommand(all).display})`,
      split: (result) => splitDpkg(reads, result),
    };
  }
}

function splitDpkg(reads: readonly DpkgRead[], result: ExecResult): (ExecResult | undefined)[] {
  const none = reads.map(() => undefined);
  const lines = result.stdout.split('\n');
  const end = lines.findIndex((l) => l.startsWith(`${MARK} dpkg-query `));
  const code = lines[end]?.slice(`${MARK} dpkg-query `.length);
  if (result.exitCode !== 0 || end < 0 || (code !== '0' && code !== '1')) return none;
  const rows = lines.slice(0, end);
  if (rows.some((r) => r.split('\t').length !== 3)) return none;
  const rest = lines.slice(end + 1).join('\n');
  if (rest !== '' && rest !== `${MARK} lists\n`) return none;
  const rowName = (row: string): string => row.slice(0, row.indexOf('\t'));
  const found = new Set(rows.map(rowName));
  return reads.map((read) => {
    const own = rows.filter((row) => read.names.includes(rowName(row)));
    const exitCode = read.names.every((n) => found.has(n)) ? 0 : 1;
    const text = [...own.map((r) => `${r}\n`), `${MARK} dpkg-query ${exitCode}\n`, rest].join('');
    return answered(Buffer.from(text, 'utf8'), 0, result.durationMs);
  });
}

