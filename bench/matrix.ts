/**
 * The measured runs. For each host count: start the hosts, warm each side up with one first run the first time
 * it runs (tsx's transform cache, Python's bytecode, the page cache), then repeat: each side converges a blank
 * state (first), runs again (second: must change nothing), runs in check mode (must plan nothing), and the raw
 * floor runs once with 20 commands per host and once with 2 (the round trips of our converged run). The sides alternate which goes first from one repetition to the next, so machine noise hits both. A run that
 * fails, or a second run that changes something, stops the benchmark: its numbers would compare nothing.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compareTrees } from './compare-trees.ts';
import type { FloorHosts, FloorReport } from './floor.ts';
import { startBenchHosts, type BenchHosts, type Side } from './hosts.ts';
import { measure } from './measure.ts';
import { BENCH_DIR, launcherArgv, PHASES, PROJECT_DIR, runAnsible, runOurs, type Launcher, type Phase, type RunResult } from './sides.ts';

export interface Sample {
  readonly hosts: number;
  readonly rep: number;
  readonly side: Side | 'floor';
  /** floor: 20 commands per host; floor2: 2 (the round trips of our converged run: host facts, one batch). */
  readonly phase: Phase | 'floor' | 'floor2';
  readonly wallMs: number;
  readonly cpuMs: number;
  /** Busy CPU of the whole machine during the run (measure.ts); absent in results recorded before it existed. */
  readonly machineCpuMs?: number;
  readonly maxRssMb: number;
  readonly peakTreeMb: number;
  /** Ours: the duration the run prints; floor: its in-process total (connections + commands). */
  readonly inRunMs?: number;
  readonly changed?: number;
  readonly detachedCpuMs?: number;
  readonly floor?: FloorReport;
}

export interface MatrixOptions {
  readonly hostCounts: readonly number[];
  readonly runs: number;
  /** Ansible runs only up to this many hosts. */
  readonly ansibleMax: number;
  /** Per host count: Ansible takes part in this many repetitions only (default: all). */
  readonly ansibleRuns?: Readonly<Record<number, number>>;
  readonly launcher: Launcher;
  readonly log: (line: string) => void;
  /** Told the samples so far after each repetition (to save them as they come). */
  readonly onSamples?: (samples: readonly Sample[]) => Promise<void>;
  /** Called with the hosts of the largest Ansible-compared count (or `profileAt`), after its runs, before they stop. */
  readonly atLargestCompared?: (hosts: BenchHosts) => Promise<void>;
  /** The host count to call atLargestCompared at, instead of the largest compared with Ansible. */
  readonly profileAt?: number;
}

export interface MatrixResult {
  readonly samples: Sample[];
  /** Per host count: differences between the trees the two sides converged on (first host). */
  readonly treeDiffs: Record<number, string[]>;
  /** Changed tasks per host in a first run (the same on both sides, or the benchmark stops). */
  readonly firstRunChanged: number | undefined;
}

function tail(r: RunResult): string {
  return `${r.stdout.slice(-2500)}\n${r.stderr.slice(-1500)}`;
}

function check(side: Side, phase: Phase, hosts: BenchHosts, r: RunResult, expectFirst: number | undefined): number {
  const where = `${side} ${phase} run on ${hosts.names.length} host(s)`;
  if (r.exitCode !== 0) throw new Error(`${where} exited ${r.exitCode}:\n${tail(r)}`);
  const missing = hosts.names.filter((h) => r.changed[h] === undefined);
  if (missing.length > 0) throw new Error(`${where}: no recap line for ${missing.join(', ')}:\n${tail(r)}`);
  const bad = hosts.names.filter((h) => (r.bad[h] ?? 0) > 0);
  if (bad.length > 0) throw new Error(`${where}: failed or unreachable on ${bad.join(', ')}:\n${tail(r)}`);
  const counts = new Set(hosts.names.map((h) => r.changed[h] as number));
  if (counts.size !== 1) throw new Error(`${where}: hosts changed different numbers of tasks (${[...counts].join(', ')})`);
  const changed = [...counts][0] as number;
  if (phase !== 'first' && changed !== 0) throw new Error(`${where} changed ${changed} task(s) per host: it did not converge:\n${tail(r)}`);
  if (phase === 'first' && expectFirst !== undefined && changed !== expectFirst) {
    throw new Error(`${where} changed ${changed} task(s) per host where the other side changed ${expectFirst}: not the same work`);
  }
  return changed;
}

/** Write the floor's host list (bench/floor.ts HOSTS.json) in the hosts' directory; returns its path. */
export async function floorSpec(hosts: BenchHosts): Promise<string> {
  const spec: FloorHosts = {
    user: hosts.user,
    keyFile: hosts.keyFile,
    knownHostsFile: hosts.knownHostsFile,
    hosts: hosts.names.map((name, i) => ({ name, port: hosts.loopback.servers[i]?.port ?? 0 })),
  };
  const file = join(hosts.loopback.dir, 'floor.json');
  await writeFile(file, JSON.stringify(spec));
  return file;
}

export async function runFloorProcess(specFile: string, launcher: Launcher, via: 'raw' | 'sanbook', commands = 20): Promise<{ wallMs: number; cpuMs: number; machineCpuMs: number; maxRssMb: number; peakTreeMb: number; report: FloorReport }> {
  const m = await measure(launcherArgv(launcher, join(BENCH_DIR, 'floor.ts'), [specFile, '--via', via, '--commands', String(commands)]), { cwd: PROJECT_DIR });
  if (m.exitCode !== 0) throw new Error(`the floor (${via}) exited ${m.exitCode}: ${m.stderr.slice(-1500)}`);
  const line = m.stdout.trim().split('\n').pop() ?? '';
  return { ...m, report: JSON.parse(line) as FloorReport };
}

export async function runMatrix(options: MatrixOptions): Promise<MatrixResult> {
  const samples: Sample[] = [];
  const treeDiffs: Record<number, string[]> = {};
  let firstRunChanged: number | undefined;
  const warmed = new Set<Side | 'floor'>();
  const compared = options.hostCounts.filter((n) => n <= options.ansibleMax);
  const largestCompared = options.profileAt ?? (compared.length > 0 ? Math.max(...compared) : undefined);
  for (const n of options.hostCounts) {
    const withAnsible = n <= options.ansibleMax;
    options.log(`${n} host(s): starting ${n} sshd on 127.0.0.1`);
    const t0 = performance.now();
    const hosts = await startBenchHosts(n);
    options.log(`  started in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    try {
      const spec = await floorSpec(hosts);
      const sides: Side[] = withAnsible ? ['sanbook', 'ansible'] : ['sanbook'];
      const run = (side: Side, phase: Phase): Promise<RunResult> =>
        side === 'sanbook' ? runOurs(hosts, phase, { launcher: options.launcher }) : runAnsible(hosts, phase);
      // Warm-up (not measured), once per side: a first run, and one floor. (Not check mode on a blank state:
      // there Ansible's lineinfile fails on the file its earlier task only planned to create.)
      for (const side of sides.filter((x) => !warmed.has(x))) {
        await hosts.reset(side);
        const w = await run(side, 'first');
        if (w.exitCode !== 0) throw new Error(`warm-up ${side} run exited ${w.exitCode}:\n${tail(w)}`);
        warmed.add(side);
      }
      if (!warmed.has('floor')) {
        await runFloorProcess(spec, options.launcher, 'raw');
        warmed.add('floor');
      }
      const ansibleReps = options.ansibleRuns?.[n] ?? options.runs;
      for (let rep = 0; rep < options.runs; rep++) {
        const here = rep < ansibleReps ? sides : sides.filter((x) => x !== 'ansible');
        const order = rep % 2 === 0 ? here : [...here].reverse();
        for (const side of order) {
          await hosts.reset(side);
          for (const phase of PHASES) {
            const r = await run(side, phase);
            const changed = check(side, phase, hosts, r, firstRunChanged);
            if (phase === 'first') firstRunChanged ??= changed;
            samples.push({
              hosts: n,
              rep,
              side,
              phase,
              wallMs: r.wallMs,
              cpuMs: r.cpuMs,
              machineCpuMs: r.machineCpuMs,
              maxRssMb: r.maxRssMb,
              peakTreeMb: r.peakTreeMb,
              changed,
              ...(r.inRunMs !== undefined ? { inRunMs: r.inRunMs } : {}),
              ...(side === 'ansible' ? { detachedCpuMs: r.detachedCpuMs } : {}),
            });
            options.log(`  rep ${rep + 1}/${options.runs} ${side.padEnd(7)} ${phase.padEnd(6)} ${(r.wallMs / 1000).toFixed(2)} s wall, ${(r.cpuMs / 1000).toFixed(2)} s CPU, changed ${changed}/host`);
          }
        }
        const f = await runFloorProcess(spec, options.launcher, 'raw');
        samples.push({ hosts: n, rep, side: 'floor', phase: 'floor', wallMs: f.wallMs, cpuMs: f.cpuMs, machineCpuMs: f.machineCpuMs, maxRssMb: f.maxRssMb, peakTreeMb: f.peakTreeMb, inRunMs: f.report.totalMs, floor: f.report });
        options.log(`  rep ${rep + 1}/${options.runs} floor           ${(f.wallMs / 1000).toFixed(2)} s wall (in-process ${(f.report.totalMs / 1000).toFixed(2)} s)`);
        // The floor of our converged run's own round trips: the connection, then 2 commands (facts, one batch).
        const f2 = await runFloorProcess(spec, options.launcher, 'raw', 2);
        samples.push({ hosts: n, rep, side: 'floor', phase: 'floor2', wallMs: f2.wallMs, cpuMs: f2.cpuMs, machineCpuMs: f2.machineCpuMs, maxRssMb: f2.maxRssMb, peakTreeMb: f2.peakTreeMb, inRunMs: f2.report.totalMs, floor: f2.report });
        options.log(`  rep ${rep + 1}/${options.runs} floor, 2 cmds  ${(f2.wallMs / 1000).toFixed(2)} s wall (in-process ${(f2.report.totalMs / 1000).toFixed(2)} s)`);
        await options.onSamples?.(samples);
      }
      if (withAnsible && hosts.names[0] !== undefined) {
        const h = hosts.names[0];
        treeDiffs[n] = await compareTrees(hosts.rootOf('sanbook', h), hosts.rootOf('ansible', h));
      }
      if (n === largestCompared && options.atLargestCompared) await options.atLargestCompared(hosts);
    } finally {
      await hosts.stop();
    }
  }
  return { samples, treeDiffs, firstRunChanged };
}
