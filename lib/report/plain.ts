/**
 * Plain lines for logs and CI (no terminal): one line per host per task, the plan under it (check mode or
 * changed), diffs with --diff, the recap at the end.
 */
import type { ChangeView, Reporter, RunEvent } from '../events.ts';
import { formatRecap } from './recap.ts';

export interface PlainOptions {
  write?: (text: string) => void;
  diff?: boolean;
  verbose?: number;
}

export function describeChanges(changes: readonly ChangeView[], diff: boolean, verbose: number, indent = '    '): string[] {
  const lines: string[] = [];
  for (const c of changes) {
    lines.push(`${indent}${c.destructive !== undefined ? '!! ' : c.action ? '>> ' : '~ '}${c.summary}`);
    if (c.destructive !== undefined) lines.push(`${indent}   destructive: ${c.destructive}`);
    if (verbose > 0) for (const cmd of c.commands) lines.push(`${indent}   $ ${cmd}`);
    if (diff && c.diff) for (const l of c.diff.replace(/\n$/, '').split('\n')) lines.push(`${indent}   ${l}`);
  }
  return lines;
}

export class PlainReporter implements Reporter {
  readonly #write: (text: string) => void;
  readonly #diff: boolean;
  readonly #verbose: number;
  /** A task's host lines, printed in inventory order when the task ends (parallel hosts finish in any order). */
  #pending = new Map<string, string[]>();
  #order: string[] = [];

  constructor(options: PlainOptions = {}) {
    this.#write = options.write ?? ((t) => process.stdout.write(t));
    this.#diff = options.diff ?? false;
    this.#verbose = options.verbose ?? 0;
  }

  #line(text: string): void {
    this.#write(`${text}\n`);
  }

  onEvent(e: RunEvent): void {
    switch (e.type) {
      case 'run:start':
        this.#line(`PLAYBOOK ${e.playbook}${e.check ? ' (check mode: nothing will be changed)' : ''} on ${e.hosts.length} host(s)`);
        break;
      case 'play:start':
        this.#line(`\nPLAY ${e.play} [${e.hosts.join(', ') || 'no hosts'}]`);
        break;
      case 'task:start':
        this.#line(`${e.handler ? 'HANDLER' : 'TASK'} ${e.task}`);
        this.#order = e.hosts;
        this.#pending = new Map();
        break;
      case 'task:end':
        for (const host of this.#order) for (const l of this.#pending.get(host) ?? []) this.#line(l);
        this.#pending = new Map();
        break;
      case 'host:apply':
        if (this.#verbose > 1) this.#line(`  ${e.host}: $ ${e.step}`);
        break;
      case 'host:end': {
        const word = e.ignored ? 'failed (ignored)' : e.status;
        const why = e.message !== undefined && e.status !== 'ok' && e.status !== 'changed' ? `: ${e.message}` : '';
        const time = this.#verbose > 0 ? ` (${(e.durationMs / 1000).toFixed(2)} s)` : '';
        this.#pending.set(e.host, [`  ${e.host}: ${word}${why}${time}`, ...describeChanges(e.changes, this.#diff, this.#verbose)]);
        break;
      }
      case 'run:end':
        this.#line(`\n${formatRecap(e.recap)}`);
        this.#line(`${e.interrupted ? 'interrupted: no task started after Ctrl-C; ' : ''}${e.check ? 'check mode: nothing was changed; ' : ''}exit ${e.exitCode} after ${(e.durationMs / 1000).toFixed(1)} s`);
        break;
      default:
        break;
    }
  }

  async done(): Promise<void> {}
}
