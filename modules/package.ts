/**
 * package: system packages installed, absent, or at the latest version, with apt (Debian, Ubuntu) or
 * dnf/yum (RHEL family), chosen from the host facts.
 *
 * gather is one round trip: apt: `dpkg-query -W` for the names (plus `apt-cache policy` for latest, and
 * whether the package lists exist); dnf/yum: `rpm -q` (plus `dnf repoquery --upgrades` for latest). Names must
 * be real package names (a virtual name or an rpm "provides" is never "installed" by dpkg-query or rpm -q, so
 * it cannot converge).
 *
 * dnf refreshes expired repository metadata by itself (metadata_expire), so the latest query may download
 * metadata into dnf's cache: that is dnf's cache, not the host's configuration. apt never does: its lists are
 * read as they are, and refreshed only by updateCache or when they are missing.
 */
import { cmd, sh, type Command } from '../lib/command.ts';
import { aptGatherCommand, MARK } from './package-apt.ts';
import type { PackageManager } from '../lib/facts.ts';
import { defineModule, exec, type Change, type Step } from '../lib/module.ts';

export { aptGatherCommand, aptPolicyCommand, DPKG_FORMAT, dpkgQueryCommand, DpkgRead } from './package-apt.ts';

export type PackageState = 'present' | 'absent' | 'latest';

export interface PackageParams {
  name: string | string[];
  state?: PackageState;
  updateCache?: boolean;
  installRecommends?: boolean;
}

export interface PackageInfo {
  /** Installed version; null when not installed (or only its config files remain). */
  readonly installed: string | null;
  /** dpkg's db:Status-Abbrev (e.g. 'ii ', 'rc '), or 'rpm' for rpm; null when the manager does not know it. */
  readonly status: string | null;
  /**
   * The version an install would bring (latest only; undefined: not asked). apt: its candidate (null: none
   * available). dnf: the newest upgrade, or the installed version when there is none (null: not installed).
   */
  readonly candidate?: string | null;
}

export interface PackageFacts {
  readonly manager: 'apt' | 'dnf' | 'yum';
  readonly packages: Readonly<Record<string, PackageInfo>>;
  /** apt: the package lists exist (/var/lib/apt/lists/*_Packages*). */
  readonly listsPresent: boolean;
}

/** rpm -q format: name, [epoch:]version-release (as dnf's %{evr} prints it), arch. */
export const RPM_FORMAT = '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n';
/** dnf repoquery --qf format (dnf ends each line itself). */
export const REPOQUERY_FORMAT = '%{name}\\t%{evr}\\t%{arch}';
const APT_OPTS = ['-y', '-q', '-o', 'DPkg::Lock::Timeout=300'] as const;

export function namesOf(p: PackageParams): string[] {
  return typeof p.name === 'string' ? [p.name] : [...p.name];
}

export function rpmQueryCommand(names: readonly string[]): Command {
  return cmd('rpm', '-q', '--qf', RPM_FORMAT, '--', names);
}

/** The newest upgrade of each installed name that has one (names not installed print nothing). */
export function dnfUpgradesCommand(names: readonly string[]): Command {
  return cmd('dnf', '-q', 'repoquery', '--upgrades', '--latest-limit', '1', '--qf', REPOQUERY_FORMAT, '--', names);
}

/**
 * The dnf/yum gather script. rpm -q exits with the number of names that are not installed, and prints
 * "package NAME is not installed" for each: its stderr joins its stdout so that any other line is an error.
 */
export function rpmGatherCommand(names: readonly string[], latest: boolean): Command {
  const upgrades = latest ? sh`${dnfUpgradesCommand(names)}; echo ${MARK} repoquery $?` : sh`:`;
  return sh`${rpmQueryCommand(names)} 2>&1; echo ${MARK} rpm $?
${upgrades}`;
}

/** dpkg-query -W output -> package -> {status, version}. Names it did not find are simply absent. */
export function parseDpkgQuery(stdout: string): Map<string, { status: string; version: string }> {
  const out = new Map<string, { status: string; version: string }>();
  for (const line of stdout.split('\n')) {
    const f = line.split('\t');
    if (f.length !== 3) continue;
    const [name = '', status = '', version = ''] = f;
    out.set(name, { status, version });
  }
  return out;
}

/** dpkg's status character (the second of db:Status-Abbrev) says the package is installed. */
export function dpkgInstalled(status: string): boolean {
  return ['i', 'W', 't'].includes(status.charAt(1));
}

/** dpkg's status says something of the package is on the system beyond config files (removal has work). */
export function dpkgPresent(status: string): boolean {
  return !['n', 'c', ''].includes(status.charAt(1));
}

/** apt-cache policy output -> package -> {installed, candidate} ("(none)" -> null). Unknown names print nothing. */
export function parseAptPolicy(stdout: string): Map<string, { installed: string | null; candidate: string | null }> {
  const out = new Map<string, { installed: string | null; candidate: string | null }>();
  let current: { installed: string | null; candidate: string | null } | undefined;
  for (const line of stdout.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head?.[1] !== undefined) {
      current = { installed: null, candidate: null };
      out.set(head[1], current);
      continue;
    }
    const field = /^ {2}(Installed|Candidate): (.*)$/.exec(line);
    if (current && field) {
      const v = field[2] === '(none)' ? null : (field[2] ?? null);
      if (field[1] === 'Installed') current.installed = v;
      else current.candidate = v;
    }
  }
  return out;
}

const RPM_ARCHES = ['noarch', 'x86_64', 'i686', 'aarch64', 'ppc64le', 's390x'];

/** rpm -q --qf RPM_FORMAT (or repoquery REPOQUERY_FORMAT) output -> name -> [epoch:]version-release (first arch). */
export function parseRpmQuery(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const f = line.split('\t');
    if (f.length !== 3 || f[0] === undefined || f[1] === undefined) continue;
    if (!out.has(f[0])) out.set(f[0], f[1]);
  }
  return out;
}

/** Lines of rpm -q output that are neither a package nor "package NAME is not installed": errors. */
export function rpmErrors(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.trim() !== '' && l.split('\t').length !== 3 && !/^package \S+ is not installed$/.test(l));
}

/** The row of a name given as NAME or NAME.ARCH (rpm -q accepts both and prints the bare NAME). */
function rowOf<T>(rows: Map<string, T>, name: string): T | undefined {
  const dot = name.lastIndexOf('.');
  return rows.get(name) ?? (dot > 0 && RPM_ARCHES.includes(name.slice(dot + 1)) ? rows.get(name.slice(0, dot)) : undefined);
}

/** The lines between the previous marker (or the start) and `MARK tool CODE`, and CODE. */
function section(stdout: string, tool: string): { text: string; exitCode: number } | undefined {
  const lines = stdout.split('\n');
  const end = lines.findIndex((l) => l.startsWith(`${MARK} ${tool} `));
  if (end < 0) return undefined;
  let start = end;
  while (start > 0 && !(lines[start - 1] ?? '').startsWith(MARK)) start--;
  return { text: lines.slice(start, end).join('\n'), exitCode: Number.parseInt(lines[end]?.split(' ')[2] ?? '', 10) };
}

/** Parse the apt gather script's output. dpkg-query exits 1 when a name is unknown (normal), 2+ on errors. */
export function parseAptGather(stdout: string, names: readonly string[], latest: boolean): PackageFacts {
  const dpkg = section(stdout, 'dpkg-query');
  if (!dpkg || dpkg.exitCode > 1) throw new Error(`dpkg-query failed (exit ${dpkg?.exitCode ?? '?'})`);
  const rows = parseDpkgQuery(dpkg.text);
  const policy = latest ? section(stdout, 'apt-cache') : undefined;
  if (latest && (!policy || policy.exitCode !== 0)) throw new Error(`apt-cache policy failed (exit ${policy?.exitCode ?? '?'})`);
  const candidates = policy ? parseAptPolicy(policy.text) : undefined;
  const packages: Record<string, PackageInfo> = {};
  for (const name of names) {
    const base = name.split(':')[0] ?? name;
    const row = rows.get(base);
    const installed = row && dpkgInstalled(row.status) ? row.version : null;
    const info: PackageInfo = { installed, status: row?.status ?? null };
    packages[name] = candidates ? { ...info, candidate: candidates.get(name)?.candidate ?? candidates.get(base)?.candidate ?? null } : info;
  }
  return { manager: 'apt', packages, listsPresent: stdout.split('\n').includes(`${MARK} lists`) };
}

/** Parse the dnf/yum gather script's output (rpmGatherCommand). */
export function parseRpmGather(stdout: string, names: readonly string[], manager: 'dnf' | 'yum', latest = false): PackageFacts {
  const rpm = section(stdout, 'rpm');
  if (!rpm) throw new Error('rpm -q printed no result');
  const errors = rpmErrors(rpm.text);
  if (errors.length > 0) throw new Error(`rpm -q failed (exit ${rpm.exitCode}): ${errors.join('; ')}`);
  const rows = parseRpmQuery(rpm.text);
  const query = latest ? section(stdout, 'repoquery') : undefined;
  if (latest && (!query || query.exitCode !== 0)) throw new Error(`dnf repoquery --upgrades failed (exit ${query?.exitCode ?? '?'})`);
  const upgrades = query ? parseRpmQuery(query.text) : undefined;
  const packages: Record<string, PackageInfo> = {};
  for (const name of names) {
    const installed = rowOf(rows, name) ?? null;
    const info: PackageInfo = { installed, status: installed === null ? null : 'rpm' };
    packages[name] = upgrades ? { ...info, candidate: rowOf(upgrades, name) ?? installed } : info;
  }
  return { manager, packages, listsPresent: true };
}

function aptInstall(p: PackageParams, names: readonly string[]): Command {
  const recommends = p.installRecommends === undefined ? [] : p.installRecommends ? ['--install-recommends'] : ['--no-install-recommends'];
  return sh`DEBIAN_FRONTEND=noninteractive ${cmd('apt-get', 'install', ...APT_OPTS, ...recommends, '--', ...names)}`;
}

export function planPackage(p: PackageParams, f: PackageFacts): Change[] {
  const state = p.state ?? 'present';
  const names = namesOf(p);
  const apt = f.manager === 'apt';
  const info = (n: string): PackageInfo => f.packages[n] ?? { installed: null, status: null };
  if (state === 'absent') {
    const present = names.filter((n) => (apt ? dpkgPresent(info(n).status ?? '') : info(n).installed !== null));
    if (present.length === 0) return [];
    const remove = apt
      ? sh`DEBIAN_FRONTEND=noninteractive ${cmd('apt-get', 'remove', ...APT_OPTS, '--', ...present)}`
      : cmd(f.manager, 'remove', '-y', '-q', '--', present);
    return [{ summary: `remove ${present.join(', ')}`, steps: [exec(remove)] }];
  }
  if (state === 'latest' && f.manager === 'yum') {
    throw new Error('state: latest needs dnf (yum 3 has no repoquery --upgrades): use present, or a command task');
  }
  const missing = names.filter((n) => info(n).installed === null);
  const outdated = state === 'latest' ? names.filter((n) => {
    const i = info(n);
    return i.installed !== null && typeof i.candidate === 'string' && i.candidate !== i.installed;
  }) : [];
  const wanted = [...missing, ...outdated];
  if (wanted.length === 0) return [];
  const steps: Step[] = [];
  if (apt) {
    if (p.updateCache || !f.listsPresent) {
      steps.push(exec(cmd('apt-get', 'update', '-q', '-o', 'DPkg::Lock::Timeout=300')));
    }
    steps.push(exec(aptInstall(p, wanted).with({ timeoutMs: INSTALL_TIMEOUT_MS })));
  } else {
    steps.push(...(p.updateCache ? rpmCacheSteps(f.manager) : []));
    // dnf install also upgrades a name that is installed at an older version (recorded: dnf-install-upgrade).
    steps.push(exec(cmd(f.manager, 'install', '-y', '-q', ...weakDeps(p, f.manager), '--', ...wanted).with({ timeoutMs: INSTALL_TIMEOUT_MS })));
  }
  const words = [
    ...(missing.length > 0 ? [`install ${missing.map((n) => (info(n).candidate ? `${n} (${info(n).candidate})` : n)).join(', ')}`] : []),
    ...(outdated.length > 0 ? [`upgrade ${outdated.map((n) => `${n} (${info(n).installed} -> ${info(n).candidate})`).join(', ')}`] : []),
  ];
  const refresh = apt && (p.updateCache || !f.listsPresent) ? ' (after apt-get update)' : !apt && p.updateCache ? ` (after ${f.manager} makecache)` : '';
  return [{ summary: `${words.join('; ')}${refresh}`, steps }];
}

/** dnf's weak dependencies (Recommends) follow installRecommends; yum 3 has none. */
function weakDeps(p: PackageParams, manager: 'dnf' | 'yum'): string[] {
  if (manager === 'yum' || p.installRecommends === undefined) return [];
  return [`--setopt=install_weak_deps=${p.installRecommends ? 'True' : 'False'}`];
}

/** Refresh the metadata even when it has not expired (a plain makecache keeps metadata that has not). */
export function rpmCacheSteps(manager: 'dnf' | 'yum', repo?: string): Step[] {
  const only = repo === undefined ? [] : [`--disablerepo=*`, `--enablerepo=${repo}`];
  return manager === 'dnf'
    ? [exec(cmd('dnf', 'makecache', '-q', '--refresh', ...only))]
    : [exec(cmd('yum', 'clean', 'expire-cache', '-q', ...only)), exec(cmd('yum', 'makecache', '-q', ...only))];
}

/**
 * Installs may run long (update-initramfs on a slow or emulated host took 2 to 13 min in the lab): they get
 * their own timeout instead of the connection's 10 min. A task's timeoutMs still overrides it.
 */
export const INSTALL_TIMEOUT_MS = 60 * 60_000;

function managerOf(pm: PackageManager, host: string): 'apt' | 'dnf' | 'yum' {
  if (pm === 'apt' || pm === 'dnf' || pm === 'yum') return pm;
  throw new Error(`package: no supported package manager on ${host} (found ${pm ?? 'none'}; supported: apt, dnf, yum)`);
}

export const pkg = defineModule<PackageParams, PackageFacts>({
  name: 'package',
  description: 'System packages present, absent or at the latest version (apt, or dnf/yum), chosen from the host facts.',
  examples: [
    { title: 'Packages installed', params: { name: ['open-iscsi', 'multipath-tools'], state: 'present' } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: {
        anyOf: [
          { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9+._:-]*$' },
          { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9+._:-]*$' } },
        ],
        description: 'Package name or names (real names, not virtual packages; apt accepts name:arch).',
      },
      state: {
        enum: ['present', 'absent', 'latest'],
        default: 'present',
        description:
          "present: installed (any version); absent: removed (apt keeps config files); latest: at apt's candidate version, or with no upgrade left in `dnf repoquery --upgrades` (dnf; not yum 3).",
      },
      updateCache: {
        type: 'boolean',
        default: false,
        description:
          'Refresh the package lists (apt-get update / dnf makecache --refresh) before installing. It runs only when something is to be installed; apt lists that are missing are always refreshed first (dnf refreshes expired metadata by itself).',
      },
      installRecommends: {
        type: 'boolean',
        description: "Install recommended (weak) dependencies (apt: --[no-]install-recommends; dnf: --setopt=install_weak_deps); default: the manager's own setting.",
      },
    },
  },
  readAhead: true,
  async gather(conn, params, ctx) {
    const manager = managerOf(ctx.facts.packageManager, ctx.host);
    const names = namesOf(params);
    if (manager === 'apt') {
      const latest = params.state === 'latest';
      const r = await conn.exec(aptGatherCommand(names, latest));
      if (r.exitCode !== 0) throw new Error(`cannot query packages on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
      try {
        return parseAptGather(r.stdout, names, latest);
      } catch (e) {
        throw new Error(`cannot query packages on ${ctx.host}: ${(e as Error).message}: ${r.stderr.trim()}`);
      }
    }
    const latest = params.state === 'latest';
    if (latest && manager === 'yum') {
      throw new Error(`package: state: latest needs dnf, and ${ctx.host} has only yum (yum 3 has no repoquery --upgrades)`);
    }
    const r = await conn.exec(rpmGatherCommand(names, latest));
    try {
      return parseRpmGather(r.stdout, names, manager, latest);
    } catch (e) {
      throw new Error(`cannot query packages on ${ctx.host}: ${(e as Error).message}${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''}`);
    }
  },
  plan: planPackage,
});
