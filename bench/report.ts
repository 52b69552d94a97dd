/** bench/RESULTS.md from the measurements: the goals, the table, start-up, where our time goes, the method. */
import type { Machine } from './machine.ts';
import type { MatrixResult, Sample } from './matrix.ts';
import type { Profile } from './profile.ts';
import type { Phase } from './sides.ts';
import type { ImportResult, StartupResult } from './startup.ts';
import { megabytes, seconds, spread, times, type Spread } from './stats.ts';

export interface ReportInput {
  readonly command: string;
  readonly settings: {
    hostCounts: readonly number[];
    runs: number;
    ansibleMax: number;
    ansibleRuns?: Readonly<Record<number, number>>;
    launcher: string;
  };
  readonly notes: readonly string[];
  readonly machine: Machine;
  readonly busyPercentAtEnd: number;
  readonly matrix: MatrixResult;
  readonly startup: StartupResult[] | undefined;
  readonly imports: ImportResult[] | undefined;
  readonly profile: Profile | undefined;
  readonly elapsedMs: number;
}

const PHASE_LABEL: Record<Phase, string> = {
  first: 'first run (converge)',
  second: 're-run (0 changed)',
  check: 'check mode (converged)',
};

function pick(samples: readonly Sample[], hosts: number, side: Sample['side'], phase: Sample['phase']): Sample[] {
  return samples.filter((s) => s.hosts === hosts && s.side === side && s.phase === phase).sort((a, b) => a.rep - b.rep);
}

/** Ratios a/b of the samples of the same repetition. */
function pairRatios(a: readonly Sample[], b: readonly Sample[], value: (s: Sample) => number | undefined): Spread {
  const ratios: number[] = [];
  for (const x of a) {
    const y = b.find((s) => s.rep === x.rep);
    const vx = value(x);
    const vy = y === undefined ? undefined : value(y);
    if (vx !== undefined && vy !== undefined && vy > 0) ratios.push(vx / vy);
  }
  return spread(ratios);
}

const wall = (s: Sample): number => s.wallMs;

/** Differences between the trees that are known and not a difference in the work done. */
const KNOWN_DIFFERENCES: Record<string, string> = {
  var: "Ansible's file module gives the parent directories it creates the task's mode too (0750 for var/lib/app); ours creates them as mkdir -p does (0755), and only the directory named gets the mode",
  'var/lib': 'the same: a parent created by Ansible with the mode of var/lib/app',
  'etc/app/app.ini': "Ansible's ini_file starts a file it creates with an empty line before the first section header; ours does not",
};

function explainDiff(line: string): string {
  const path = line.slice(0, line.indexOf(':'));
  const why = KNOWN_DIFFERENCES[path];
  return why === undefined ? `  - ${line}` : `  - ${line} (${why})`;
}
const of = (xs: readonly Sample[], f: (s: Sample) => number): Spread => spread(xs.map(f));

function goals(input: ReportInput): string[] {
  const s = input.matrix.samples;
  const lines = ['| goal (issue 8) | measured | met? |', '|---|---|---|'];
  const at6 = pairRatios(pick(s, 6, 'ansible', 'second'), pick(s, 6, 'sanbook', 'second'), wall);
  lines.push(
    at6.n > 0
      ? `| re-run of 20 tasks at 6 hosts >= 20x faster than Ansible | ${times(at6)} | ${at6.median >= 20 ? 'yes' : 'no'} |`
      : '| re-run of 20 tasks at 6 hosts >= 20x faster than Ansible | not measured (no 6-host cell) | - |',
  );
  for (const n of input.settings.hostCounts) {
    const r = pairRatios(pick(s, n, 'sanbook', 'second'), pick(s, n, 'floor', 'floor'), wall);
    if (r.n > 0) lines.push(`| re-run within 2x of the raw floor, ${n} host(s) (whole processes) | ${times(r)} | ${r.median <= 2 ? 'yes' : 'no'} |`);
  }
  const big = pick(s, 200, 'sanbook', 'second');
  if (big.length > 0) {
    const w = of(big, wall);
    const m = of(big, (x) => x.peakTreeMb);
    const bound = cpuBoundMs(big, input.machine.nproc);
    const two = pick(s, 200, 'floor', 'floor2');
    const least = two.length > 0 ? `; ssh2 alone, connecting to the 200 hosts and running our 2 commands' worth of \`true\`, takes ${seconds(of(two, wall))}` : '';
    const why = w.median > 5000 && bound !== undefined ? ` (the machine's ${input.machine.nproc} CPUs alone need ${(bound / 1000).toFixed(1)} s for this run's CPU time, most of it the hosts' (sshd, shells, the programs the reads start)${least}; see "Who uses the CPU")` : '';
    lines.push(`| 200 hosts converged re-run <= 5 s | ${seconds(w)} | ${w.median <= 5000 ? 'yes' : 'no'}${why} |`);
    lines.push(`| 200 hosts re-run peak memory < 300 MB (tree PSS) | ${megabytes(m)} | ${m.max < 300 ? 'yes' : 'no'} |`);
  } else {
    lines.push('| 200 hosts converged re-run <= 5 s, < 300 MB peak | not measured (no 200-host cell) | - |');
  }
  return lines;
}

function resultsTable(input: ReportInput): string[] {
  const s = input.matrix.samples;
  const lines = [
    '| hosts | run | sanbook wall | Ansible wall | Ansible / sanbook (pairs) | sanbook CPU | Ansible CPU | sanbook peak PSS | Ansible peak PSS |',
    '|---:|---|---|---|---|---|---|---|---|',
  ];
  for (const n of input.settings.hostCounts) {
    for (const phase of ['first', 'second', 'check'] as const) {
      const ours = pick(s, n, 'sanbook', phase);
      const theirs = pick(s, n, 'ansible', phase);
      if (ours.length === 0) continue;
      lines.push(
        [
          '',
          n,
          PHASE_LABEL[phase],
          seconds(of(ours, wall)),
          theirs.length > 0 ? seconds(of(theirs, wall)) : '-',
          theirs.length > 0 ? times(pairRatios(theirs, ours, wall)) : '-',
          seconds(of(ours, (x) => x.cpuMs)),
          theirs.length > 0 ? seconds(of(theirs, (x) => x.cpuMs)) : '-',
          megabytes(of(ours, (x) => x.peakTreeMb)),
          theirs.length > 0 ? megabytes(of(theirs, (x) => x.peakTreeMb)) : '-',
          '',
        ].join(' | ').trim(),
      );
    }
  }
  return lines;
}

/** The least wall the machine allows for these runs' CPU time: median busy CPU of the machine / cores. */
function cpuBoundMs(samples: readonly Sample[], cores: number): number | undefined {
  const busy = samples.map((x) => x.machineCpuMs).filter((v): v is number => v !== undefined);
  return busy.length === 0 ? undefined : spread(busy).median / cores;
}

/**
 * Our re-run and the floor: their own CPU time against the whole machine's. On loopback hosts the rest is the
 * hosts' sshd and shells, which share the controller's CPUs here and would have their own on real hosts.
 */
function cpuShareTable(input: ReportInput): string[] {
  const s = input.matrix.samples;
  const cores = input.machine.nproc;
  const lines = [
    `| hosts | run | wall | its own CPU | CPU of the rest of the machine (the hosts' sshd and shells) | the whole machine's CPU / ${cores} cores |`,
    '|---:|---|---|---|---|---|',
  ];
  for (const n of input.settings.hostCounts) {
    const rows = [
      ['sanbook re-run', 'sanbook', 'second'],
      ['raw floor (20 commands)', 'floor', 'floor'],
      ['raw floor (2 commands)', 'floor', 'floor2'],
    ] as const;
    for (const [label, side, phase] of rows) {
      const xs = pick(s, n, side, phase).filter((x) => x.machineCpuMs !== undefined);
      if (xs.length === 0) continue;
      const rest = of(xs, (x) => (x.machineCpuMs ?? 0) - x.cpuMs);
      const bound = of(xs, (x) => (x.machineCpuMs ?? 0) / cores);
      lines.push(`| ${n} | ${label} | ${seconds(of(xs, wall))} | ${seconds(of(xs, (x) => x.cpuMs))} | ${seconds(rest)} | ${seconds(bound)} |`);
    }
  }
  return lines.length === 2 ? ['Not measured in this run (results recorded before the machine CPU was sampled).'] : lines;
}

function floorTable(input: ReportInput): string[] {
  const s = input.matrix.samples;
  const lines = [
    '| hosts | floor process wall | floor in-process (connect + 20 commands) | slowest connect | one command | sanbook re-run / floor (process) | sanbook re-run / floor (in-run) | floor of 2 commands, process wall | sanbook re-run / it |',
    '|---:|---|---|---|---|---|---|---|---|',
  ];
  for (const n of input.settings.hostCounts) {
    const floor = pick(s, n, 'floor', 'floor');
    if (floor.length === 0) continue;
    const two = pick(s, n, 'floor', 'floor2');
    const ours = pick(s, n, 'sanbook', 'second');
    const ms = (f: (x: Sample) => number | undefined): Spread => spread(floor.map(f).filter((v): v is number => v !== undefined));
    const twoCells = two.length === 0 ? '- | -' : `${seconds(of(two, wall))} | ${times(pairRatios(ours, two, wall))}`;
    lines.push(
      `| ${n} | ${seconds(of(floor, wall))} | ${seconds(ms((x) => x.inRunMs))} | ${seconds(ms((x) => x.floor?.connectMaxMs))} | ${ms((x) => x.floor?.perCommandMedianMs).median.toFixed(1)} ms | ${times(pairRatios(ours, floor, wall))} | ${times(pairRatios(ours, floor, (x) => x.inRunMs))} | ${twoCells} |`,
    );
  }
  return lines;
}

function startupSection(input: ReportInput): string[] {
  const lines: string[] = [];
  if (input.startup) {
    lines.push('| command | wall | CPU | peak PSS of the tree |', '|---|---|---|---|');
    for (const r of input.startup) lines.push(`| ${r.label} | ${seconds(r.wall)} | ${seconds(r.cpu)} | ${r.peakTreeMb.toFixed(0)} MB |`);
  }
  if (input.imports) {
    lines.push(
      '',
      'What a playbook loads before its first command: each part imported alone in a fresh `node --import tsx` process',
      '(its own dependencies included, so the rows overlap; "before" is node\'s boot plus tsx\'s hook, up to the script\'s first line).',
      '',
      '| import | before the script | import | RSS after |',
      '|---|---|---|---|',
    );
    for (const r of input.imports) lines.push(`| \`${r.spec}\` | ${seconds(r.beforeMs)} | ${seconds(r.importMs)} | ${r.rssMb.toFixed(0)} MB |`);
  }
  return lines;
}

function profileSection(p: Profile): string[] {
  const taskSum = p.tasks.reduce((a, t) => a + t.wallMs, 0);
  const lines = [
    `One converged re-run on ${p.hosts} hosts with \`--json\`, read event by event: process wall ${(p.processWallMs / 1000).toFixed(2)} s,`,
    `of which the run itself (first task to recap) ${(p.runDurationMs / 1000).toFixed(2)} s; the rest, ${((p.processWallMs - p.runDurationMs) / 1000).toFixed(2)} s,`,
    `is start-up (npx/tsx/node, imports, inventory, preflight) and exit. The 20 tasks' walls add up to ${(taskSum / 1000).toFixed(2)} s;`,
    `each host ran ${p.commandsPerHost} commands: the host facts, then the gathers of all 20 tasks in one batch, read ahead`,
    '(lib/read-ahead.ts), which each task uses since nothing changed; without reading ahead it would be one command per task.',
    '',
    `The raw floor on the same hosts: ${p.floorRaw.perCommandMedianMs.toFixed(1)} ms per command over ssh2 alone (\`true\`),`,
    `${p.floorSanbook.perCommandMedianMs.toFixed(1)} ms over our connection (LC_ALL=C, coreutils \`timeout\`, \`/bin/sh -c\`);`,
    `connection set-up ${p.floorRaw.connectMedianMs.toFixed(0)} ms (ssh2) / ${p.floorSanbook.connectMedianMs.toFixed(0)} ms (ours, with the known_hosts check), median host.`,
    '',
    '| task | wall (all hosts) | commands per host | host median | host max |',
    '|---|---|---|---|---|',
    ...p.tasks.map((t) => `| ${t.name} | ${t.wallMs} ms | ${t.commands} | ${t.hostMedianMs.toFixed(0)} ms | ${t.hostMaxMs.toFixed(0)} ms |`),
    '',
    'Reporters (the same re-run, interleaved):',
    '',
    '| reporter | wall | CPU |',
    '|---|---|---|',
    ...p.reporters.map((r) => `| ${r.label} | ${seconds(r.wall)} | ${seconds(r.cpu)} |`),
  ];
  return lines;
}

const METHOD = `- **Hosts**: N OpenSSH servers on 127.0.0.1 (lab/loopback), one per host, each with its own \`root\` directory
  (they share this machine's disk); one client key; host keys checked against a generated known_hosts file by both
  sides (ours: \`host_key_checking: strict\`; Ansible: \`host_key_checking = True\`, \`StrictHostKeyChecking=yes\`).
  Each side works in its own directory of each root, wiped before each first run.
- **Workload**: the same 20 idempotent tasks, bench/workload.ts and bench/ansible/site.yml, task for task: 4
  directories, 3 file contents, 3 settings in an iscsid.conf-style file, one in an sshd_config-style file, an ini option
  in a section, a template, a symlink, a command with \`creates\`, a package present, a file touched, a file mode, a
  file absent, and (task 20) two packages present. **No service task**: this machine has no systemd as PID 1
  (\`ps -p 1 -o comm=\`), so task 20 reads the package database instead, a read of system state of about the weight of
  \`systemctl show\`. After the runs the two trees are compared file by file (below). Our playbook imports the six
  modules it uses from their own files (modules/file.ts, ...), as Ansible loads only the modules its tasks name;
  through modules/index.ts it would load all 25 modules, about 0.25 s more of start-up on this machine.
- **Ansible**: Debian's ansible-core (bench/setup.sh), bench/ansible/ansible.cfg: \`pipelining = True\`,
  \`ControlMaster=auto\`, \`ControlPersist=60s\`, \`--forks\` = the number of hosts, \`interpreter_python\` set (no
  discovery), \`gathering = explicit\` (no task needs facts: gathering them would cost Ansible about one more task;
  this is Ansible's fastest fair setting; ours gathers its small host facts in one round trip, and that is counted
  against us). Each Ansible run gets a fresh ControlPath directory, so it opens its own connections as ours does (a
  warm ControlPersist master left by a previous run would hide Ansible's connection set-up); the masters, which leave
  the process tree, are found by that path, their CPU time added to Ansible's, and they are stopped after the run.
- **Ours**: a play's quick reads (file, copy, template, setting, command, package) go to each host as one batch ahead
  of their tasks (lib/read-ahead.ts); a task uses its read only if no host has changed anything since it was taken,
  else it reads again. A converged run is then 2 commands per host (host facts, the batch) for the 20 tasks. In the
  batch, the reads of one kind are joined (lib/connection/together.ts): the 14 paths of the 17 file, copy, template and
  setting tasks are read by one \`stat\`, one \`cat\` and one checking \`stat\` (plus a \`stat -L\` and a \`readlink\`
  for the link), and the two package tasks by one \`dpkg-query\`, where each used to start one or two programs. Started as the README says (\`npx tsx bench/workload.ts -i INVENTORY --forks N\`, unless \`--launcher\`
  says otherwise), stdout a pipe (the plain reporter), \`--forks\` = the number of hosts as for Ansible.
- **Floor**: bench/floor.ts, one ssh2 connection per host, all hosts at once, 20 \`true\` one after the other on each
  (issue 8's floor), and again with 2 (the round trips our converged run makes: no run of ours can take less);
  started the same way as ours, so "whole process" ratios compare like with like, and "in-run" ratios compare our
  run's printed duration with the floor's own in-process time.
- **Runs**: one unmeasured warm-up of each side the first time it runs (a first run: tsx's transform cache,
  Python's bytecode, the page cache), then, per host count, repetitions; in each, each side runs first (converge), second and
  check mode, then the floor runs. The side that goes first alternates from one repetition to the next. A run that
  fails, a second or check run that changes anything, or a first run that changes a different number of tasks than
  the other side's stops the benchmark. Ratios are taken pair by pair (same repetition), then their median, min, max.
- **Measures**: wall time of the child process; CPU = user + sys of its process tree (GNU time, plus Ansible's
  detached ssh masters); peak memory = the highest sampled (100 ms) total PSS of the process tree (PSS counts pages
  shared by forked workers once; summing RSS would count them in each).`;

export function renderReport(input: ReportInput): string {
  const m = input.machine;
  const diffs = Object.entries(input.matrix.treeDiffs);
  return [
    '# Benchmarks: sanbook and Ansible side by side (issue 8)',
    '',
    'Reproduce (a fresh Debian machine, from the project root):',
    '',
    '```sh',
    'bash bench/setup.sh && npx tsx bench/run.ts',
    '```',
    '',
    `This file was written by \`${input.command}\` (host counts ${input.settings.hostCounts.join(', ')}; ${input.settings.runs} repetitions;`,
    `Ansible up to ${input.settings.ansibleMax} hosts${Object.entries(input.settings.ansibleRuns ?? {})
      .map(([n, r]) => `, in ${r} of the repetitions at ${n} hosts`)
      .join('')}; our playbook started with ${input.settings.launcher}) in ${(input.elapsedMs / 60_000).toFixed(1)} min. Raw samples: results.json, beside this file.`,
    '',
    ...(input.notes.length > 0 ? ['**Read these numbers with this caveat:**', '', ...input.notes.map((n) => `> ${n}`), ''] : []),
    '## Machine',
    '',
    `- ${m.date}; ${m.os}; kernel ${m.kernel}`,
    `- ${m.nproc} CPUs (\`nproc\`), ${m.cpuModel}; ${m.memoryGiB.toFixed(1)} GiB memory`,
    `- node ${m.node}, tsx ${m.tsx}; ${m.ansible}; ${m.sshd}`,
    `- CPU busy before the run: ${m.busyPercentAtStart.toFixed(0)}% of all CPUs (1-min load ${m.loadAtStart.toFixed(2)}); after: ${input.busyPercentAtEnd.toFixed(0)}%.`,
    `  Busiest processes then (ps, life-time average): ${m.busiest.join(', ')}`,
    '',
    '## Goals',
    '',
    ...goals(input),
    '',
    '## Results',
    '',
    'Medians (min-max) over the repetitions. "Ansible / sanbook" is how many times longer Ansible took, pair by pair.',
    `Changed tasks per host in a first run: ${input.matrix.firstRunChanged ?? '-'}${input.matrix.samples.some((x) => x.side === 'ansible') ? ' on both sides' : ''}; 0 in every re-run and check run (asserted).`,
    '',
    ...resultsTable(input),
    '',
    '### The raw floor',
    '',
    ...floorTable(input),
    '',
    '### Who uses the CPU',
    '',
    'The hosts are sshd servers on this machine, so their work (connection set-up, the shells that run the commands,',
    "the programs those start) shares the controller's CPUs. The last column is the least wall those CPUs allow for the",
    "run's total CPU time; where it is close to the wall, the run is bound by this machine's CPUs, not by waiting.",
    '',
    ...cpuShareTable(input),
    '',
    '## Start-up',
    '',
    ...(input.startup || input.imports ? startupSection(input) : ['Not measured in this run.']),
    '',
    '## Where our time goes',
    '',
    ...(input.profile ? profileSection(input.profile) : ['Not measured in this run.']),
    '',
    '## Same work on both sides',
    '',
    ...(diffs.length === 0
      ? ['Not compared (no host count ran both sides).']
      : diffs.map(([n, d]) =>
          d.length === 0
            ? `- ${n} host(s): the two sides' trees are the same (types, modes, contents, link targets).`
            : `- ${n} host(s), differences (path: sanbook | Ansible):\n${d.map(explainDiff).join('\n')}`,
        )),
    '',
    '## Method',
    '',
    METHOD,
    '',
  ].join('\n');
}
