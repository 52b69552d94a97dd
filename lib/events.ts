/**
 * What the runner tells the world. Renderers (listr2 on a terminal, plain lines for CI, JSON lines for
 * machines) only listen to these events; every string in them has been through the secret mask.
 */
export type HostStatus = 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable';

/** A planned change as reporters see it (masked). */
export interface ChangeView {
  summary: string;
  /** Unified diff text, when the change has a before/after. */
  diff?: string;
  destructive?: string;
  action?: boolean;
  /** The commands the change runs (displays, secrets masked). */
  commands: string[];
}

export interface HostRecap {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  unreachable: number;
  ignored: number;
  /** Set when the host stopped: the task it was on and why. */
  stoppedAt?: { task: string; reason: string };
}

export type RunEvent =
  | { type: 'run:start'; playbook: string; check: boolean; diff: boolean; hosts: string[] }
  | { type: 'play:start'; play: string; index: number; hosts: string[]; tasks: string[] }
  | { type: 'task:start'; play: string; task: string; index: number; handler: boolean; hosts: string[] }
  | { type: 'host:start'; task: string; host: string }
  | { type: 'host:plan'; task: string; host: string; changes: ChangeView[] }
  | { type: 'host:apply'; task: string; host: string; step: string }
  | {
      type: 'host:end';
      task: string;
      host: string;
      status: HostStatus;
      changes: ChangeView[];
      /** Why it failed, was skipped or unreachable. */
      message?: string;
      ignored?: boolean;
      durationMs: number;
      commands: number;
    }
  | { type: 'task:end'; play: string; task: string; handler: boolean }
  | { type: 'play:end'; play: string }
  | {
      type: 'run:end';
      recap: Record<string, HostRecap>;
      exitCode: number;
      durationMs: number;
      check: boolean;
      /** Stopped by the user (SIGINT): no task started after that. */
      interrupted: boolean;
    };

export interface Reporter {
  onEvent(event: RunEvent): void;
  /** Resolve when everything has been written. */
  done(): Promise<void>;
}
