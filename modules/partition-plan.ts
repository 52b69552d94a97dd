/**
 * partition, the pure half: params and facts types, parted positions resolved to bytes, partition node
 * names, and plan() (see partition.ts for the module, its schema and its gather script).
 */
import { cmd } from '../lib/command.ts';
import { exec, type Change, type Step } from '../lib/module.ts';
import { describeSignature, withArticle, type Signature } from './blockdev.ts';

export interface PartitionSpec {
  number: number;
  name?: string;
  start?: string;
  end?: string;
  flags?: string[];
}

export interface PartitionParams {
  device: string;
  label?: 'gpt' | 'msdos';
  partitions: PartitionSpec[];
  state?: 'present' | 'absent';
}

export interface PartitionInfo {
  readonly number: number;
  /** First and last byte (inclusive) and size, from parted. */
  readonly start: number;
  readonly end: number;
  readonly size: number;
  readonly name: string;
  readonly flags: readonly string[];
  /** The filesystem parted sees in it ('' when none). */
  readonly fs: string;
  /** The partition's node as found on the host (lsblk / sysfs), null when none was found. */
  readonly path: string | null;
  /** What blkid -p finds in it, in words ("an xfs filesystem labelled data"); empty: nothing. A partition
   *  without a node to probe holds what parted sees, or "content that could not be probed". */
  readonly holds: readonly string[];
  /** Its mounts and holders, in words ("mounted on /srv", "used by /dev/md127 (raid1)"). */
  readonly users: readonly string[];
}

export interface PartitionFacts {
  readonly device: string;
  /** Where the device path leads (readlink -f). */
  readonly realPath: string;
  /** The path partition nodes are named after (/dev/mapper/NAME for a dm device). */
  readonly nodeBase: string;
  readonly size: number;
  readonly sectorSize: number;
  /** Alignment grain of parted -a optimal: the optimal I/O size, at least 1 MiB. */
  readonly grain: number;
  /** parted's label: gpt, msdos, loop (a filesystem on the whole device), ...; null: none. */
  readonly label: string | null;
  /** What blkid -p finds on the device itself (null: nothing). */
  readonly signature: Signature | null;
  /** Mounts and holders of the device itself (an md array, a multipath map). */
  readonly users: readonly string[];
  readonly partitions: readonly PartitionInfo[];
}

export interface PartitionOutput {
  device: string;
  label: string | null;
  partitions: { number: number; start: number; end: number; size: number; name: string; path: string }[];
}

export const MiB = 2 ** 20;
const UNITS: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KiB: 2 ** 10, MiB, GiB: 2 ** 30, TiB: 2 ** 40 };
export const POSITION_PATTERN = '^[0-9]+(\\.[0-9]+)?(B|s|kB|MB|GB|TB|KiB|MiB|GiB|TiB|%)$';

/** A parted position ('1MiB', '50%', '1048576B', '2048s') in bytes from the start of a device. */
export function resolvePosition(spec: string, size: number, sectorSize: number): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)([a-zA-Z%]+)$/.exec(spec);
  const value = Number(m?.[1]);
  const unit = m?.[2] ?? '';
  if (unit === '%') {
    if (value > 100) throw new Error(`${spec} is more than 100%`);
    return Math.round((size * value) / 100);
  }
  if (unit === 's') return value * sectorSize;
  const factor = UNITS[unit];
  if (factor === undefined || !m) throw new Error(`${spec} is not a position parted understands here (use B, s, MiB, GiB, MB, GB, %)`);
  return Math.round(value * factor);
}

/**
 * The first and last byte (inclusive) parted gives a partition asked as start..end, before alignment: an end
 * is exclusive (parted ends `1MiB 512MiB` at 512MiB - 1), and both are kept inside the usable area of the
 * label (GPT keeps its entries at both ends of the device).
 */
export function wantedGeometry(spec: { start: string; end: string }, label: string, size: number, sectorSize: number) {
  const entries = Math.ceil(16384 / sectorSize);
  const first = label === 'gpt' ? (2 + entries) * sectorSize : sectorSize;
  const last = label === 'gpt' ? size - (1 + entries) * sectorSize - 1 : size - 1;
  const endAt = resolvePosition(spec.end, size, sectorSize);
  if (endAt > size) throw new Error(`end ${spec.end} is beyond the end of the device (${fmt(size)})`);
  const start = Math.max(resolvePosition(spec.start, size, sectorSize), first);
  const end = Math.min(endAt - 1, last);
  if (end <= start) throw new Error(`start ${spec.start} is not before end ${spec.end}`);
  return { start, end };
}

/** Same place within the alignment grain (parted -a optimal may move a position by up to one grain). */
export function samePlace(a: number, b: number, grain: number): boolean {
  return Math.abs(a - b) <= grain;
}

/**
 * The node of partition N when the host has not shown it yet: /dev/mapper/NAME-partN (kpartx -p -part, as
 * Debian's multipath udev rules call it), /dev/disk/by-x/NAME-partN (udev links), and the kernel's rule
 * for the rest: a device name that ends in a digit takes a 'p' (nvme0n1p1, mmcblk0p1, md0p1), others not (sdb1).
 */
export function partitionNode(device: string, n: number): string {
  if (device.startsWith('/dev/mapper/') || device.startsWith('/dev/disk/')) return `${device}-part${n}`;
  return /[0-9]$/.test(device) ? `${device}p${n}` : `${device}${n}`;
}

const fmt = (b: number): string => `${Math.round((b / MiB) * 100) / 100} MiB`;
const range = (p: { start: number; end: number }): string => `${fmt(p.start)}..${fmt(p.end + 1)}`;

// ---------------------------------------------------------------- plan

/** parted reads its words through its own tokenizer: a name goes in double quotes ("" is the empty name). */
export function partedName(name: string): string {
  return `"${name}"`;
}

/**
 * After a change the new nodes must exist before the next task uses them: wait for udev; a dm device's
 * partitions are dm maps of their own, made by kpartx (Debian names them NAME-partN: -p -part).
 */
export function settleSteps(device: string, mapper: boolean): Step[] {
  const settle = exec(cmd('udevadm', 'settle'));
  return mapper ? [settle, exec(cmd('kpartx', '-u', '-p', '-part', device)), settle] : [settle];
}

function parted(p: PartitionParams, ...words: (string | number)[]): Step {
  return exec(cmd('parted', '-s', '-a', 'optimal', p.device, ...words.map(String)));
}

function flagWords(n: number, have: readonly string[], want: readonly string[] | undefined): string[] {
  if (want === undefined) return [];
  return [
    ...want.filter((f) => !have.includes(f)).flatMap((f) => ['set', String(n), f, 'on']),
    ...have.filter((f) => !want.includes(f)).flatMap((f) => ['set', String(n), f, 'off']),
  ];
}

/** "holds X and is mounted on Y" (empty: nothing found in or on it). */
const inUse = (x: { holds: readonly string[]; users: readonly string[] }): string[] => [
  ...x.holds.map((h) => `holds ${h}`),
  ...x.users.map((u) => `is ${u}`),
];

/** What is on a device that a new label would erase (empty: nothing). */
function contentOf(f: PartitionFacts): string[] {
  const out = f.users.map((u) => `is ${u}`);
  if (f.label !== null && f.label !== 'loop') {
    const n = f.partitions.length;
    out.push(`holds ${withArticle(f.label)} partition table with ${n} partition${n === 1 ? '' : 's'}`);
    for (const part of f.partitions) if (inUse(part).length > 0) out.push(`partition ${part.number} ${inUse(part).join(' and ')}`);
  } else if (f.signature) {
    out.push(`holds ${describeSignature(f.signature)}`);
  }
  return out;
}

export function planPartition(p: PartitionParams, f: PartitionFacts): Change[] {
  const dev = p.device;
  const label = p.label ?? 'gpt';
  const numbers = p.partitions.map((x) => x.number);
  if (new Set(numbers).size !== numbers.length) throw new Error(`partition ${dev}: a partition number is listed twice`);
  const wanted = [...p.partitions].sort((a, b) => a.number - b.number);
  const describe = (x: PartitionInfo) => `partition ${x.number} of ${dev}${x.path ? ` (${x.path})` : ''}`;
  const mapper = f.nodeBase.startsWith('/dev/mapper/');
  const changes: Change[] = [];
  if (p.state === 'absent') {
    for (const x of f.partitions.filter((x) => numbers.includes(x.number))) {
      changes.push({
        summary: `remove partition ${x.number} from ${dev}`,
        steps: [parted(p, 'rm', x.number), ...settleSteps(dev, mapper)],
        ...(inUse(x).length > 0 ? { destructive: `${describe(x)} ${inUse(x).join(' and ')}` } : {}),
      });
    }
    return changes;
  }
  for (const x of wanted) {
    if (x.start === undefined || x.end === undefined) throw new Error(`partition ${x.number} of ${dev}: start and end are required`);
    if (label === 'msdos' && x.name !== undefined) throw new Error(`partition ${x.number} of ${dev}: msdos partitions have no names`);
    if (label === 'msdos' && x.number > 4) throw new Error(`partition ${x.number} of ${dev}: only primary msdos partitions (1-4) are supported`);
  }
  let current = f.label === label ? [...f.partitions] : [];
  if (f.label !== label) {
    const content = contentOf(f);
    changes.push({
      summary: `create a ${label} partition table on ${dev}`,
      steps: [...(content.length > 0 ? [exec(cmd('wipefs', '-a', dev))] : []), parted(p, 'mklabel', label), ...settleSteps(dev, mapper)],
      ...(content.length > 0 ? { destructive: `${dev} ${content.join('; ')}` } : {}),
    });
  }
  for (const x of wanted) {
    const spec = { start: x.start ?? '', end: x.end ?? '' };
    let want: { start: number; end: number };
    try {
      want = wantedGeometry(spec, label, f.size, f.sectorSize);
    } catch (e) {
      throw new Error(`partition ${x.number} of ${dev}: ${(e as Error).message}`);
    }
    const have = current.find((c) => c.number === x.number);
    const where = `${spec.start}..${spec.end}`;
    if (have && samePlace(have.start, want.start, f.grain) && samePlace(have.end, want.end, f.grain)) {
      const words = [
        ...(label === 'gpt' && x.name !== undefined && x.name !== have.name ? ['name', String(x.number), partedName(x.name)] : []),
        ...flagWords(x.number, have.flags, x.flags),
      ];
      if (words.length > 0) {
        const what = [...(words[0] === 'name' ? [`name ${JSON.stringify(have.name)} -> ${JSON.stringify(x.name)}`] : []), ...(words.includes('set') ? [`flags [${have.flags.join(', ')}] -> [${(x.flags ?? []).join(', ')}]`] : [])];
        changes.push({ summary: `partition ${x.number} of ${dev}: ${what.join(', ')}`, steps: [parted(p, ...words), ...settleSteps(dev, mapper)] });
      }
      continue;
    }
    const steps: Step[] = [];
    let destructive: string | undefined;
    if (have) {
      destructive = `${describe(have)} is at ${range(have)}, not ${where} as asked: re-creating it loses its content (${inUse(have).length > 0 ? `it ${inUse(have).join(' and ')}` : 'blkid finds no signature in it'})`;
      current = current.filter((c) => c !== have);
      steps.push(parted(p, 'rm', x.number));
    }
    // parted may move either side by up to a grain: only an overlap beyond that is one.
    const inTheWay = current.find((c) => c.start + f.grain <= want.end && want.start + f.grain <= c.end);
    if (inTheWay) throw new Error(`partition ${x.number} of ${dev} (${where}) overlaps ${describe(inTheWay)} at ${range(inTheWay)}`);
    let free = 1;
    while (current.some((c) => c.number === free)) free++;
    if (free !== x.number) {
      throw new Error(`partition ${x.number} of ${dev}: parted gives a new partition the lowest free number (${free}): list partition ${free} too`);
    }
    const kind = label === 'gpt' ? partedName(x.name ?? '') : 'primary';
    steps.push(parted(p, 'mkpart', kind, spec.start, spec.end, ...flagWords(x.number, [], x.flags)), ...settleSteps(dev, mapper));
    current.push({ number: x.number, ...want, size: want.end - want.start + 1, name: x.name ?? '', flags: x.flags ?? [], fs: '', path: null, holds: [], users: [] });
    changes.push({
      summary: `${have ? 're-create' : 'create'} partition ${x.number}${x.name ? ` (${x.name})` : ''} on ${dev}: ${where}`,
      steps,
      ...(destructive ? { destructive } : {}),
    });
  }
  return changes;
}

export function partitionOutput(p: PartitionParams, f: PartitionFacts): PartitionOutput {
  return {
    device: p.device,
    label: f.label,
    partitions: f.partitions.map((x) => ({
      number: x.number, start: x.start, end: x.end, size: x.size, name: x.name, path: x.path ?? partitionNode(f.nodeBase, x.number),
    })),
  };
}
