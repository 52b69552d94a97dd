/**
 * The multipath maps of a host, from `multipathd show maps json` (multipath-tools 0.9.4: major_version 0,
 * minor_version 1) or, when multipathd does not answer, from `multipath -ll`'s tree:
 *
 *   mpathb (360014058773caba49b74f72b95652784) dm-0 LIO-ORG,data1
 *   size=511M features='1 queue_if_no_path' hwhandler='1 alua' wp=rw
 *   `-+- policy='service-time 0' prio=50 status=active
 *     |- 3:0:0:0 sdb 8:16 failed faulty running
 *     `- 4:0:0:0 sdc 8:32 active ready  running
 *
 * A path's `state` is device-mapper's (active / failed), its `checker` the path checker's (ready, faulty,
 * ghost, shaky, ...), its `devState` the SCSI device's (running, offline, ...).
 */

export interface MultipathPath {
  readonly dev: string;
  readonly devT: string;
  readonly state: string;
  readonly checker: string;
  readonly devState: string;
  /** Number of its path group (1 first). */
  readonly group: number;
  /** SCSI host:channel:id:lun (-ll only; '' from multipathd). */
  readonly hbtl: string;
  /** iSCSI target IQN (target_wwnn; multipathd only). */
  readonly target: string | null;
  /** The initiator's address on this path (host_adapter; multipathd only). */
  readonly hostAdapter: string | null;
}

export interface PathGroup {
  readonly group: number;
  readonly selector: string;
  readonly priority: number;
  /** active, enabled or disabled */
  readonly state: string;
}

export interface MultipathMap {
  readonly name: string;
  readonly wwid: string;
  /** The kernel name of the map: dm-0. */
  readonly sysfs: string;
  readonly vendor: string;
  readonly product: string;
  readonly features: string;
  readonly hwhandler: string;
  /** Map state (active, suspended; '' from -ll). */
  readonly dmState: string;
  readonly groups: readonly PathGroup[];
  readonly paths: readonly MultipathPath[];
}

const undef = (v: unknown): string | null => (typeof v !== 'string' || v === '' || v === '[undef]' ? null : v);
const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

/** Parse `multipathd show maps json`. */
export function parseMapsJson(stdout: string): MultipathMap[] {
  let doc: { major_version?: number; maps?: Record<string, unknown>[] };
  try {
    doc = JSON.parse(stdout) as typeof doc;
  } catch (e) {
    throw new Error(`multipathd show maps json: not JSON (${(e as Error).message}): ${stdout.slice(0, 200)}`);
  }
  if (doc.major_version !== 0 || !Array.isArray(doc.maps)) throw new Error(`multipathd show maps json: unknown format (major_version ${String(doc.major_version)})`);
  return doc.maps.map((m) => {
    const groups = (m['path_groups'] as Record<string, unknown>[] | undefined) ?? [];
    return {
      name: text(m['name']),
      wwid: text(m['uuid']),
      sysfs: text(m['sysfs']),
      vendor: text(m['vend']),
      product: text(m['prod']),
      features: text(m['features']),
      hwhandler: text(m['hwhandler']),
      dmState: text(m['dm_st']),
      groups: groups.map((g) => ({ group: Number(g['group']), selector: text(g['selector']), priority: Number(g['pri']), state: text(g['dm_st']) })),
      paths: groups.flatMap((g) =>
        ((g['paths'] as Record<string, unknown>[] | undefined) ?? []).map((p) => ({
          dev: text(p['dev']),
          devT: text(p['dev_t']),
          state: text(p['dm_st']),
          checker: text(p['chk_st']),
          devState: text(p['dev_st']),
          group: Number(g['group']),
          hbtl: '',
          target: undef(p['target_wwnn']),
          hostAdapter: undef(p['host_adapter']),
        })),
      ),
    };
  });
}

const MAP_LINE = /^(?:(\S+) \((\S+)\)|(\S+)) (dm-\d+) (.*)$/;
const GROUP_LINE = /^[|`\s]*[|`]-\+- (.*)$/;
const PATH_LINE = /^[|`\s]*[|`]- (\S+)\s+(\S+)\s+(\d+:\d+)\s+(\S+)\s+(\S+)\s+(\S+)/;

type MutableMap = { -readonly [K in keyof MultipathMap]: MultipathMap[K] } & {
  groups: PathGroup[];
  paths: MultipathPath[];
};

/** Parse `multipath -ll` (maps named by alias or by WWID when user_friendly_names is off). */
export function parseMultipathLl(stdout: string): MultipathMap[] {
  const maps: MutableMap[] = [];
  for (const line of stdout.split('\n')) {
    const cur = maps[maps.length - 1];
    const m = /^[^\s|`]/.test(line) && !line.startsWith('size=') ? MAP_LINE.exec(line) : null;
    if (m) {
      const name = m[1] ?? m[3] ?? '';
      const [vendor = '', product = ''] = (m[5] ?? '').split(',');
      maps.push({ name, wwid: m[2] ?? name, sysfs: m[4] ?? '', vendor, product, features: '', hwhandler: '', dmState: '', groups: [], paths: [] });
      continue;
    }
    if (!cur) continue;
    if (line.startsWith('size=')) {
      cur.features = /features='([^']*)'/.exec(line)?.[1] ?? '';
      cur.hwhandler = /hwhandler='([^']*)'/.exec(line)?.[1] ?? '';
      continue;
    }
    const g = GROUP_LINE.exec(line);
    if (g?.[1] !== undefined) {
      cur.groups.push({
        group: cur.groups.length + 1,
        selector: /policy='([^']*)'/.exec(g[1])?.[1] ?? '',
        priority: Number(/prio=(-?\d+)/.exec(g[1])?.[1] ?? 0),
        state: /status=(\S+)/.exec(g[1])?.[1] ?? '',
      });
      continue;
    }
    const p = PATH_LINE.exec(line);
    if (p) {
      cur.paths.push({
        hbtl: p[1] ?? '',
        dev: p[2] ?? '',
        devT: p[3] ?? '',
        state: p[4] ?? '',
        checker: p[5] ?? '',
        devState: p[6] ?? '',
        group: cur.groups.length,
        target: null,
        hostAdapter: null,
      });
    }
  }
  return maps;
}

/** A path device-mapper sends I/O to. */
export const isActive = (p: MultipathPath): boolean => p.state === 'active';
