/**
 * Where our time goes, on hosts the matrix left converged: one re-run with --json read event by event (each
 * task's wall time, the commands each host ran for it, the run's own duration against the process' wall time),
 * the cost of each reporter (plain lines, JSON lines, and listr2 on a pseudo-terminal made by script(1), with JSON
 * lines on the same pseudo-terminal as the control), and
 * one command over our SSH connection against one over ssh2 alone.
 */
import { join } from 'node:path';
import type { FloorReport } from './floor.ts';
import type { BenchHosts } from './hosts.ts';
import { floorSpec, runFloorProcess } from './matrix.ts';
import { measure } from './measure.ts';
import { BENCH_DIR, launcherArgv, PROJECT_DIR, runOurs, type Launcher } from './sides.ts';
import { spread, type Spread } from './stats.ts';

/**
 * script(1)'s terminal has no size; the CLI then prints plain lines, as it should on a terminal of no width. A
 * terminal of 120 columns is what a person would watch listr2 on.
 */
const SIZED = 'stty cols 120 rows 50;';

export interface TaskProfile {
  readonly name: string;
  /** task:start to task:end. */
  readonly wallMs: number;
  /** Commands each host ran for the task (median over hosts; the first task includes the host facts). */
  readonly commands: number;
  readonly hostMedianMs: number;
  readonly hostMaxMs: number;
}

export interface Profile {
  readonly hosts: number;
  readonly processWallMs: number;
  readonly runDurationMs: number;
  /** Commands per host over the whole re-run. */
  readonly commandsPerHost: number;
  readonly tasks: TaskProfile[];
  readonly reporters: { label: string; wall: Spread; cpu: Spread }[];
  readonly floorRaw: FloorReport;
  readonly floorSanbook: FloorReport;
}

interface JsonEvent {
  type: string;
  time: string;
  task?: string;
  host?: string;
  commands?: number;
  durationMs?: number;
}

function median(xs: readonly number[]): number {
  return spread(xs).median;
}

export function profileEvents(stdout: string): Omit<Profile, 'hosts' | 'processWallMs' | 'reporters' | 'floorRaw' | 'floorSanbook'> {
  const events = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as JsonEvent);
  const tasks: TaskProfile[] = [];
  const lastCount = new Map<string, number>();
  let current: { name: string; start: number; counts: number[]; durations: number[] } | undefined;
  let runDurationMs = 0;
  for (const e of events) {
    const t = Date.parse(e.time);
    if (e.type === 'task:start' && e.task !== undefined) current = { name: e.task, start: t, counts: [], durations: [] };
    if (e.type === 'host:end' && current && e.host !== undefined) {
      const total = e.commands ?? 0;
      current.counts.push(total - (lastCount.get(e.host) ?? 0));
      lastCount.set(e.host, total);
      current.durations.push(e.durationMs ?? 0);
    }
    if (e.type === 'task:end' && current) {
      tasks.push({
        name: current.name,
        wallMs: t - current.start,
        commands: median(current.counts),
        hostMedianMs: median(current.durations),
        hostMaxMs: Math.max(...current.durations),
      });
      current = undefined;
    }
    if (e.type === 'run:end') runDurationMs = (e as JsonEvent & { durationMs: number }).durationMs;
  }
  return { runDurationMs, commandsPerHost: median([...lastCount.values()]), tasks };
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export async function profileOurs(hosts: BenchHosts, launcher: Launcher, runs: number, log: (line: string) => void): Promise<Profile> {
  const json = await runOurs(hosts, 'second', { launcher, extraArgs: ['--json'] });
  if (json.exitCode !== 0) throw new Error(`the --json re-run exited ${json.exitCode}: ${json.stderr.slice(-800)}`);
  const events = profileEvents(json.stdout);
  log(`  profile: --json re-run ${(json.wallMs / 1000).toFixed(2)} s wall, run ${(events.runDurationMs / 1000).toFixed(2)} s, ${events.commandsPerHost} commands per host`);

  // Reporters, interleaved: plain (what a pipe gets), JSON lines, listr2 on a pseudo-terminal.
  const args = ['-i', hosts.inventory.sanbook, '--forks', String(hosts.names.length)];
  const script = join(BENCH_DIR, 'workload.ts');
  const variants: { label: string; argv: string[] }[] = [
    { label: 'plain lines (stdout is a pipe)', argv: launcherArgv(launcher, script, args) },
    { label: 'JSON lines (--json)', argv: launcherArgv(launcher, script, [...args, '--json']) },
    {
      // The control for the next one: what script(1) itself costs.
      label: 'JSON lines on a pseudo-terminal (script(1))',
      argv: ['script', '-q', '-e', '-c', `${SIZED} ${launcherArgv(launcher, script, [...args, '--json']).map(shellQuote).join(' ')}`, '/dev/null'],
    },
    {
      label: 'listr2 (a pseudo-terminal, script(1))',
      argv: ['script', '-q', '-e', '-c', `${SIZED} ${launcherArgv(launcher, script, args).map(shellQuote).join(' ')}`, '/dev/null'],
    },
  ];
  const walls = new Map<string, number[]>();
  const cpus = new Map<string, number[]>();
  for (let rep = 0; rep < runs; rep++) {
    for (const v of variants) {
      const m = await measure(v.argv, { cwd: PROJECT_DIR, env: { ...process.env, COLUMNS: '120', LINES: '40' } });
      if (m.exitCode !== 0) throw new Error(`${v.label} exited ${m.exitCode}: ${m.stderr.slice(-800)}`);
      walls.set(v.label, [...(walls.get(v.label) ?? []), m.wallMs]);
      cpus.set(v.label, [...(cpus.get(v.label) ?? []), m.cpuMs]);
      log(`  profile: reporter ${v.label}: ${(m.wallMs / 1000).toFixed(2)} s`);
    }
  }
  const reporters = variants.map((v) => ({ label: v.label, wall: spread(walls.get(v.label) ?? []), cpu: spread(cpus.get(v.label) ?? []) }));

  const specFile = await floorSpec(hosts);
  const floorRaw = (await runFloorProcess(specFile, launcher, 'raw')).report;
  const floorSanbook = (await runFloorProcess(specFile, launcher, 'sanbook')).report;
  log(`  profile: one command ${floorRaw.perCommandMedianMs.toFixed(1)} ms over ssh2, ${floorSanbook.perCommandMedianMs.toFixed(1)} ms over our connection`);
  return { hosts: hosts.names.length, processWallMs: json.wallMs, ...events, reporters, floorRaw, floorSanbook };
}
