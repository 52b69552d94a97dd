/**
 * The firewalld module's gather: one round trip that changes nothing (see gatherScript), and its facts.
 *
 * Daemon running (firewall-cmd --state exits 0): both planes through firewall-cmd, the runtime as it is and
 * the permanent configuration with --permanent. Daemon not running (exit 252): the permanent configuration
 * through firewall-offline-cmd, which reads the files itself, so check mode works on a host where firewalld
 * was installed but never started; there is no runtime plane then.
 *
 * The zone is listed with an explicit --zone (the task's, else the default zone): without it, firewall-cmd
 * may print a notice ("You're performing an operation over default zone ...") before the listing.
 */
import { Command, sh } from '../../lib/command.ts';
import { MARK, SECTION_FUNCTION, sectionOf, splitSections, type Section } from '../blockdev.ts';
import { parseSystemctlShow, showCommand, type ServiceFacts } from '../service.ts';
import { NOT_RUNNING, parseActiveZones, parseDefaultZone, parseListAll, parseNames, parseState, parseZoneOf, type ZoneInfo } from './parse.ts';

export type StateParam = 'present' | 'absent';

export interface FirewalldParams {
  /** The zone (default: the default zone, read at gather time). */
  zone?: string;
  ports?: string[];
  services?: string[];
  sources?: string[];
  interfaces?: string[];
  state?: StateParam;
  /** firewalld enabled and started (default true). */
  running?: boolean;
  /** Remove what the zone holds of the listed kinds but the task does not list (default false). */
  exact?: boolean;
}

/** One configuration plane (runtime or permanent) as gathered. */
export interface PlaneFacts {
  /** The zone as --list-all prints it; null: the zone does not exist in this plane. */
  readonly zone: ZoneInfo | null;
  /** The plane's zones (--get-zones): read only when the zone was not found, to name them. */
  readonly zones: readonly string[] | null;
  /** The services this plane knows (--get-services): read only when the task lists services. */
  readonly knownServices: readonly string[] | null;
  /** The zone each interface of the task is bound to in this plane (null: none). */
  readonly interfaceZones: Readonly<Record<string, string | null>>;
  /** The zone each source of the task is bound to in this plane (null: none). */
  readonly sourceZones: Readonly<Record<string, string | null>>;
}

export interface FirewalldFacts {
  /** systemctl show firewalld */
  readonly service: ServiceFacts;
  /** firewall-cmd --state said running. */
  readonly running: boolean;
  readonly defaultZone: string;
  /** null when the daemon does not run (firewall-offline-cmd read the permanent plane). */
  readonly runtime: PlaneFacts | null;
  readonly permanent: PlaneFacts;
}

const lines = (commands: readonly Command[]): Command =>
  commands.length === 0 ? sh`:` : commands.reduce((a, b) => sh`${a}
${b}`);

/** The commands that read one plane: `tool` is the argv prefix of that plane (firewall-cmd --permanent, ...). */
function planeScript(tag: 'runtime' | 'permanent', tool: readonly string[], p: FirewalldParams, activeZones: boolean): Command {
  const parts: Command[] = [sh`sanbook_run ${tag} ${tool} --list-all "--zone=$zone" || sanbook_run ${`${tag}-zones`} ${tool} --get-zones`];
  if ((p.services ?? []).length > 0) parts.push(sh`sanbook_run ${`${tag}-services`} ${tool} --get-services`);
  if (activeZones) {
    if ((p.interfaces ?? []).length > 0 || (p.sources ?? []).length > 0) parts.push(sh`sanbook_run runtime-active firewall-cmd --get-active-zones`);
  } else {
    for (const i of p.interfaces ?? []) parts.push(sh`sanbook_run ${`${tag}-interface ${i}`} ${tool} ${`--get-zone-of-interface=${i}`}`);
    for (const s of p.sources ?? []) parts.push(sh`sanbook_run ${`${tag}-source ${s}`} ${tool} ${`--get-zone-of-source=${s}`}`);
  }
  return lines(parts);
}

/** The default zone's section, kept in $zone unless the task names the zone. */
function zoneScript(tool: string, zone: string | undefined): Command {
  return sh`out=$(sanbook_run default ${tool} --get-default-zone); printf '%s\\n' "$out"
zone=${zone ?? ''}
[ -n "$zone" ] || zone=$(printf '%s\\n' "$out" | sed -n 2p)`;
}

/** One round trip, read-only: the unit, the daemon's state, the default zone, the zone in each plane. */
export function gatherScript(p: FirewalldParams): Command {
  return sh`${SECTION_FUNCTION}
if ! command -v firewall-cmd >/dev/null 2>&1; then echo ${`${MARK} missing`}; exit 0; fi
sanbook_run service ${showCommand('firewalld')}
sanbook_run state firewall-cmd --state
case $? in
0)
${zoneScript('firewall-cmd', p.zone)}
${planeScript('runtime', ['firewall-cmd'], p, true)}
${planeScript('permanent', ['firewall-cmd', '--permanent'], p, false)}
;;
${NOT_RUNNING})
if ! command -v firewall-offline-cmd >/dev/null 2>&1; then echo ${`${MARK} no-offline`}; exit 0; fi
${zoneScript('firewall-offline-cmd', p.zone)}
${planeScript('permanent', ['firewall-offline-cmd'], p, false)}
;;
esac
:`;
}

const firstLine = (s: Section): string => (s.stderr.trim() || s.stdout.trim() || `exit ${s.exitCode}`).split('\n')[0] ?? '';

function readPlane(sections: readonly Section[], tag: 'runtime' | 'permanent', p: FirewalldParams, zone: string): PlaneFacts {
  const list = sectionOf(sections, tag, `firewalld (${tag})`);
  let info: ZoneInfo | null = null;
  let zones: string[] | null = null;
  if (list.exitCode === 0) {
    info = parseListAll(list.stdout);
  } else {
    const z = sections.find((s) => s.tag === `${tag}-zones`);
    if (!z || z.exitCode !== 0) throw new Error(`cannot list zone ${zone} (${tag}): ${firstLine(list)}; and --get-zones failed: ${z ? firstLine(z) : 'not run'}`);
    zones = parseNames(z.stdout);
    if (zones.includes(zone)) throw new Error(`cannot list zone ${zone} (${tag}): ${firstLine(list)}`);
  }
  const services = sections.find((s) => s.tag === `${tag}-services`);
  if (services && services.exitCode !== 0) throw new Error(`--get-services (${tag}) failed: ${firstLine(services)}`);
  const bound = (kind: 'interface' | 'source', items: readonly string[]): Record<string, string | null> => {
    const out: Record<string, string | null> = {};
    if (items.length === 0) return out;
    if (tag === 'runtime') {
      const active = parseActiveZones(sectionOf(sections, 'runtime-active', 'firewalld (runtime)').stdout);
      for (const item of items) {
        out[item] = Object.entries(active).find(([, a]) => (kind === 'interface' ? a.interfaces : a.sources).includes(item))?.[0] ?? null;
      }
    } else {
      for (const item of items) {
        const s = sectionOf(sections, `${tag}-${kind} ${item}`, `firewalld (${tag})`);
        out[item] = parseZoneOf(s.exitCode, s.stdout, s.stderr, `${kind} ${item} (${tag})`);
      }
    }
    return out;
  };
  return {
    zone: info,
    zones,
    knownServices: services ? parseNames(services.stdout) : null,
    interfaceZones: bound('interface', p.interfaces ?? []),
    sourceZones: bound('source', p.sources ?? []),
  };
}

/** The facts from the gather script's output. */
export function parseGather(stdout: string, p: FirewalldParams): FirewalldFacts {
  const marks = stdout.split('\n');
  if (marks.includes(`${MARK} missing`)) throw new Error('firewalld is not installed (no firewall-cmd): install the firewalld package first');
  if (marks.includes(`${MARK} no-offline`)) throw new Error('firewalld is not running and firewall-offline-cmd is missing: cannot read its permanent configuration');
  const sections = splitSections(stdout);
  const service = sectionOf(sections, 'service', 'firewalld');
  if (service.exitCode !== 0) throw new Error(`systemctl show firewalld failed: ${firstLine(service)}`);
  const state = sectionOf(sections, 'state', 'firewalld');
  const running = parseState(state.exitCode, state.stdout, state.stderr);
  const def = sectionOf(sections, 'default', 'firewalld');
  if (def.exitCode !== 0) throw new Error(`--get-default-zone failed: ${firstLine(def)}`);
  const defaultZone = parseDefaultZone(def.stdout);
  const zone = p.zone ?? defaultZone;
  return {
    service: parseSystemctlShow(service.stdout, 'firewalld.service'),
    running,
    defaultZone,
    runtime: running ? readPlane(sections, 'runtime', p, zone) : null,
    permanent: readPlane(sections, 'permanent', p, zone),
  };
}
