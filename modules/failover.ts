/**
 * failover: the iSCSI multipath failover test of seed 000 (section 4, "Tests"), measured instead of watched.
 *
 * The seed's manual test writes `date` into a file on the multipath volume in a loop, cuts one network interface
 * of the initiator (`ip link set enp0s9 down`), watches `multipath -ll` while the paths through it fail, brings
 * it back ~30 s later and watches them come back. What it shows is the point of multipath: the application's
 * writes stall for a while but never fail, nothing written is lost, and every path is used again afterwards.
 * This module makes that a repeatable, figured check on a host whose multipath device is mounted:
 *
 *   - a background writer writes numbered blocks to a file under the mount with O_DIRECT and O_DSYNC (each one
 *     reaches the storage before the next starts) and logs the start, end and exit code of every write;
 *   - after leadSeconds the interface goes down for downSeconds, then up again;
 *   - multipathd is polled until every path of every map is active again (at most settleTimeoutSeconds), the
 *     writer goes on 2 s more and stops;
 *   - every block whose latest write succeeded is read back (O_DIRECT) and compared with what was written.
 *
 * The figures (writes attempted / completed / failed, lost writes, the longest write and the longest time
 * without a completed write, link cut and restore times, recovery time, paths per map before and after) are
 * the task's output, read from the result file the script leaves in /var/lib/sanbook/failover. The test passes
 * when no write failed or was lost and the paths came back in time; otherwise the task fails with the figures
 * (requirePass: false keeps it from failing). The interface always comes back up, even when the script is
 * interrupted or times out. The interface cut must not carry the connection to the host.
 *
 * Without an interface nothing is cut: the fault comes from elsewhere (a storage host rebooted, a switch port
 * pulled) during the test. After leadSeconds the script waits up to downSeconds for multipathd to show a path
 * not active (none: the test fails, the fault never came), then up to settleTimeoutSeconds for every path to be
 * active again; the recovery time runs from the first failed path seen.
 *
 * It is an action: planned, and run, every time it is asked for; check mode shows it and runs nothing.
 */
import { sh, type Command } from '../lib/command.ts';
import { defineModule, exec, type Change } from '../lib/module.ts';
import { parseLsblk, SECTION_FUNCTION, sectionOf, splitSections, type BlockNode } from './blockdev.ts';
import { failoverCommand, RESULT_DIR, RUN_ROOT, type ScriptParams } from './failover/script.ts';
import { mapPaths, parseResultFile, summarize, type FailoverResult, type MapPaths } from './failover/result.ts';
import { isActive, parseMapsJson, type MultipathMap } from './multipath/maps.ts';
import { parseFindmnt } from './systemd_mount.ts';
import { escapePath, normalizePath, type Mounted } from './systemd_mount/plan.ts';

export { failoverScript, failoverCommand, ALL_PHASES, LOCAL_PHASES, type Phase, type ScriptOptions, type ScriptParams } from './failover/script.ts';
export { parseResultFile, parseWriteLog, resultWrites, writeFigures, summarize, type FailoverResult, type MapPaths, type WriteRecord, type LostBlock } from './failover/result.ts';

export interface FailoverParams {
  mount: string;
  /** The interface to cut; absent: nothing is cut, the fault comes from elsewhere during the test. */
  interface?: string;
  downSeconds?: number;
  leadSeconds?: number;
  settleTimeoutSeconds?: number;
  writeIntervalMs?: number;
  blockBytes?: number;
  file?: string;
  requirePass?: boolean;
}

export interface LinkState {
  readonly name: string;
  readonly flags: readonly string[];
  /** Administratively up (the UP flag). */
  readonly up: boolean;
  /** Carrier (LOWER_UP). */
  readonly carrier: boolean;
  /** Operational state (UP, DOWN, UNKNOWN, ...). */
  readonly state: string;
}

export interface FailoverFacts {
  readonly host: string;
  readonly mounted: Mounted;
  /** The multipath map under the mount (lsblk -s). */
  readonly map: string;
  readonly maps: readonly MultipathMap[];
  /** The interface to cut (null: no interface, an external fault). */
  readonly link: LinkState | null;
  /** The result file of the last run (after apply: this run's). */
  readonly last: FailoverResult | null;
}

export interface FailoverOutput {
  readonly host: string;
  readonly mount: string;
  /** null: nothing cut (an external fault). */
  readonly interface: string | null;
  readonly source: string;
  readonly map: string;
  /** Active/total paths of each map now. */
  readonly paths: readonly MapPaths[];
  readonly resultFile: string;
  /** The figures of the last run (after the task ran: of this run); null before any run. */
  readonly result: FailoverResult | null;
  /** The figures in one line (null before any run). */
  readonly summary: string | null;
}

const DEFAULTS = { downSeconds: 15, leadSeconds: 3, settleTimeoutSeconds: 120, writeIntervalMs: 100, blockBytes: 4096, file: '.sanbook-failover', requirePass: true };

/** The params with their defaults, the mount normalized. */
export function scriptParams(p: FailoverParams): ScriptParams {
  return {
    mount: normalizePath(p.mount),
    interface: p.interface ?? '',
    file: p.file ?? DEFAULTS.file,
    downSeconds: p.downSeconds ?? DEFAULTS.downSeconds,
    leadSeconds: p.leadSeconds ?? DEFAULTS.leadSeconds,
    settleTimeoutSeconds: p.settleTimeoutSeconds ?? DEFAULTS.settleTimeoutSeconds,
    writeIntervalMs: p.writeIntervalMs ?? DEFAULTS.writeIntervalMs,
    blockBytes: p.blockBytes ?? DEFAULTS.blockBytes,
    requirePass: p.requirePass ?? DEFAULTS.requirePass,
  };
}

/** Where a mount's run files and result go. */
export function failoverPaths(mount: string): { runDir: string; resultFile: string } {
  const name = escapePath(mount);
  return { runDir: `${RUN_ROOT}/${name}`, resultFile: `${RESULT_DIR}/last-${name}.txt` };
}

/** One round trip: what is mounted there, the block device tree, the maps, the link, the last result. */
export function gatherScript(p: FailoverParams, resultFile?: string): Command {
  const mount = normalizePath(p.mount);
  return sh`${SECTION_FUNCTION}
r=${resultFile ?? failoverPaths(mount).resultFile}
sanbook_run findmnt findmnt -J -o TARGET,SOURCE,FSTYPE,OPTIONS ${mount}
sanbook_run lsblk lsblk -J -b -o NAME,KNAME,PATH,SIZE,TYPE,FSTYPE,LABEL,UUID,PTTYPE,PARTLABEL,SERIAL,MOUNTPOINTS
sanbook_run maps multipathd show maps json
${p.interface === undefined ? sh`:` : sh`sanbook_run link ip -o link show dev ${p.interface}`}
if [ -f "$r" ]; then sanbook_run result cat -- "$r"; fi
:`;
}

/** Parse `ip -o link show dev IF`: "3: enp0s9: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 ... state UP ...". */
export function parseIpLink(stdout: string): LinkState {
  const m = /^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>(.*)$/m.exec(stdout);
  if (!m) throw new Error(`ip -o link show: unexpected output: ${stdout.slice(0, 200)}`);
  const flags = (m[2] ?? '').split(',').filter(Boolean);
  return { name: m[1] ?? '', flags, up: flags.includes('UP'), carrier: flags.includes('LOWER_UP'), state: /\bstate (\S+)/.exec(m[3] ?? '')?.[1] ?? '' };
}

/** The multipath map a device is (or is on: a partition or holder of it), from `lsblk -J` trees; null if none. */
export function mapOf(nodes: readonly BlockNode[], device: string, above: readonly BlockNode[] = []): string | null {
  for (const n of nodes) {
    const chain = [...above, n];
    if (n.path === device || `/dev/${n.kname}` === device || `/dev/${n.name}` === device) {
      return chain.filter((x) => x.type === 'mpath').pop()?.name ?? null;
    }
    const hit = mapOf(n.children, device, chain);
    if (hit !== null) return hit;
  }
  return null;
}

export function parseGather(stdout: string, p: FailoverParams, host: string): FailoverFacts {
  const mount = normalizePath(p.mount);
  const sections = splitSections(stdout);
  const fm = sectionOf(sections, 'findmnt', 'failover');
  const mounted = parseFindmnt(fm.stdout, fm.exitCode, mount, fm.stderr);
  if (mounted === null) throw new Error(`nothing is mounted at ${mount} on ${host}`);
  const lsblk = sectionOf(sections, 'lsblk', 'failover');
  if (lsblk.exitCode !== 0) throw new Error(`lsblk failed on ${host}: ${lsblk.stderr || `exit ${lsblk.exitCode}`}`);
  const map = mapOf(parseLsblk(lsblk.stdout), mounted.source.replace(/\[.*\]$/, '')); // btrfs/bind: DEV[/subdir]
  if (map === null) throw new Error(`${mount} on ${host} is mounted from ${mounted.source}, which is not on a multipath map`);
  const maps = sectionOf(sections, 'maps', 'failover');
  if (maps.exitCode !== 0) throw new Error(`multipathd show maps json failed on ${host}: ${maps.stderr || `exit ${maps.exitCode}`}`);
  let link: LinkState | null = null;
  if (p.interface !== undefined) {
    const section = sectionOf(sections, 'link', 'failover');
    if (section.exitCode !== 0) throw new Error(`no network interface ${p.interface} on ${host}: ${section.stderr || `ip exited ${section.exitCode}`}`);
    link = parseIpLink(section.stdout);
  }
  const result = sections.find((s) => s.tag === 'result');
  if (result && result.exitCode !== 0) throw new Error(`cannot read ${failoverPaths(mount).resultFile} on ${host}: ${result.stderr}`);
  return { host, mounted, map, maps: parseMapsJson(maps.stdout), link, last: result ? parseResultFile(result.stdout) : null };
}

/** Why the script will refuse to start, read from the facts (said in the plan; the script checks again). */
function refusal(p: ScriptParams, f: FailoverFacts): string | null {
  if (f.link !== null && !f.link.up) return `${p.interface} is down`;
  const paths = f.maps.flatMap((m) => m.paths);
  const active = paths.filter(isActive).length;
  if (paths.length === 0) return 'multipathd shows no path';
  return active < paths.length ? `only ${active} of ${paths.length} paths are active` : null;
}

export function planFailover(params: FailoverParams, facts: FailoverFacts): Change[] {
  const p = scriptParams(params);
  const why = refusal(p, facts);
  const fault =
    p.interface === ''
      ? `write to ${p.mount}, cut nothing: wait up to ${p.downSeconds} s for a path to fail by another cause`
      : `cut ${p.interface} for ${p.downSeconds} s while writing to ${p.mount}`;
  const summary =
    `${fault}, then wait for every path to be active ` +
    `(at most ${p.settleTimeoutSeconds} s; ${p.mount} is on ${facts.map})${why === null ? '' : ` - the script will refuse to start: ${why}`}`;
  return [{ summary, steps: [exec(failoverCommand(p, failoverPaths(p.mount)))], action: true }];
}

export function failoverOutput(params: FailoverParams, facts: FailoverFacts): FailoverOutput {
  const mount = normalizePath(params.mount);
  return {
    host: facts.host,
    mount,
    interface: params.interface ?? null,
    source: facts.mounted.source,
    map: facts.map,
    paths: mapPaths(facts.maps),
    resultFile: failoverPaths(mount).resultFile,
    result: facts.last,
    summary: facts.last ? summarize(facts.last) : null,
  };
}

const SECONDS = (min: number, max: number, def: number, what: string) => ({ type: 'integer', minimum: min, maximum: max, default: def, description: what });

export const failover = defineModule<FailoverParams, FailoverFacts, FailoverOutput>({
  name: 'failover',
  description:
    'The multipath failover test of seed 000: write to a mounted multipath volume, cut one network interface (or wait for a fault made elsewhere, such as a storage host rebooted), bring it back, wait for every path to be active, read every block back; outputs the figures and fails when a write failed or was lost or the paths did not come back (an action: runs every time).',
  examples: [
    {
      title: "Seed 000's chunk1: cut the second storage network for 30 s under the chunkserver's disk",
      params: { mount: '/mnt/data_chunk1', interface: 'enp0s9', downSeconds: 30 },
    },
    {
      title: 'Measure only: report the figures without failing the task, 1 MiB writes with no pause',
      params: { mount: '/mnt/data_chunk1', interface: 'eth1', blockBytes: 1048576, writeIntervalMs: 0, requirePass: false },
    },
    {
      title: 'Reboot the storage host behind the volume during the test (nothing cut here): no write may fail or be lost',
      params: { mount: '/mnt/data_chunk1', leadSeconds: 5, downSeconds: 120, settleTimeoutSeconds: 900 },
    },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['mount'],
    properties: {
      mount: {
        type: 'string',
        minLength: 2,
        pattern: '^/(?!.*/\\.\\.?(/|$))[^\\x00-\\x1f\\x7f]*$',
        description: 'Mount point of a filesystem on a multipath map (/mnt/data_chunk1); the test file is written there.',
      },
      interface: {
        type: 'string',
        pattern: '^(?!\\.\\.?$)[^/:\\s\\x00-\\x1f\\x7f]{1,15}$',
        description: 'The network interface to cut (eth1, enp0s9): one that carries some of the paths, never the one the connection to the host uses. Without it nothing is cut: the fault is made elsewhere during the test (a storage host rebooted).',
      },
      downSeconds: SECONDS(1, 600, DEFAULTS.downSeconds, 'How long the interface stays down; without an interface, how long to wait for a path to fail (else the test fails: the fault never came).'),
      leadSeconds: SECONDS(1, 600, DEFAULTS.leadSeconds, 'Seconds of writes before the cut.'),
      settleTimeoutSeconds: SECONDS(1, 3600, DEFAULTS.settleTimeoutSeconds, 'After the interface is up again (without an interface: after a failed path was seen), how long every path of every map has to be active again (else the test fails).'),
      writeIntervalMs: { type: 'integer', minimum: 0, maximum: 10000, default: DEFAULTS.writeIntervalMs, description: 'Pause between two writes, in milliseconds (0: none).' },
      blockBytes: {
        type: 'integer',
        minimum: 512,
        maximum: 1048576,
        multipleOf: 512,
        default: DEFAULTS.blockBytes,
        description: 'Bytes per write (O_DIRECT: a multiple of the device\'s logical sector, 512 or 4096). The file holds at most 4096 blocks and 16 MiB; writes wrap around.',
      },
      file: {
        type: 'string',
        maxLength: 200,
        pattern: '^(?!\\.\\.?$)[^/\\x00-\\x1f\\x7f]+$',
        default: DEFAULTS.file,
        description: 'Name of the test file under the mount (removed after the check).',
      },
      requirePass: {
        type: 'boolean',
        default: DEFAULTS.requirePass,
        description: 'Fail the task when a write failed, was lost or unfinished, or the paths did not all come back in time (false: only report it in the output).',
      },
    },
  },
  async gather(conn, params, ctx) {
    const r = await conn.exec(gatherScript(params));
    if (r.exitCode !== 0) throw new Error(`reading the mount, maps and link failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseGather(r.stdout, params, ctx.host);
  },
  plan: planFailover,
  output: failoverOutput,
});
