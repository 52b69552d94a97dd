/**
 * What the MooseFS daemons' plans share: files that must hold rendered text (planned like copy: one atomic write,
 * or chmod/chown), a running daemon told about its new files in the same change (reload, or restart), a data
 * directory owned by the working user, and the unit enabled and started.
 */
import { cmd } from '../../lib/command.ts';
import { exec, type Change, type Step } from '../../lib/module.ts';
import type { Rendered } from '../../lib/template.ts';
import { diffText } from '../../lib/textdiff.ts';
import { planContent, type FileContentFacts } from '../copy.ts';
import type { Stat } from '../file.ts';
import type { ServiceFacts } from '../service.ts';

export interface WantedFile {
  readonly path: string;
  readonly rendered: Rendered;
  readonly mode: string;
  readonly owner: string;
  readonly group: string;
  /** How the running daemon takes a change of this file (null: it needs nothing, e.g. a drop-in). */
  readonly apply: 'reload' | 'restart' | null;
  /** The current text as a diff shows it (secrets masked). */
  readonly mask?: (text: string) => string;
}

const RUNNING = ['active', 'reloading', 'activating'];

export function isRunning(s: ServiceFacts): boolean {
  return RUNNING.includes(s.activeState);
}

/** The unit exists and is not masked: otherwise an error naming the unit and the package. */
export function checkUnit(s: ServiceFacts, unit: string, pkg: string): void {
  if (s.loadState === 'not-found') throw new Error(`${unit} is not known to systemd: is ${pkg} installed?`);
  if (s.loadState === 'masked' || s.unitFileState === 'masked') throw new Error(`${unit} is masked: unmask it first (service module, masked: false)`);
}

export interface FilePlan {
  readonly changes: Change[];
  /** How the daemon must take the new contents: the strongest apply of the files whose content changes. */
  readonly apply: 'reload' | 'restart' | null;
}

/** The changes of each file (content or attributes); which kind of apply the content changes need. */
export function planFiles(files: readonly WantedFile[], read: (path: string) => FileContentFacts): FilePlan {
  const changes: Change[] = [];
  let apply: FilePlan['apply'] = null;
  for (const w of files) {
    const f = read(w.path);
    const before = diffText(f.content);
    const planned = planContent(
      { path: w.path, content: Buffer.from(w.rendered.content, 'utf8'), display: w.rendered.display, displayBefore: w.mask ? w.mask(before) : before, mode: w.mode, owner: w.owner, group: w.group },
      f,
    );
    if (planned.some((c) => c.steps.some((s) => s.kind === 'put')) && w.apply !== null) apply = apply === 'restart' || w.apply === 'restart' ? 'restart' : 'reload';
    changes.push(...planned);
  }
  return { changes, apply };
}

/**
 * The last file change also tells the running daemon (in the same change), unless restart is false: then the
 * summary says the daemon keeps its old settings until a handler restarts it.
 */
export function withApply(plan: FilePlan, unit: string, s: ServiceFacts, restart: boolean, why = ''): Change[] {
  const changes = [...plan.changes];
  if (plan.apply === null || !isRunning(s)) return changes;
  const lastWrite = changes.map((c) => c.steps.some((st) => st.kind === 'put')).lastIndexOf(true);
  const last = changes[lastWrite];
  if (last === undefined) return changes;
  changes[lastWrite] = restart
    ? { ...last, summary: `${last.summary}; then ${plan.apply} ${unit}${why}`, steps: [...last.steps, exec(cmd('systemctl', plan.apply, unit))] }
    : { ...last, summary: `${last.summary} (restart: false: ${unit} runs on the old settings until a handler ${plan.apply}s it)` };
  return changes;
}

/** A directory that must exist, owned by user:group (created with mkdir -p when missing and allowed). */
export function planOwnedDir(path: string, stat: Stat | null, user: string, group: string, what: string, create: boolean): Change[] {
  const chown = exec(cmd('chown', `${user}:${group}`, '--', path));
  if (stat === null) {
    if (!create) throw new Error(`${what} ${path} does not exist`);
    return [{ summary: `create ${what} ${path} owned by ${user}:${group}`, steps: [exec(cmd('mkdir', '-p', '--', path)), chown] }];
  }
  if (stat.type !== 'directory') throw new Error(`${what} ${path} is not a directory (${stat.type})`);
  if (stat.owner === user && stat.group === group) return [];
  return [{ summary: `chown ${user}:${group} ${what} ${path} (it is owned by ${stat.owner}:${stat.group})`, steps: [chown] }];
}

/** Enable the unit when it is not, start it when it does not run (a failed unit is reset first). */
export function planService(unit: string, s: ServiceFacts, willRun: boolean, note = ''): Change[] {
  const changes: Change[] = [];
  if (s.unitFileState === 'disabled' || s.unitFileState === '') {
    changes.push({ summary: `enable ${unit} (${s.unitFileState || 'unknown'})`, steps: [exec(cmd('systemctl', 'enable', unit))] });
  }
  if (!willRun) {
    const steps: Step[] = [...(s.activeState === 'failed' ? [exec(cmd('systemctl', 'reset-failed', unit))] : []), exec(cmd('systemctl', 'start', unit))];
    changes.push({ summary: `start ${unit} (${s.activeState || 'unknown'})${note}`, steps });
  }
  return changes;
}

/** File modes: a file that holds a secret is readable by the daemon's group only. */
export function fileMode(secret: boolean, group: string): { mode: string; owner: string; group: string } {
  return secret ? { mode: '0640', owner: 'root', group } : { mode: '0644', owner: 'root', group: 'root' };
}
