/**
 * The mdadm module's facts: the gather script's sections parsed into what plan() reads, and the output.
 */
import type { OsFamily } from '../../lib/facts.ts';
import {
  describeBlkid,
  deviceUse,
  mdadmUuid,
  parseDetail,
  parseDetailExport,
  parseExamineExport,
  parseKeyValues,
  parseLsblk,
  parseMdstat,
  sameUuid,
  splitSections,
  type Detail,
  type DetailExport,
  type DetailMember,
  type ExamineExport,
  type LsblkNode,
  type MdstatArray,
  type Section,
  type Sync,
} from './parse.ts';
import { parseConf, parseInitramfsList, type InitramfsFile } from './conf.ts';

export interface MemberFacts {
  /** The path as listed in the params. */
  readonly path: string;
  /** Major:minor ("8:16"), the identity compared with the array's members; null when nothing is at the path. */
  readonly majMin: string | null;
  /** stat's file type ("block special file"); null when nothing is at the path. */
  readonly fileType: string | null;
  /** readlink -f */
  readonly realPath: string;
  readonly superblock: ExamineExport | null;
  /** blkid -p (null: nothing found); ambivalent: several signatures. */
  readonly blkid: Readonly<Record<string, string>> | null;
  readonly ambivalent: boolean;
  readonly lsblk: LsblkNode | null;
}

export interface MdadmFacts {
  readonly hostname: string;
  readonly family: OsFamily;
  readonly configPath: string;
  /** The array at /dev/md/NAME (null: none). */
  readonly array: { readonly kernelDevice: string; readonly export: DetailExport; readonly detail: Detail } | null;
  readonly mdstat: readonly MdstatArray[];
  /** Every listed device and spare, by listed path. */
  readonly devices: Readonly<Record<string, MemberFacts>>;
  /** mdadm.conf's text (null: no file). */
  readonly conf: string | null;
  readonly confMtime: number | null;
  readonly initramfs: readonly InitramfsFile[];
  /** A fresh random UUID (mdadm form), for --uuid when creating. */
  readonly freshUuid: string;
}

export interface GatherHost {
  /** Inventory name (for messages). */
  readonly name: string;
  readonly hostname: string;
  readonly family: OsFamily;
  readonly configPath: string;
}

/** The facts from the gather script's output. `paths`: the listed devices and spares, in the script's order. */
export function parseGather(array: string, paths: readonly string[], host: GatherHost, stdout: string, stderr = ''): MdadmFacts {
  const s = splitSections(stdout);
  const fail = (what: string): never => {
    const why = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-5).join(' / ')}` : '';
    throw new Error(`mdadm ${array} on ${host.name}: ${what}${why}`);
  };
  const get = (key: string): Section => s.get(key) ?? fail(`the gather output has no section ${key}`);
  if (get('mdadm').exitCode !== 0) fail('mdadm is not installed');
  // Without root, mdadm --examine and blkid -p cannot read the disks, which would then all look blank.
  if (get('uid').stdout.trim() !== '0') fail('mdadm needs root (set become: true)');
  const devices: Record<string, MemberFacts> = {};
  paths.forEach((path, i) => {
    const st = get(`dev.${i}.stat`);
    const stat = st.exitCode === 0 ? /^([0-9a-f]+):([0-9a-f]+) (.+)$/.exec(st.stdout.trim()) : null;
    const examine = get(`dev.${i}.examine`);
    const blkid = get(`dev.${i}.blkid`);
    const lsblk = get(`dev.${i}.lsblk`);
    if (stat && ![0, 1].includes(examine.exitCode)) fail(`mdadm --examine ${path} exited ${examine.exitCode}`);
    if (stat && ![0, 2, 8].includes(blkid.exitCode)) fail(`blkid -p ${path} exited ${blkid.exitCode}`);
    if (stat && lsblk.exitCode !== 0) fail(`lsblk ${path} exited ${lsblk.exitCode}`);
    devices[path] = {
      path,
      majMin: stat ? `${Number.parseInt(stat[1] ?? '', 16)}:${Number.parseInt(stat[2] ?? '', 16)}` : null,
      fileType: stat?.[3] ?? null,
      realPath: get(`dev.${i}.real`).stdout.trim() || path,
      superblock: stat && examine.exitCode === 0 ? parseExamineExport(examine.stdout) : null,
      blkid: stat && blkid.exitCode === 0 ? parseKeyValues(blkid.stdout) : null,
      ambivalent: !!stat && blkid.exitCode === 8,
      lsblk: stat ? (parseLsblk(lsblk.stdout)[0] ?? null) : null,
    };
  });
  const detailExport = get('detail-export');
  const detail = get('detail');
  if (detailExport.exitCode === 0 && detail.exitCode !== 0) fail(`mdadm --detail ${array} exited ${detail.exitCode}`);
  const conf = get('conf-exists').exitCode === 0 ? get('conf') : null;
  if (conf && conf.exitCode !== 0) fail(`cannot read ${host.configPath}`);
  const mtime = get('conf-mtime');
  return {
    hostname: host.hostname,
    family: host.family,
    configPath: host.configPath,
    array:
      detailExport.exitCode === 0
        ? { kernelDevice: get('array-real').stdout.trim(), export: parseDetailExport(detailExport.stdout), detail: parseDetail(detail.stdout) }
        : null,
    mdstat: parseMdstat(get('mdstat').stdout),
    devices,
    conf: conf ? conf.stdout : null,
    confMtime: conf && mtime.exitCode === 0 ? Number(mtime.stdout.trim()) : null,
    initramfs: parseInitramfsList(get('initramfs').stdout),
    freshUuid: mdadmUuid(get('uuid').stdout.trim()),
  };
}

// Readings of the facts that the plan and the output share (pure).

const nameIs = (sbName: string | null, name: string) => sbName === name || !!sbName?.endsWith(`:${name}`);

/** The UUID of the mdadm.conf line for this device, if any. */
export function confUuid(f: MdadmFacts, device: string): string | null {
  return parseConf(f.conf ?? '').arrays.find((a) => a.device === device)?.attrs['uuid'] ?? null;
}

/** Listed devices that carry the superblock of array NAME (MD_NAME NAME or HOST:NAME, or the UUID of its conf line). */
export function superblockMembers(f: MdadmFacts, name: string, device: string): MemberFacts[] {
  const uuid = confUuid(f, device);
  return Object.values(f.devices).filter((m) => m.superblock && (nameIs(m.superblock.name, name) || sameUuid(m.superblock.uuid, uuid)));
}

/**
 * The name mdadm --create writes in a 1.x superblock: HOMEHOST:NAME when that fits in 31 bytes, else NAME
 * (super1.c). The homehost is --homehost, else mdadm.conf's HOMEHOST (<system>: the host name; <none>, <ignore>:
 * none), else the host name. 0.90 superblocks have no name.
 */
export function superblockName(name: string, metadata: string, homehost: string | undefined, f: MdadmFacts): string | null {
  if (metadata === '0.90') return null;
  const conf = parseConf(f.conf ?? '').homehost?.toLowerCase() ?? null;
  const home = homehost ?? (conf === null || conf === '<system>' ? f.hostname : ['<none>', '<ignore>'].includes(conf) ? '' : conf);
  return home && home.length + 1 + name.length < 32 ? `${home}:${name}` : name;
}

/** What is on a device that a new superblock would destroy, and what uses it (mounts, holders). */
export function deviceContent(m: MemberFacts, own: { uuid: string | null; kernel: string | null }): { what: string[]; busy: string[] } {
  const use = m.lsblk ? deviceUse(m.lsblk, own.kernel) : { partitions: [], holders: [], mounts: [] };
  const sb = m.superblock;
  const what: string[] = [];
  if (sb && !sameUuid(sb.uuid, own.uuid)) what.push(`a member of RAID array ${sb.name ?? '(no name)'} (${sb.level ?? '?'}, UUID ${sb.uuid})`);
  const blk = m.blkid ? describeBlkid(m.blkid) : null;
  if (blk && !(sb && m.blkid?.['TYPE'] === 'linux_raid_member')) what.push(blk);
  if (m.ambivalent) what.push('several signatures (blkid -p is ambivalent)');
  if (use.partitions.length > 0) what.push(`partitions ${use.partitions.join(', ')}`);
  return { what, busy: [...use.mounts.map((x) => `mounted on ${x}`), ...use.holders.map((x) => `held by ${x}`)] };
}

export interface MdadmOutput {
  device: string;
  kernelDevice: string | null;
  uuid: string | null;
  level: string | null;
  /** What mdadm --detail says (clean, active, degraded, recovering, resyncing...), or 'stopped', or 'absent'. */
  state: string;
  degraded: boolean;
  members: string[];
  spares: string[];
  failed: string[];
  /** A resync, recovery, reshape or check in progress (finishMinutes from /proc/mdstat). */
  sync?: Sync;
}

export function arrayOutput(f: MdadmFacts, name: string, device: string): MdadmOutput {
  const a = f.array;
  const base = { device, kernelDevice: null, uuid: null, level: null, degraded: false, members: [], spares: [], failed: [] };
  if (!a) return { ...base, state: superblockMembers(f, name, device).length > 0 ? 'stopped' : 'absent' };
  const paths = (keep: (r: DetailMember) => boolean) => a.detail.members.filter((r) => r.device !== null && keep(r)).map((r) => r.device ?? '');
  const sync = f.mdstat.find((m) => `/dev/${m.device}` === a.kernelDevice)?.sync ?? a.detail.sync;
  return {
    ...base,
    kernelDevice: a.kernelDevice,
    uuid: a.export.uuid,
    level: a.export.level,
    state: a.detail.state.join(', '),
    degraded: a.detail.state.includes('degraded'),
    members: paths((r) => r.raidDevice !== null && !r.state.includes('faulty')),
    spares: paths((r) => r.raidDevice === null && r.state.includes('spare')),
    failed: paths((r) => r.state.includes('faulty')),
    ...(sync ? { sync } : {}),
  };
}
