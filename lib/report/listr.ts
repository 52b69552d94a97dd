/**
 * Live progress on a terminal with listr2: for every task, one line per host that moves from waiting to
 * planning to the command being run, and ends as ok / changed / skipped / failed / unreachable, with the
 * planned changes (and diffs with --diff) kept under it. Plays print a header; the recap ends the run.
 *
 * A task whose hosts have all finished by the time the display reaches it is printed as the same lines at
 * once, without a live list: a list costs tens of milliseconds to start, render and end, and in a converged
 * run most tasks end within milliseconds (20 lists made a 0.8 s run take 1.2 s longer). listr2 is loaded
 * when the reporter is made, not when the library is imported.
 */
import type { ListrTaskWrapper, ListrDefaultRenderer, ListrSimpleRenderer } from 'listr2';
import type { HostStatus, Reporter, RunEvent } from '../events.ts';
import { describeChanges } from './plain.ts';
import { formatRecap } from './recap.ts';

type Wrapper = ListrTaskWrapper<unknown, ListrDefaultRenderer, ListrSimpleRenderer>;

interface HostSlot {
  wrapper?: Wrapper;
  end?: Extract<RunEvent, { type: 'host:end' }>;
  resolve?: () => void;
  progress?: string;
}

/** Above this many hosts a task's live progress is one line of counts, and its finished lines list only the hosts that are not simply ok. */
export const MANY_HOSTS = 12;

type HostEnd = Extract<RunEvent, { type: 'host:end' }>;

/** The host stopped there: it failed (not ignored) or could not be reached. */
function stopped(e: HostEnd): boolean {
  return (e.status === 'failed' && !e.ignored) || e.status === 'unreachable';
}

function allEnded(hosts: readonly string[], slots: Map<string, HostSlot>): boolean {
  return hosts.every((h) => slots.get(h)?.end !== undefined);
}

const WORD: Record<HostStatus, string> = {
  ok: 'ok',
  changed: 'changed',
  failed: 'failed',
  skipped: 'skipped',
  unreachable: 'unreachable',
};

export interface ListrOptions {
  diff?: boolean;
  verbose?: number;
  write?: (text: string) => void;
}

export class ListrReporter implements Reporter {
  readonly #diff: boolean;
  readonly #verbose: number;
  readonly #write: (text: string) => void;
  #slots = new Map<string, HostSlot>();
  #running: Promise<unknown> = Promise.resolve();
  #check = false;

  readonly #lib: Promise<typeof import('listr2')>;

  constructor(options: ListrOptions = {}) {
    this.#diff = options.diff ?? false;
    this.#verbose = options.verbose ?? 0;
    this.#write = options.write ?? ((t) => process.stdout.write(t));
    this.#lib = import('listr2');
    // Not awaited before the first task: keep a failure to load for the chain (done() reports it).
    this.#lib.catch(() => undefined);
  }

  #title(e: HostEnd): string {
    return `${e.host}: ${e.ignored ? 'failed (ignored)' : WORD[e.status]}${this.#check && e.status === 'changed' ? ' (would change)' : ''}`;
  }

  /**
   * A finished task as listr2's default renderer leaves it: the task, then each host and its changes. Above
   * MANY_HOSTS, the hosts that are simply ok are one line ("ok on 47 hosts"); the others are listed.
   */
  #staticTask(lib: typeof import('listr2'), title: string, hosts: readonly string[], slots: Map<string, HostSlot>): string {
    const { figures, color } = lib;
    const lines: string[] = [];
    let failed = false;
    let quietOk = 0;
    const many = hosts.length > MANY_HOSTS;
    for (const host of hosts) {
      const e = slots.get(host)?.end;
      if (e === undefined) continue;
      const bad = stopped(e);
      failed ||= bad;
      const changes = describeChanges(e.changes, this.#diff, this.#verbose, '');
      if (many && e.status === 'ok' && !e.ignored && changes.length === 0) {
        quietOk++;
        continue;
      }
      if (e.status === 'skipped') lines.push(`  ${color.yellow(figures.arrowDown)} ${host}: skipped (${e.message ?? ''})`);
      else if (bad) lines.push(`  ${color.red(figures.cross)} ${host}: ${WORD[e.status]}: ${e.message ?? ''}`);
      else lines.push(`  ${color.green(figures.tick)} ${this.#title(e)}`);
      for (const line of changes) lines.push(`    ${color.dim(figures.pointerSmall)} ${line}`);
    }
    if (quietOk > 0) lines.unshift(`  ${color.green(figures.tick)} ok on ${quietOk} host${quietOk === 1 ? '' : 's'}`);
    const icon = failed ? color.yellow(figures.warning) : color.green(figures.tick);
    return `${icon} ${title}\n${lines.join('\n')}\n`;
  }

  /** "12/50 hosts done, 3 changed, 1 failed": the one live line of a task on many hosts. */
  #counts(hosts: readonly string[], slots: Map<string, HostSlot>): string {
    let done = 0;
    let changed = 0;
    let failed = 0;
    for (const h of hosts) {
      const e = slots.get(h)?.end;
      if (e === undefined) continue;
      done++;
      if (e.status === 'changed') changed++;
      if (stopped(e)) failed++;
    }
    const verb = this.#check ? 'would change' : 'changed';
    return `${done}/${hosts.length} hosts done${changed > 0 ? `, ${changed} ${verb}` : ''}${failed > 0 ? `, ${failed} failed` : ''}`;
  }

  /** Did the per-host live list show this task (then listr2 has printed its final lines already)? */
  #wasLive(slots: Map<string, HostSlot>): boolean {
    return [...slots.values()].some((s) => s.wrapper !== undefined);
  }

  #slot(host: string): HostSlot {
    let s = this.#slots.get(host);
    if (!s) {
      s = {};
      this.#slots.set(host, s);
    }
    return s;
  }

  #finish(slot: HostSlot): void {
    const w = slot.wrapper;
    const e = slot.end;
    if (!w || !e) return;
    const lines = describeChanges(e.changes, this.#diff, this.#verbose, '');
    w.title = this.#title(e);
    if (lines.length > 0) w.output = lines.join('\n');
    slot.resolve?.();
  }

  onEvent(e: RunEvent): void {
    switch (e.type) {
      case 'run:start':
        this.#check = e.check;
        this.#write(`PLAYBOOK ${e.playbook}${e.check ? ' (check mode: nothing will be changed)' : ''}\n`);
        break;
      case 'play:start':
        this.#running = this.#running.then(() => this.#write(`\nPLAY ${e.play} [${e.hosts.join(', ') || 'no hosts'}]\n`));
        break;
      case 'task:start': {
        // Each task's list keeps its own slots: its renderer may still be catching up when the next task starts.
        const slots = new Map<string, HostSlot>(e.hosts.map((h) => [h, {}]));
        this.#slots = slots;
        const hosts = e.hosts;
        const title = `${e.handler ? 'HANDLER ' : ''}${e.task}`;
        const live = (Listr: typeof import('listr2').Listr) => new Listr(
          [
            {
              title,
              task: (_ctx, task) =>
                task.newListr(
                  hosts.map((host) => ({
                    title: `${host}: waiting`,
                    task: async (_c: unknown, w: Wrapper) => {
                      const slot = slots.get(host) as HostSlot;
                      slot.wrapper = w;
                      if (slot.progress) w.title = `${host}: ${slot.progress}`;
                      await new Promise<void>((resolve) => {
                        slot.resolve = resolve;
                        this.#finish(slot);
                      });
                      const end = slot.end;
                      if (end?.status === 'skipped') w.skip(`${host}: skipped (${end.message ?? ''})`);
                      if (end !== undefined && stopped(end)) {
                        throw new Error(`${host}: ${WORD[end.status]}: ${end.message ?? ''}`);
                      }
                    },
                    rendererOptions: { persistentOutput: true, outputBar: Infinity },
                  })),
                  { concurrent: true, exitOnError: false },
                ),
            },
          ],
          {
            exitOnError: false,
            collectErrors: false,
            rendererOptions: { collapseSubtasks: false, collapseErrors: false, showErrorMessage: true, formatOutput: 'wrap' },
          },
        );
        // Many hosts: one live line with counts, redrawn at most 10 times a second (listr2 redraws the whole list
        // on every change: 50 hosts' lines made a 5 s run take 17 s), then the finished lines.
        const summary = (Listr: typeof import('listr2').Listr) =>
          new Listr([
            {
              title,
              task: async (_c: unknown, w: Wrapper) => {
                while (!allEnded(hosts, slots)) {
                  w.title = `${title}: ${this.#counts(hosts, slots)}`;
                  await new Promise((resolve) => setTimeout(resolve, 100));
                }
              },
            },
          ], { exitOnError: false, collectErrors: false, rendererOptions: { clearOutput: true } });
        const previous = this.#running;
        this.#running = previous.then(async () => {
          const lib = await this.#lib;
          if (!allEnded(hosts, slots)) {
            if (hosts.length > MANY_HOSTS) await summary(lib.Listr).run().catch(() => undefined);
            else await live(lib.Listr).run().catch(() => undefined);
          }
          if (hosts.length > MANY_HOSTS || !this.#wasLive(slots)) this.#write(this.#staticTask(lib, title, hosts, slots));
        });
        break;
      }
      case 'host:start':
        this.#progress(e.host, 'gathering');
        break;
      case 'host:plan':
        this.#progress(e.host, e.changes.length === 0 ? 'nothing to change' : `${e.changes.length} change(s) planned`);
        break;
      case 'host:apply':
        this.#progress(e.host, `$ ${e.step.split('\n')[0] ?? ''}`);
        break;
      case 'host:end': {
        const slot = this.#slot(e.host);
        slot.end = e;
        this.#finish(slot);
        break;
      }
      case 'run:end':
        this.#running = this.#running.then(() => {
          this.#write(`\n${formatRecap(e.recap, true)}\n`);
          this.#write(`${e.interrupted ? 'interrupted: no task started after Ctrl-C; ' : ''}${e.check ? 'check mode: nothing was changed; ' : ''}exit ${e.exitCode} after ${(e.durationMs / 1000).toFixed(1)} s\n`);
        });
        break;
      default:
        break;
    }
  }

  #progress(host: string, text: string): void {
    const slot = this.#slot(host);
    slot.progress = text;
    if (slot.wrapper && !slot.end) slot.wrapper.title = `${host}: ${text}`;
  }

  async done(): Promise<void> {
    await this.#running;
  }
}
