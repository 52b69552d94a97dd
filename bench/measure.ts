/**
 * Run one command as a child process and measure it: wall time, the CPU time of its whole process tree
 * (GNU time: user + sys of every descendant it waited for), the largest single process' peak RSS (GNU time %M),
 * and the peak of the tree's total PSS, sampled from /proc (forked workers share pages: PSS counts a shared
 * page once across them, RSS would count it in each). Processes that leave the tree (ssh ControlPersist
 * masters) are found by a marker string in their command line; their CPU time is added by the caller.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Measured {
  readonly exitCode: number;
  readonly wallMs: number;
  /** user + sys of the process tree, in ms. */
  readonly cpuMs: number;
  readonly userMs: number;
  readonly sysMs: number;
  /**
   * Busy CPU time of the whole machine (every core, every process: /proc/stat user + nice + system + irq +
   * softirq) while the command ran, ms. With loopback hosts this includes their sshd and shells: the work the
   * hosts do, which on real hosts is spread over their own CPUs.
   */
  readonly machineCpuMs: number;
  /** Peak RSS of the largest single process, MB. */
  readonly maxRssMb: number;
  /** Peak of the sampled total PSS of the tree (and of the marked processes), MB. */
  readonly peakTreeMb: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface MeasureOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Also count processes whose command line contains this (they left the tree). */
  readonly marker?: string;
  /** Sampling period of the memory sampler (default 100 ms). */
  readonly sampleMs?: number;
}

const TICK_MS = 10; // USER_HZ = 100 on Linux

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function pids(): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/** The live descendants of root (root included), from /proc/PID/task/TID/children. */
export function treeOf(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i] as number));
  return out;
}

/** Processes whose command line contains marker (never this process). */
export function markedProcesses(marker: string): number[] {
  return pids().filter((pid) => pid !== process.pid && cmdline(pid).includes(marker));
}

function pssKb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** utime + stime of a live process, ms. */
export function cpuOfProcess(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

/** Busy CPU time of the machine since boot, ms (first line of /proc/stat, in USER_HZ ticks). */
export function machineBusyMs(stat: string = readFileSync('/proc/stat', 'utf8')): number {
  const f = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/);
  if (f[0] !== 'cpu') throw new Error(`/proc/stat does not start with the cpu line: ${f[0] ?? ''}`);
  const [user, nice, system, , , irq, softirq] = f.slice(1, 8).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0)) * TICK_MS;
}

/** Run argv[0] with argv[1..] under /usr/bin/time and measure it. Never throws for a non-zero exit. */
export async function measure(argv: readonly string[], options: MeasureOptions = {}): Promise<Measured> {
  const dir = await mkdtemp(join(tmpdir(), 'sanbook-bench-time-'));
  const timeFile = join(dir, 'time');
  try {
    const started = performance.now();
    const busyBefore = machineBusyMs();
    const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, ...argv], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    let peakKb = 0;
    const sample = (): void => {
      if (child.pid === undefined) return;
      const set = new Set(treeOf(child.pid));
      if (options.marker !== undefined) for (const p of markedProcesses(options.marker)) set.add(p);
      let total = 0;
      for (const p of set) total += pssKb(p);
      peakKb = Math.max(peakKb, total);
    };
    const timer = setInterval(sample, options.sampleMs ?? 100);
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => resolve(code ?? 255));
    });
    clearInterval(timer);
    const wallMs = performance.now() - started;
    const machineCpuMs = machineBusyMs() - busyBefore;
    const [user = '0', sys = '0', rss = '0'] = (await readFile(timeFile, 'utf8')).trim().split('\n').pop()?.split(' ') ?? [];
    const userMs = Number(user) * 1000;
    const sysMs = Number(sys) * 1000;
    return {
      exitCode,
      wallMs,
      cpuMs: userMs + sysMs,
      userMs,
      sysMs,
      machineCpuMs,
      maxRssMb: Number(rss) / 1024,
      peakTreeMb: peakKb / 1024,
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
