/**
 * How each side is run as a child process, and what its output says: the changed count per host (read from
 * the recap: ours' RECAP, Ansible's PLAY RECAP) and the run's own duration where it prints one.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchHosts } from './hosts.ts';
import { cpuOfProcess, markedProcesses, measure, type Measured } from './measure.ts';

export type Phase = 'first' | 'second' | 'check';
export const PHASES: readonly Phase[] = ['first', 'second', 'check'];

/** How our playbook is started: as the README says (npx tsx), or tsx's own binary, or node with tsx's hook. */
export type Launcher = 'npx' | 'tsx' | 'node';

export const BENCH_DIR = new URL('.', import.meta.url).pathname.replace(/\/$/, '');
export const PROJECT_DIR = join(BENCH_DIR, '..');

export interface RunResult extends Measured {
  /** changed per host, from the recap. */
  readonly changed: Record<string, number>;
  /** failed + unreachable per host. */
  readonly bad: Record<string, number>;
  /** Ansible: CPU time of the ssh ControlPersist masters (not in the tree's rusage), already in cpuMs. */
  readonly detachedCpuMs: number;
  /** Ours: the run's duration as it prints it ("exit 0 after 0.7 s"), ms. */
  readonly inRunMs?: number;
}

export function launcherArgv(launcher: Launcher, script: string, args: readonly string[]): string[] {
  switch (launcher) {
    case 'npx':
      return ['npx', 'tsx', script, ...args];
    case 'tsx':
      return [join(PROJECT_DIR, 'node_modules/.bin/tsx'), script, ...args];
    case 'node':
      return [process.execPath, '--import', 'tsx', script, ...args];
  }
}

/** Our RECAP lines: `h1   ok=20 changed=0  unreachable=0 failed=0 skipped=0 ignored=0`. */
export function parseOurRecap(stdout: string): { changed: Record<string, number>; bad: Record<string, number> } {
  const changed: Record<string, number> = {};
  const bad: Record<string, number> = {};
  const at = stdout.lastIndexOf('\nRECAP\n');
  for (const line of stdout.slice(at < 0 ? 0 : at).split('\n')) {
    const m = /^(\S+)\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/.exec(line);
    if (m) {
      changed[m[1] as string] = Number(m[2]);
      bad[m[1] as string] = Number(m[3]) + Number(m[4]);
    }
  }
  return { changed, bad };
}

/** Ansible's PLAY RECAP lines: `h1 : ok=20 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0`. */
export function parseAnsibleRecap(stdout: string): { changed: Record<string, number>; bad: Record<string, number> } {
  const changed: Record<string, number> = {};
  const bad: Record<string, number> = {};
  for (const line of stdout.split('\n')) {
    const m = /^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/.exec(line);
    if (m) {
      changed[m[1] as string] = Number(m[2]);
      bad[m[1] as string] = Number(m[3]) + Number(m[4]);
    }
  }
  return { changed, bad };
}

export async function runOurs(
  hosts: BenchHosts,
  phase: Phase,
  options: { launcher: Launcher; extraArgs?: readonly string[]; script?: string },
): Promise<RunResult> {
  const args = ['-i', hosts.inventory.sanbook, '--forks', String(hosts.names.length)];
  if (phase === 'check') args.push('--check');
  const argv = launcherArgv(options.launcher, options.script ?? join(BENCH_DIR, 'workload.ts'), [...args, ...(options.extraArgs ?? [])]);
  const m = await measure(argv, { cwd: PROJECT_DIR });
  const after = /exit \d+ after ([0-9.]+) s/.exec(m.stdout);
  return {
    ...m,
    ...parseOurRecap(m.stdout),
    detachedCpuMs: 0,
    ...(after ? { inRunMs: Number(after[1]) * 1000 } : {}),
  };
}

export async function runAnsible(hosts: BenchHosts, phase: Phase): Promise<RunResult> {
  // A fresh ControlPath directory per run: the run opens its own connections (as ours does), and its masters
  // are found by this path, their CPU time counted, and they are stopped by PID at the end.
  const controlDir = await mkdtemp(join(tmpdir(), 'sbcp-'));
  try {
    const args = ['ansible-playbook', '-i', hosts.inventory.ansible, '--forks', String(hosts.names.length), 'site.yml'];
    if (phase === 'check') args.push('--check');
    const m = await measure(args, {
      cwd: join(BENCH_DIR, 'ansible'),
      env: {
        ...process.env,
        ANSIBLE_CONFIG: join(BENCH_DIR, 'ansible', 'ansible.cfg'),
        ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir,
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_FORCE_COLOR: '0',
      },
      marker: controlDir,
    });
    const masters = markedProcesses(controlDir);
    const detachedCpuMs = masters.reduce((sum, pid) => sum + cpuOfProcess(pid), 0);
    for (const pid of masters) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    return { ...m, cpuMs: m.cpuMs + detachedCpuMs, ...parseAnsibleRecap(m.stdout), detachedCpuMs };
  } finally {
    await rm(controlDir, { recursive: true, force: true });
  }
}
