/**
 * Live progress on a terminal with listr2: for every task, one line per host that moves from waiting to
 * planning to the command being run, and ends as ok / changed / skipped / failed / unreachable, with the
 * planned changes (and diffs with --diff) kept under it. Plays print a header; the recap ends the run.
 */
import { Listr, type ListrTaskWrapper, type ListrDefaultRenderer, type ListrSimpleRenderer } from 'listr2';
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

  constructor(options: ListrOptions = {}) {
    this.#diff = options.diff ?? false;
    this.#verbose = options.verbose ?? 0;
    this.#write = options.write ?? ((t) => process.stdout.write(t));
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
    const title = `${e.host}: ${e.ignored ? 'failed (ignored)' : WORD[e.status]}${this.#check && e.status === 'changed' ? ' (would change)' : ''}`;
    w.title = title;
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
        const list = new Listr(
          [
            {
              title: `${e.handler ? 'HANDLER ' : ''}${e.task}`,
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
                      if ((end?.status === 'failed' && !end.ignored) || end?.status === 'unreachable') {
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
        const previous = this.#running;
        this.#running = previous.then(() => list.run().catch(() => undefined));
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
