/**
 * The benchmark in one command: starts the loopback hosts, runs ours, Ansible's and the raw floor interleaved,
 * measures start-up and where our time goes, stops every sshd it started (by PID), and writes bench/RESULTS.md
 * and bench/results.json.
 *
 *   bash bench/setup.sh && npx tsx bench/run.ts [--hosts 1,6,50,200] [--runs 5] [--quick] [--ansible-max 50]
 *        [--ansible-runs HOSTS:N,...] [--merge FILE] [--profile-at N] [--launcher npx|tsx|node] [--no-startup] [--no-profile] [--note TEXT]... [--out DIR]
 *   npx tsx bench/run.ts --from bench/results.json    # only re-render RESULTS.md from the raw samples
 *
 * --quick: 1 and 6 hosts, 2 repetitions (validates the harness in a few minutes). --ansible-max 0: ours only.
 * --merge FILE: add the samples of an earlier run (results.json or results.partial.json) for the host counts this
 * run does not measure, and its start-up and profile sections when this run skips them; --profile-at N: take
 * the profile ("where our time goes") at N hosts.
 * --ansible-runs 50:2: at 50 hosts Ansible takes part in the first 2 repetitions only (one of its runs there takes
 * minutes); ours and the floor still run every repetition, and ratios pair the repetitions both ran.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuBusyPercent, describeMachine } from './machine.ts';
import { runMatrix, type Sample } from './matrix.ts';
import { profileOurs, type Profile } from './profile.ts';
import { renderReport, type ReportInput } from './report.ts';
import { BENCH_DIR, type Launcher } from './sides.ts';
import { measureImports, measureStartup, type ImportResult, type StartupResult } from './startup.ts';

export interface BenchOptions {
  hostCounts: number[];
  runs: number;
  ansibleMax: number;
  /** Per host count: how many repetitions Ansible takes part in (default: all). */
  ansibleRuns: Record<number, number>;
  launcher: Launcher;
  startup: boolean;
  profile: boolean;
  notes: string[];
  out: string;
  /** Only re-render RESULTS.md from this results.json (no run). */
  from: string | undefined;
  /** Samples of an earlier run, for the host counts this one does not measure. */
  merge: string | undefined;
  profileAt: number | undefined;
}

function positiveInts(text: string, what: string): number[] {
  const values = text.split(',').map((v) => Number(v.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`${what} must be positive whole numbers, not "${text}"`);
  return values;
}

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      hosts: { type: 'string' },
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'ansible-max': { type: 'string', default: '50' },
      'ansible-runs': { type: 'string' },
      launcher: { type: 'string', default: 'npx' },
      'no-startup': { type: 'boolean', default: false },
      'no-profile': { type: 'boolean', default: false },
      note: { type: 'string', multiple: true },
      out: { type: 'string', default: BENCH_DIR },
      from: { type: 'string' },
      merge: { type: 'string' },
      'profile-at': { type: 'string' },
    },
  });
  const launcher = values.launcher;
  if (!/^\d+$/.test(values['ansible-max'] ?? '')) throw new Error(`--ansible-max is a whole number (0: never run Ansible), not "${values['ansible-max']}"`);
  if (launcher !== 'npx' && launcher !== 'tsx' && launcher !== 'node') throw new Error(`--launcher is npx, tsx or node, not "${launcher}"`);
  const quick = values.quick === true;
  const ansibleRuns: Record<number, number> = {};
  for (const pair of (values['ansible-runs'] ?? '').split(',').filter((p) => p.trim() !== '')) {
    const m = /^\s*(\d+):(\d+)\s*$/.exec(pair);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new Error(`--ansible-runs takes HOSTS:RUNS pairs like 50:2, not "${pair}"`);
    ansibleRuns[Number(m[1])] = Number(m[2]);
  }
  return {
    hostCounts: positiveInts(values.hosts ?? (quick ? '1,6' : '1,6,50,200'), '--hosts'),
    runs: positiveInts(values.runs ?? (quick ? '2' : '5'), '--runs')[0] as number,
    ansibleMax: Number(values['ansible-max'] ?? '50'),
    ansibleRuns,
    launcher,
    startup: values['no-startup'] !== true,
    profile: values['no-profile'] !== true,
    notes: values.note ?? [],
    out: values.out ?? BENCH_DIR,
    from: values.from,
    merge: values.merge,
    profileAt: values['profile-at'] === undefined ? undefined : positiveInts(values['profile-at'], '--profile-at')[0],
  };
}

const USAGE = `usage: npx tsx bench/run.ts [--hosts 1,6,50,200] [--runs 5] [--quick] [--ansible-max 50]
       [--ansible-runs HOSTS:N,...] [--launcher npx|tsx|node] [--no-startup] [--no-profile] [--note TEXT]... [--out DIR]
       npx tsx bench/run.ts --from bench/results.json   (re-render RESULTS.md from the raw samples)
`;

async function main(): Promise<void> {
  const started = performance.now();
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  let options: BenchOptions;
  try {
    options = parseBenchArgs(argv);
  } catch (e) {
    // A mistake on the command line: one line and the usage, no stack.
    process.stderr.write(`bench/run.ts: ${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    process.exitCode = 1;
    return;
  }
  // --out may name a directory that does not exist yet (the partial samples are written there from the first run on).
  await mkdir(options.out, { recursive: true });
  if (options.from !== undefined) {
    // The raw samples are the record; the page is rendered from them (after a change to report.ts, say).
    const saved = JSON.parse(await readFile(options.from, 'utf8')) as ReportInput;
    await writeFile(join(options.out, 'RESULTS.md'), renderReport(saved));
    process.stdout.write(`rendered ${join(options.out, 'RESULTS.md')} from ${options.from}\n`);
    return;
  }
  const log = (line: string): void => {
    process.stdout.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  };
  // Ctrl-C or TERM: exit through process.exit, whose 'exit' handlers (lab/loopback/sshd.ts) stop our sshd by PID.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

  const machine = await describeMachine();
  log(`machine: ${machine.nproc} CPUs, ${machine.cpuModel}, ${machine.busyPercentAtStart.toFixed(0)}% busy; ${machine.ansible}`);
  let profile: Profile | undefined;
  const matrix = await runMatrix({
    hostCounts: options.hostCounts,
    runs: options.runs,
    ansibleMax: options.ansibleMax,
    ansibleRuns: options.ansibleRuns,
    launcher: options.launcher,
    log,
    ...(options.profileAt !== undefined ? { profileAt: options.profileAt } : {}),
    // Saved as they come: an interrupted run keeps its samples.
    onSamples: (samples) => writeFile(join(options.out, 'results.partial.json'), `${JSON.stringify(samples)}\n`),
    ...(options.profile
      ? { atLargestCompared: async (hosts) => void (profile = await profileOurs(hosts, options.launcher, options.runs > 2 ? 3 : 1, log)) }
      : {}),
  });
  let merged: Sample[] = [];
  let savedInput: ReportInput | undefined;
  if (options.merge !== undefined) {
    const saved = JSON.parse(await readFile(options.merge, 'utf8')) as Sample[] | ReportInput;
    if (!Array.isArray(saved)) savedInput = saved;
    const samples = Array.isArray(saved) ? saved : saved.matrix.samples;
    merged = samples.filter((s) => !options.hostCounts.includes(s.hosts));
    if (!Array.isArray(saved)) Object.assign(matrix.treeDiffs, saved.matrix.treeDiffs);
    log(`merged ${merged.length} samples of ${options.merge} (host counts ${[...new Set(merged.map((s) => s.hosts))].join(', ')})`);
  }
  const allCounts = [...new Set([...options.hostCounts, ...merged.map((s) => s.hosts)])].sort((a, b) => a - b);
  matrix.samples.unshift(...merged);
  let startup: StartupResult[] | undefined;
  let imports: ImportResult[] | undefined;
  if (options.startup) {
    startup = await measureStartup(options.runs, log);
    imports = await measureImports(options.runs > 2 ? 3 : 1, log);
  }
  const busyPercentAtEnd = await cpuBusyPercent();
  const command = `npx tsx bench/run.ts ${process.argv.slice(2).map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`.trim();
  const input: ReportInput = {
    command,
    settings: {
      hostCounts: allCounts,
      runs: options.runs,
      ansibleMax: options.ansibleMax,
      ansibleRuns: options.ansibleRuns,
      launcher: options.launcher,
    },
    notes: options.notes,
    machine,
    busyPercentAtEnd,
    matrix,
    // Sections this run did not measure come from the merged run, if it had them (RESULTS.md says which run).
    startup: startup ?? savedInput?.startup,
    imports: imports ?? savedInput?.imports,
    profile: profile ?? savedInput?.profile,
    elapsedMs: performance.now() - started,
  };
  await writeFile(join(options.out, 'RESULTS.md'), renderReport(input));
  await writeFile(join(options.out, 'results.json'), `${JSON.stringify(input, null, 1)}\n`);
  await rm(join(options.out, 'results.partial.json'), { force: true });
  log(`wrote ${join(options.out, 'RESULTS.md')} and results.json`);
}

await main();
