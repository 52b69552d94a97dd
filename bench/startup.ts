/**
 * Start-up: what a playbook costs before its first command. The wall time of `--help` by each way of starting
 * a TypeScript playbook (npx tsx as the README says; tsx's own binary; node with tsx's import hook), next to
 * node's own boot and Ansible's; then, each in a fresh process, what importing each part costs.
 */
import { join } from 'node:path';
import { measure } from './measure.ts';
import { BENCH_DIR, PROJECT_DIR } from './sides.ts';
import { spread, type Spread } from './stats.ts';

export interface StartupCommand {
  readonly label: string;
  readonly argv: readonly string[];
}

export interface StartupResult {
  readonly label: string;
  readonly wall: Spread;
  readonly cpu: Spread;
  /** Peak PSS of the process tree (npx -> tsx -> node is three node processes), MB. */
  readonly peakTreeMb: number;
}

export interface ImportResult {
  readonly spec: string;
  /** From the process' start to the script's first line (node + tsx hook). */
  readonly beforeMs: Spread;
  readonly importMs: Spread;
  readonly rssMb: number;
}

const tsxBin = join(PROJECT_DIR, 'node_modules/.bin/tsx');

export const STARTUP_COMMANDS: readonly StartupCommand[] = [
  { label: '`node -e 0` (node alone)', argv: [process.execPath, '-e', '0'] },
  { label: '`npx tsx playbooks/san.ts --help`', argv: ['npx', 'tsx', 'playbooks/san.ts', '--help'] },
  { label: '`node_modules/.bin/tsx playbooks/san.ts --help`', argv: [tsxBin, 'playbooks/san.ts', '--help'] },
  { label: '`node --import tsx playbooks/san.ts --help`', argv: [process.execPath, '--import', 'tsx', 'playbooks/san.ts', '--help'] },
  { label: '`ansible-playbook --version`', argv: ['ansible-playbook', '--version'] },
];

/** Imported alone, each in a fresh process; '' is the empty script (node + tsx's hook only). */
export const IMPORT_SPECS: readonly string[] = [
  '',
  'ssh2',
  'ssh2-promise',
  'listr2',
  'ajv',
  'zx',
  'handlebars',
  'yaml',
  '../lib/index.ts',
  '../modules/index.ts',
  '../playbooks/san.ts',
];

export async function measureStartup(runs: number, log: (line: string) => void): Promise<StartupResult[]> {
  const walls = new Map<string, number[]>();
  const cpus = new Map<string, number[]>();
  const rss = new Map<string, number>();
  for (let rep = 0; rep < runs; rep++) {
    for (const c of STARTUP_COMMANDS) {
      const m = await measure(c.argv, { cwd: PROJECT_DIR });
      if (m.exitCode !== 0) throw new Error(`${c.label} exited ${m.exitCode}: ${m.stderr.slice(-800)}`);
      walls.set(c.label, [...(walls.get(c.label) ?? []), m.wallMs]);
      cpus.set(c.label, [...(cpus.get(c.label) ?? []), m.cpuMs]);
      rss.set(c.label, Math.max(rss.get(c.label) ?? 0, m.peakTreeMb));
      log(`  start-up ${rep + 1}/${runs} ${c.label}: ${(m.wallMs / 1000).toFixed(2)} s`);
    }
  }
  return STARTUP_COMMANDS.map((c) => ({
    label: c.label,
    wall: spread(walls.get(c.label) ?? []),
    cpu: spread(cpus.get(c.label) ?? []),
    peakTreeMb: rss.get(c.label) ?? 0,
  }));
}

interface ImportLine {
  beforeMs: number;
  importMs: number;
  rssMb: number;
}

export async function measureImports(runs: number, log: (line: string) => void): Promise<ImportResult[]> {
  const out: ImportResult[] = [];
  const script = join(BENCH_DIR, 'import-time.ts');
  const lines = new Map<string, ImportLine[]>();
  for (let rep = 0; rep < runs; rep++) {
    for (const spec of IMPORT_SPECS) {
      const m = await measure([process.execPath, '--import', 'tsx', script, ...(spec === '' ? [] : [spec])], { cwd: PROJECT_DIR });
      if (m.exitCode !== 0) throw new Error(`importing ${spec} exited ${m.exitCode}: ${m.stderr.slice(-800)}`);
      const line = JSON.parse(m.stdout.trim().split('\n').pop() ?? '{}') as ImportLine;
      lines.set(spec, [...(lines.get(spec) ?? []), line]);
    }
    log(`  imports ${rep + 1}/${runs} measured`);
  }
  for (const spec of IMPORT_SPECS) {
    const ls = lines.get(spec) ?? [];
    out.push({
      spec: spec === '' ? '(nothing: node + tsx hook)' : spec,
      beforeMs: spread(ls.map((l) => l.beforeMs)),
      importMs: spread(ls.map((l) => l.importMs)),
      rssMb: Math.max(...ls.map((l) => l.rssMb)),
    });
  }
  return out;
}
