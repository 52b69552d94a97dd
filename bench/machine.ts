/** The machine the numbers were measured on, and what else was running on it. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  readonly date: string;
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly os: string;
  readonly node: string;
  readonly tsx: string;
  readonly ansible: string;
  readonly sshd: string;
  /** 1-minute load average when the run started. */
  readonly loadAtStart: number;
  /** Share of all CPUs busy over one second before the run (other work distorts the numbers). */
  readonly busyPercentAtStart: number;
  /** Processes using the most CPU (ps: average over their life) when the run started. */
  readonly busiest: string[];
}

/** Busy share of all CPUs over `ms`, from /proc/stat. */
export async function cpuBusyPercent(ms = 1000): Promise<number> {
  const read = (): { idle: number; total: number } => {
    const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  const total = b.total - a.total;
  return total > 0 ? (100 * (total - (b.idle - a.idle))) / total : 0;
}

function run(argv: readonly string[]): string {
  try {
    return execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return (err.stderr ?? err.message).trim();
  }
}

export async function describeMachine(): Promise<Machine> {
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? 'unknown';
  const tsxVersion = /tsx v(\S+)/.exec(run(['node_modules/.bin/tsx', '--version']))?.[1] ?? 'unknown';
  return {
    date: new Date().toISOString(),
    nproc: Number(run(['nproc'])),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: totalmem() / 2 ** 30,
    kernel: release(),
    os: pretty,
    node: process.version,
    tsx: tsxVersion,
    ansible: run(['ansible-playbook', '--version']).split('\n')[0] ?? 'not installed',
    sshd: run(['sh', '-c', 'ssh -V 2>&1']),
    loadAtStart: loadavg()[0] ?? 0,
    busyPercentAtStart: await cpuBusyPercent(),
    busiest: run(['ps', '-eo', 'pcpu,comm', '--sort=-pcpu', '--no-headers'])
      .split('\n')
      .slice(0, 4)
      .map((l) => l.trim().replace(/\s+/, '% ')),
  };
}
