/**
 * package: system packages installed, absent, or at the latest version, with apt (Debian, Ubuntu) or
 * dnf/yum (RHEL family), chosen from the host facts.
 *
 * gather is one round trip: apt: `dpkg-query -W` for the names (plus `apt-cache policy` for latest, and
 * whether the package lists exist); dnf/yum: `rpm -q`. Names must be real package names (a virtual name
 * is never "installed" by dpkg-query, so it cannot converge).
 */
import { cmd, sh, type Command } from '../lib/command.ts';
import type { PackageManager } from '../lib/facts.ts';
import { defineModule, exec, type Change, type Step } from '../lib/module.ts';

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
  /** The version apt would install (latest only; null: none available; undefined: not asked). */
  readonly candidate?: string | null;
}

export interface PackageFacts {
  readonly manager: 'apt' | 'dnf' | 'yum';
  readonly packages: Readonly<Record<string, PackageInfo>>;
  /** apt: the package lists exist (/var/lib/apt/lists/*_Packages*). */
  readonly listsPresent: boolean;
}

const MARK = '@@sanbook-package@@';
export const DPKG_FORMAT = '${Package}\\t${db:Status-Abbrev}\\t${Version}\\n';
export const RPM_FORMAT = '%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\n';
const APT_OPTS = ['-y', '-q', '-o', 'DPkg::Lock::Timeout=300'] as const;

export function namesOf(p: PackageParams): string[] {
  return typeof p.name === 'string' ? [p.name] : [...p.name];
}

export function dpkgQueryCommand(names: readonly string[]): Command {
  return cmd('dpkg-query', '-W', `--showformat=${DPKG_FORMAT}`, '--', names);
}

export function aptPolicyCommand(names: readonly string[]): Command {
  return cmd('apt-cache', 'policy', '--', names);
}

export function rpmQueryCommand(names: readonly string[]): Command {
  return cmd('rpm', '-q', '--qf', RPM_FORMAT, '--', names);
}

/** The apt gather script: sections separated by marker lines carrying each tool's exit code. */
export function aptGatherCommand(names: readonly string[], latest: boolean): Command {
  const policy = latest ? sh`${aptPolicyCommand(names)}; echo ${MARK} apt-cache $?` : sh`:`;
  return sh`${dpkgQueryCommand(names)}; echo ${MARK} dpkg-query $?
${policy}
for f in /var/lib/apt/lists/*_Packages*; do if [ -e "$f" ]; then echo ${MARK} lists; fi; break; done`;
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

/** rpm -q --qf RPM_FORMAT output -> package -> version-release (multiple arches: the first). */
export function parseRpmQuery(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const f = line.split('\t');
    if (f.length !== 3 || f[0] === undefined || f[1] === undefined) continue;
    if (!out.has(f[0])) out.set(f[0], f[1]);
  }
  return out;
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

/** Parse `rpm -q` output for the names (missing ones print "package NAME is not installed"). */
export function parseRpmGather(stdout: string, names: readonly string[], manager: 'dnf' | 'yum'): PackageFacts {
  const rows = parseRpmQuery(stdout);
  const packages: Record<string, PackageInfo> = {};
  for (const name of names) {
    const version = rows.get(name) ?? null;
    packages[name] = { installed: version, status: version === null ? null : 'rpm' };
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
  if (state === 'latest' && !apt) {
    throw new Error(`state: latest is not supported with ${f.manager} yet (use present, or a command task)`);
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
    if (p.updateCache) steps.push(exec(cmd(f.manager, 'makecache', '-q')));
    const weak = p.installRecommends === false ? ['--setopt=install_weak_deps=False'] : [];
    steps.push(exec(cmd(f.manager, 'install', '-y', '-q', ...weak, '--', ...wanted).with({ timeoutMs: INSTALL_TIMEOUT_MS })));
  }
  const words = [
    ...(missing.length > 0 ? [`install ${missing.map((n) => (info(n).candidate ? `${n} (${info(n).candidate})` : n)).join(', ')}`] : []),
    ...(outdated.length > 0 ? [`upgrade ${outdated.map((n) => `${n} (${info(n).installed} -> ${info(n).candidate})`).join(', ')}`] : []),
  ];
  const refresh = apt && (p.updateCache || !f.listsPresent) ? ' (after apt-get update)' : '';
  return [{ summary: `${words.join('; ')}${refresh}`, steps }];
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
        description: "present: installed (any version); absent: removed (config files kept); latest: at apt's candidate version (apt only).",
      },
      updateCache: {
        type: 'boolean',
        default: false,
        description:
          'Refresh the package lists (apt-get update / dnf makecache) before installing. It runs only when something is to be installed; apt lists that are missing are always refreshed first.',
      },
      installRecommends: {
        type: 'boolean',
        description: "Install recommended (weak) dependencies; default: the manager's own setting.",
      },
    },
  },
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
    const r = await conn.exec(rpmQueryCommand(names));
    // rpm -q exits with the number of names that are not installed; anything else on stderr is an error.
    if (r.stderr.trim() !== '') throw new Error(`rpm -q failed on ${ctx.host}: ${r.stderr.trim()}`);
    return parseRpmGather(r.stdout, names, manager);
  },
  plan: planPackage,
});
