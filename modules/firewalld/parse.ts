/**
 * Parsers of what firewall-cmd and firewall-offline-cmd print (firewalld 1.3.3; the formats are those of
 * firewall/command.py and the two scripts, checked on the recordings in test/fixtures/firewalld).
 *
 *   --state                  "running" (exit 0); "not running" on stderr (exit 252, NOT_RUNNING);
 *                            "failed" (exit 251, RUNNING_BUT_FAILED)
 *   --get-default-zone       the zone name
 *   --get-zones, --get-services   names on one line, separated by blanks
 *   --get-active-zones       per zone: its name, then "  interfaces: ..." and/or "  sources: ..."
 *   --get-zone-of-interface=I, --get-zone-of-source=S   the zone name; "no zone" on stderr, exit 2
 *   [--permanent] [--zone=Z] --list-all   the zone (see parseListAll)
 */

/** One zone as `--list-all` prints it. */
export interface ZoneInfo {
  readonly name: string;
  /** The words in parentheses after the name: default, active. */
  readonly attributes: readonly string[];
  /** default, ACCEPT, DROP, %%REJECT%% */
  readonly target: string;
  readonly icmpBlockInversion: boolean;
  readonly interfaces: readonly string[];
  /** Addresses, networks (CIDR), MACs, ipset:NAME */
  readonly sources: readonly string[];
  readonly services: readonly string[];
  /** As firewalld lists them: "3260/tcp", "9419-9421/tcp" (see ports.ts to compare them). */
  readonly ports: readonly string[];
  readonly protocols: readonly string[];
  readonly forward: boolean;
  readonly masquerade: boolean;
  /** "port=80:proto=tcp:toport=8080:toaddr=", one per entry */
  readonly forwardPorts: readonly string[];
  readonly sourcePorts: readonly string[];
  readonly icmpBlocks: readonly string[];
  /** One rich rule per entry, as firewalld prints it. */
  readonly richRules: readonly string[];
}

const words = (text: string): string[] => text.split(/\s+/).filter((w) => w !== '');

/** Keys whose entries are printed one per line, each after a tab, because an entry holds blanks. */
const MULTILINE = new Set(['forward-ports', 'rich rules']);

/**
 * Parse `firewall-cmd [--permanent] [--zone=Z] --list-all` (and firewall-offline-cmd's): the zone's name
 * (with "(default, active)" when the daemon says so), then one "  key: value" line per setting. Forward
 * ports and rich rules hold blanks: their entries follow their key line, one per line, each after a tab.
 * Keys this parser does not know are ignored (newer firewalld versions add some).
 */
export function parseListAll(stdout: string): ZoneInfo {
  const lines = stdout.split('\n');
  const head = /^(\S+)(?: \(([^)]*)\))?$/.exec(lines[0] ?? '');
  if (!head?.[1]) throw new Error(`firewall-cmd --list-all: the first line is not a zone name: ${JSON.stringify(lines[0] ?? '')}`);
  const fields = new Map<string, string[]>();
  let last: string[] | undefined;
  for (const line of lines.slice(1)) {
    if (line.startsWith('\t')) {
      if (!last) throw new Error(`firewall-cmd --list-all (zone ${head[1]}): an entry before any key: ${JSON.stringify(line)}`);
      last.push(line.slice(1));
      continue;
    }
    const kv = /^ {2}([a-z][a-z -]*): ?(.*)$/.exec(line);
    if (kv?.[1] !== undefined) {
      const value = kv[2] ?? '';
      last = MULTILINE.has(kv[1]) ? (value.trim() === '' ? [] : [value]) : words(value);
      fields.set(kv[1], last);
    } else if (line.trim() !== '') {
      last = undefined;
    }
  }
  const list = (key: string, required = false): string[] => {
    const v = fields.get(key);
    if (v === undefined && required) throw new Error(`firewall-cmd --list-all (zone ${head[1]}): no "${key}:" line in its output`);
    return v ?? [];
  };
  const flag = (key: string): boolean => list(key)[0] === 'yes';
  return {
    name: head[1],
    attributes: (head[2] ?? '').split(',').map((a) => a.trim()).filter((a) => a !== ''),
    target: list('target', true)[0] ?? '',
    icmpBlockInversion: flag('icmp-block-inversion'),
    interfaces: list('interfaces', true),
    sources: list('sources', true),
    services: list('services', true),
    ports: list('ports', true),
    protocols: list('protocols'),
    forward: flag('forward'),
    masquerade: flag('masquerade'),
    forwardPorts: list('forward-ports'),
    sourcePorts: list('source-ports'),
    icmpBlocks: list('icmp-blocks'),
    richRules: list('rich rules'),
  };
}

/** Exit code of firewall-cmd --state when the daemon does not run (errors.NOT_RUNNING). */
export const NOT_RUNNING = 252;

/** `firewall-cmd --state`: true (running), false (not running); anything else (failed, no D-Bus) throws. */
export function parseState(exitCode: number, stdout: string, stderr: string): boolean {
  if (exitCode === 0 && stdout.trim() === 'running') return true;
  if (exitCode === NOT_RUNNING) return false;
  const said = (stdout.trim() || stderr.trim() || '(nothing)').split('\n')[0];
  throw new Error(`firewall-cmd --state exited ${exitCode}: ${said}${exitCode === 251 ? ' (firewalld runs but failed to apply its configuration: see journalctl -u firewalld)' : ''}`);
}

/** `--get-default-zone`: one zone name. */
export function parseDefaultZone(stdout: string): string {
  const [zone, ...more] = words(stdout);
  if (zone === undefined || more.length > 0) throw new Error(`--get-default-zone: expected one zone name, got ${JSON.stringify(stdout)}`);
  return zone;
}

/** `--get-zones`, `--get-services`: names separated by blanks. */
export function parseNames(stdout: string): string[] {
  return words(stdout);
}

export interface ActiveZone {
  readonly interfaces: readonly string[];
  readonly sources: readonly string[];
}

/** `firewall-cmd --get-active-zones`: the runtime's bindings, zone -> interfaces and sources (empty output: none). */
export function parseActiveZones(stdout: string): Record<string, ActiveZone> {
  const out: Record<string, { interfaces: string[]; sources: string[] }> = {};
  let zone: { interfaces: string[]; sources: string[] } | undefined;
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const kv = /^\s+(interfaces|sources): ?(.*)$/.exec(line);
    if (kv?.[1] !== undefined) {
      if (!zone) throw new Error(`firewall-cmd --get-active-zones: "${kv[1]}" before any zone: ${JSON.stringify(line)}`);
      zone[kv[1] as 'interfaces' | 'sources'] = words(kv[2] ?? '');
    } else {
      const name = words(line)[0] ?? '';
      zone = { interfaces: [], sources: [] };
      out[name] = zone;
    }
  }
  return out;
}

/** `--get-zone-of-interface=I` / `--get-zone-of-source=S`: the zone, or null ("no zone", exit 2). */
export function parseZoneOf(exitCode: number, stdout: string, stderr: string, what: string): string | null {
  if (exitCode === 0) return parseDefaultZone(stdout);
  if (exitCode === 2 && /no zone/.test(`${stdout}\n${stderr}`)) return null;
  throw new Error(`the zone of ${what}: exit ${exitCode}: ${(stderr.trim() || stdout.trim() || '(nothing)').split('\n')[0]}`);
}
