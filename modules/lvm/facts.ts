/**
 * lvm, read: the gather script (one round trip: `pvs`, `vgs`, `lvs` as JSON reports in bytes, then each listed
 * device's node, real path, blkid -p and lsblk) and its pure parsers.
 *
 *   pvs --reportformat json --units b --nosuffix -o ...   {"report":[{"pv":[{"pv_name":"/dev/sdh",...}]}]}
 *
 * Every value in an LVM JSON report is a string; sizes are plain byte counts with `--units b --nosuffix`.
 */
import { cmd, raw, sh, type Command } from '../../lib/command.ts';
import { SECTION_FUNCTION, parseBlkid, parseLsblk, sectionOf, splitSections, usersOf, type Signature } from '../blockdev.ts';

export const PV_FIELDS = 'pv_name,vg_name,pv_uuid,pv_size,pv_free,dev_size,pv_pe_count,pv_pe_alloc_count';
export const VG_FIELDS = 'vg_name,vg_uuid,vg_attr,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count,pv_count,lv_count';
export const LV_FIELDS = 'lv_name,vg_name,lv_uuid,lv_attr,lv_size,lv_path,lv_active,lv_device_open';

export interface PhysicalVolume {
  readonly name: string;
  /** '' for a PV in no volume group (an orphan). */
  readonly vg: string;
  readonly uuid: string;
  readonly size: number;
  readonly free: number;
  readonly extents: number;
  readonly allocated: number;
}

export interface VolumeGroup {
  readonly name: string;
  readonly uuid: string;
  readonly attr: string;
  readonly size: number;
  readonly free: number;
  readonly extentSize: number;
  readonly extentCount: number;
  readonly freeCount: number;
  readonly pvCount: number;
  readonly lvCount: number;
}

export interface LogicalVolume {
  readonly name: string;
  readonly vg: string;
  readonly uuid: string;
  /** lv_attr: the first letter is the type ('-' linear, 'm' mirror, 'r' raid, 't' thin pool, 'V' thin, 's' snapshot...) */
  readonly attr: string;
  readonly size: number;
  readonly path: string;
  readonly active: boolean;
  /** The device is open (mounted, exported by a target, held by a map). */
  readonly open: boolean;
}

export interface DeviceFacts {
  /** As listed in the params. */
  readonly path: string;
  readonly exists: boolean;
  /** Symlinks resolved (/dev/sdh). */
  readonly realPath: string;
  readonly signature: Signature | null;
  /** What holds or mounts it (not its partitions): "mounted on /srv", "used by /dev/md127 (raid1)". */
  readonly users: readonly string[];
  /** Partitions on it, by path. */
  readonly partitions: readonly string[];
}

export interface LvmFacts {
  readonly pvs: readonly PhysicalVolume[];
  readonly vgs: readonly VolumeGroup[];
  readonly lvs: readonly LogicalVolume[];
  /** The listed devices, by listed path. */
  readonly devices: Readonly<Record<string, DeviceFacts>>;
}

type Row = Readonly<Record<string, string>>;

/** The rows of one LVM JSON report (`key`: pv, vg or lv). */
export function parseReport(stdout: string, key: 'pv' | 'vg' | 'lv'): Row[] {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new Error(`the ${key}s report is not JSON: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const reports = (json as { report?: unknown }).report;
  if (!Array.isArray(reports)) throw new Error(`the ${key}s report has no "report" list`);
  return reports.flatMap((r: unknown) => {
    const rows = (r as Record<string, unknown>)[key];
    if (!Array.isArray(rows)) return [];
    return rows.map((row: unknown) => {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(row as Record<string, unknown>)) out[k] = typeof v === 'string' ? v : String(v);
      return out;
    });
  });
}

const int = (row: Row, field: string, what: string): number => {
  const v = row[field] ?? '';
  if (!/^\d+$/.test(v)) throw new Error(`${what}: ${field} is not a number: ${JSON.stringify(v)}`);
  return Number(v);
};
const str = (row: Row, field: string): string => (row[field] ?? '').trim();

export function parsePvs(stdout: string): PhysicalVolume[] {
  return parseReport(stdout, 'pv').map((r) => {
    const what = `pvs ${str(r, 'pv_name')}`;
    return {
      name: str(r, 'pv_name'), vg: str(r, 'vg_name'), uuid: str(r, 'pv_uuid'), size: int(r, 'pv_size', what), free: int(r, 'pv_free', what),
      extents: int(r, 'pv_pe_count', what), allocated: int(r, 'pv_pe_alloc_count', what),
    };
  });
}

export function parseVgs(stdout: string): VolumeGroup[] {
  return parseReport(stdout, 'vg').map((r) => {
    const what = `vgs ${str(r, 'vg_name')}`;
    return {
      name: str(r, 'vg_name'), uuid: str(r, 'vg_uuid'), attr: str(r, 'vg_attr'), size: int(r, 'vg_size', what), free: int(r, 'vg_free', what),
      extentSize: int(r, 'vg_extent_size', what), extentCount: int(r, 'vg_extent_count', what), freeCount: int(r, 'vg_free_count', what),
      pvCount: int(r, 'pv_count', what), lvCount: int(r, 'lv_count', what),
    };
  });
}

export function parseLvs(stdout: string): LogicalVolume[] {
  return parseReport(stdout, 'lv').map((r) => ({
    name: str(r, 'lv_name'), vg: str(r, 'vg_name'), uuid: str(r, 'lv_uuid'), attr: str(r, 'lv_attr'),
    size: int(r, 'lv_size', `lvs ${str(r, 'vg_name')}/${str(r, 'lv_name')}`), path: str(r, 'lv_path'),
    active: str(r, 'lv_active') === 'active', open: str(r, 'lv_device_open') === 'open',
  }));
}

const REPORT = ['--reportformat', 'json', '--units', 'b', '--nosuffix'] as const;
export const pvsCommand = (): Command => cmd('pvs', ...REPORT, '-o', PV_FIELDS);
export const vgsCommand = (): Command => cmd('vgs', ...REPORT, '-o', VG_FIELDS);
export const lvsCommand = (): Command => cmd('lvs', ...REPORT, '-o', LV_FIELDS);
export const LSBLK_COLUMNS = 'NAME,KNAME,PATH,SIZE,TYPE,FSTYPE,MOUNTPOINTS';

/** The gather script: the tool and root checks, the three reports, then four sections per listed device. */
export function gatherCommand(devices: readonly string[]): Command {
  const perDevice = devices.map(
    (d, i) => sh`d=${d}
if sanbook_run "dev ${raw(String(i))} exists" test -b "$d"; then
sanbook_run "dev ${raw(String(i))} real" readlink -f -- "$d"
sanbook_run "dev ${raw(String(i))} blkid" blkid -p -o export "$d"
sanbook_run "dev ${raw(String(i))} lsblk" lsblk -J -b -o ${LSBLK_COLUMNS} "$d"
fi
`,
  );
  return perDevice.reduce(
    (script, part) => sh`${script}${part}`,
    sh`${SECTION_FUNCTION}
sanbook_run lvm command -v lvm || exit 0
sanbook_run uid id -u
sanbook_run pvs ${pvsCommand()}
sanbook_run vgs ${vgsCommand()}
sanbook_run lvs ${lvsCommand()}
`,
  );
}

/** Parse the gather script's output. Throws (naming the host) when LVM is missing, not root, or a tool failed. */
export function parseLvmGather(stdout: string, devices: readonly string[], host: string): LvmFacts {
  const sections = splitSections(stdout);
  const what = `lvm on ${host}`;
  const get = (tag: string) => sectionOf(sections, tag, what);
  if (get('lvm').exitCode !== 0) throw new Error(`${what}: LVM is not installed (no lvm command): install the lvm2 package first`);
  // Without root, pvs cannot read the disks and reports nothing: every disk would look blank.
  if (get('uid').stdout.trim() !== '0') throw new Error(`${what}: LVM needs root (set become: true)`);
  const report = <T>(tag: 'pvs' | 'vgs' | 'lvs', parse: (s: string) => T): T => {
    const s = get(tag);
    if (s.exitCode !== 0) throw new Error(`${what}: ${tag} failed (exit ${s.exitCode}): ${s.stderr.trim()}`);
    try {
      return parse(s.stdout);
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`);
    }
  };
  const result: Record<string, DeviceFacts> = {};
  devices.forEach((path, i) => {
    const exists = sections.some((s) => s.tag === `dev ${i} exists` && s.exitCode === 0);
    if (!exists) {
      result[path] = { path, exists: false, realPath: path, signature: null, users: [], partitions: [] };
      return;
    }
    const blkid = get(`dev ${i} blkid`);
    const lsblk = get(`dev ${i} lsblk`);
    if (lsblk.exitCode !== 0) throw new Error(`${what}: lsblk ${path} failed: ${lsblk.stderr.trim()}`);
    const top = parseLsblk(lsblk.stdout)[0];
    let signature: Signature | null;
    try {
      signature = parseBlkid(blkid.stdout, blkid.exitCode, blkid.stderr);
    } catch (e) {
      throw new Error(`${what}: ${path}: ${(e as Error).message}`);
    }
    result[path] = {
      path, exists, realPath: get(`dev ${i} real`).stdout.trim() || path, signature,
      users: top ? usersOf(top) : [], partitions: top ? top.children.filter((c) => c.type === 'part').map((c) => c.path) : [],
    };
  });
  return { pvs: report('pvs', parsePvs), vgs: report('vgs', parseVgs), lvs: report('lvs', parseLvs), devices: result };
}
