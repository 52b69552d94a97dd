/** SSH connections to the lab's VMs for a test file: opened on first use, reused, closed together. */
import type { Command } from '../../lib/command.ts';
import type { SshConnection } from '../../lib/connection/ssh.ts';
import type { RunEvent } from '../../lib/events.ts';
import type { Inventory } from '../../lib/inventory.ts';
import type { Playbook } from '../../lib/playbook.ts';
import { runPlaybook } from '../../lib/runner.ts';
import type { Lab } from '../../lab/lab.ts';
import { sshTo } from '../../lab/vm.ts';

/** A task's end on one host, as the lab tests collect it from the runner's host:end events. */
export interface Ended {
  host: string;
  task: string;
  status: string;
  changes: string[];
  message?: string;
}

/** A playbook run as the lab tests see it: the exit code, every task's end on every host, the wall seconds. */
export interface Outcome {
  exitCode: number;
  ended: Ended[];
  /** The forced destructive changes done, as the run reported them ("host task: summary: why"). */
  destructive: string[];
  seconds: number;
}

export interface RunOptions {
  check?: boolean;
  tags?: readonly string[];
  /** Every event of the run, as it happens. */
  onEvent?: (e: RunEvent) => void;
}

export async function runBook(book: Playbook, inventory: Inventory, options: RunOptions = {}): Promise<Outcome> {
  const ended: Ended[] = [];
  const destructive: string[] = [];
  const reporter = {
    onEvent(e: RunEvent) {
      options.onEvent?.(e);
      if (e.type !== 'host:end') return;
      ended.push({ host: e.host, task: e.task, status: e.status, changes: e.changes.map((c) => c.summary), ...(e.message ? { message: e.message } : {}) });
      if (e.status === 'changed') for (const c of e.changes) if (c.destructive !== undefined) destructive.push(`${e.host} ${e.task}: ${c.summary}: ${c.destructive}`);
    },
    done: async () => undefined,
  };
  const started = Date.now();
  const r = await runPlaybook(book, { inventory, check: options.check ?? false, tags: options.tags ?? [], reporters: [reporter] });
  return { exitCode: r.exitCode, ended, destructive, seconds: Math.round((Date.now() - started) / 1000) };
}

export const changedTasks = (ended: readonly Ended[]): Ended[] => ended.filter((e) => e.changes.length > 0);
export const failedTasks = (ended: readonly Ended[]): string => JSON.stringify(ended.filter((e) => e.status === 'failed' || e.status === 'unreachable'));

export interface LabConnections {
  get(name: string): Promise<SshConnection>;
  /** Run a script on a VM as root: its stdout, or an error with the exit code and stderr. */
  out(name: string, script: Command, timeoutMs?: number): Promise<string>;
  /** Forget a VM's connection (it is rebooting): the next get() opens a new one. */
  drop(name: string): Promise<void>;
  closeAll(): Promise<void>;
}

export function labConnections(lab: () => Lab): LabConnections {
  const open = new Map<string, SshConnection>();
  const connections: LabConnections = {
    async out(name, script, timeoutMs = 120_000) {
      const r = await (await connections.get(name)).exec(script, { timeoutMs });
      if (r.exitCode !== 0) throw new Error(`${name}: exit ${r.exitCode}: ${r.stderr.trim() || r.stdout.trim()}`);
      return r.stdout;
    },
    async get(name) {
      let c = open.get(name);
      if (!c) {
        const rt = lab().vms.find((v) => v.spec.name === name);
        if (!rt) throw new Error(`no VM ${name} in the lab`);
        c = await sshTo(rt, lab().paths);
        open.set(name, c);
      }
      return c;
    },
    async drop(name) {
      await open.get(name)?.close();
      open.delete(name);
    },
    async closeAll() {
      await Promise.all([...open.values()].map((c) => c.close()));
      open.clear();
    },
  };
  return connections;
}
