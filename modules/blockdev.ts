/**
 * Block devices, read: pure parsers shared by the partition and filesystem modules, and the one-round-trip
 * gather script format both use.
 *
 *   blkid -p -o export DEV            KEY=VALUE lines; exit 2 = no signature, 8 = ambivalent (several)
 *   parted -m -s DEV unit B print     "BYT;", a device line, one line per partition (fields split by ':')
 *   lsblk -J -b -o ... DEV            a tree of nodes (children: partitions, holders such as md or dm maps)
 *
 * The gather script runs each tool through `sanbook_run TAG CMD...`, which prints a `@@sanbook begin TAG`
 * line, the tool's stdout, `@@sanbook rc N`, `@@sanbook stderr`, the tool's stderr and `@@sanbook end`: one round trip,
 * and every sub-output keeps its own exit code and stderr.
 */
import { raw, type Raw } from '../lib/command.ts';

// ---------------------------------------------------------------- sections of one gather script

export const MARK = '@@sanbook';

/**
 * The shell function that runs one tool as a section. Its stdout goes straight out (fd 3); its stderr is
 * captured and printed after the exit code. The leading newline of the rc line makes sure the marker starts
 * a line even when the tool's output does not end with one (the splitter removes it again).
 */
export const SECTION_FUNCTION: Raw = raw(
  `sanbook_run() { sanbook_tag=$1; shift; printf '${MARK} begin %s\\n' "$sanbook_tag"; ` +
    `{ sanbook_err=$("$@" 2>&1 1>&3 3>&-); sanbook_rc=$?; } 3>&1; ` +
    `printf '\\n${MARK} rc %s\\n${MARK} stderr\\n%s\\n${MARK} end\\n' "$sanbook_rc" "$sanbook_err"; return "$sanbook_rc"; }`,
);

export interface Section {
  readonly tag: string;
  readonly stdout: string;
  readonly stderr: string;
  /** The tool's exit code (NaN when the section was cut short). */
  readonly exitCode: number;
}

/** Split a gather script's output into its sections, in order. Text before the first section is ignored. */
export function splitSections(stdout: string): Section[] {
  const out: { tag: string; out: string[]; err: string[]; rc: number; phase: 'out' | 'rc' | 'err' | 'end' }[] = [];
  for (const line of stdout.split('\n')) {
    const cur = out[out.length - 1];
    if (line.startsWith(`${MARK} begin `)) {
      out.push({ tag: line.slice(MARK.length + 7), out: [], err: [], rc: Number.NaN, phase: 'out' });
    } else if (cur && cur.phase === 'out' && line.startsWith(`${MARK} rc `)) {
      cur.rc = Number.parseInt(line.slice(MARK.length + 4), 10);
      cur.phase = 'rc';
    } else if (cur && cur.phase === 'rc' && line === `${MARK} stderr`) {
      cur.phase = 'err';
    } else if (cur && cur.phase === 'err' && line === `${MARK} end`) {
      cur.phase = 'end';
    } else if (cur && (cur.phase === 'out' || cur.phase === 'err')) {
      (cur.phase === 'out' ? cur.out : cur.err).push(line);
    }
  }
  return out.map((s) => ({
    tag: s.tag,
    // The rc line is printed after a newline of its own, so joining the lines gives the output back exactly.
    stdout: s.out.join('\n'),
    stderr: s.err.join('\n').replace(/\n+$/, ''),
    exitCode: s.rc,
  }));
}

/** The section with this tag (exactly), or an error naming what is missing. */
export function sectionOf(sections: readonly Section[], tag: string, what: string): Section {
  const s = sections.find((x) => x.tag === tag);
  if (!s) throw new Error(`${what}: the gather script printed no "${tag}" section`);
  return s;
}

// ---------------------------------------------------------------- blkid -p -o export

export interface Signature {
  /** TYPE: xfs, ext4, linux_raid_member, LVM2_member, crypto_LUKS, swap, ... (null: only a partition table) */
  readonly type: string | null;
  /** USAGE: filesystem, raid, crypto, other */
  readonly usage: string | null;
  readonly label: string | null;
  readonly uuid: string | null;
  /** PTTYPE: a partition table (gpt, dos, ...) found on the device itself */
  readonly ptType: string | null;
  /** blkid -p exit 8: several signatures were found and none wins */
  readonly ambivalent: boolean;
  /** PART_ENTRY_*: the device is a partition (its entry in the parent's table; not a content signature) */
  readonly partEntry?: { readonly scheme: string; readonly number: number; readonly name: string | null };
}

/**
 * Parse `blkid -p -o export DEV`. null: nothing on the device (exit 2, or only the partition's own
 * PART_ENTRY_* values). Throws on other failures (4: usage or device error).
 */
export function parseBlkid(stdout: string, exitCode: number, stderr = ''): Signature | null {
  if (exitCode === 2) return null;
  if (exitCode !== 0 && exitCode !== 8) {
    throw new Error(`blkid failed (exit ${exitCode})${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
  }
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const scheme = kv.get('PART_ENTRY_SCHEME');
  const sig: Signature = {
    type: kv.get('TYPE') ?? null,
    usage: kv.get('USAGE') ?? null,
    label: kv.get('LABEL') ?? null,
    uuid: kv.get('UUID') ?? null,
    ptType: kv.get('PTTYPE') ?? null,
    ambivalent: exitCode === 8,
    ...(scheme !== undefined
      ? { partEntry: { scheme, number: Number(kv.get('PART_ENTRY_NUMBER') ?? '0'), name: kv.get('PART_ENTRY_NAME') ?? null } }
      : {}),
  };
  return sig.type === null && sig.ptType === null && !sig.ambivalent ? null : sig;
}

/** "an xfs", "a btrfs", "an ext4", "a linux_raid_member": the article a type name is read with. */
export function withArticle(word: string): string {
  return `${/^([aeiou]|x|f2fs|ntfs|msdos)/i.test(word) ? 'an' : 'a'} ${word}`;
}

/** What a signature is, in words: "an xfs filesystem labelled keep", "a RAID member (linux_raid_member) of array sto1:data1". */
export function describeSignature(sig: Signature): string {
  if (sig.ambivalent) return 'several signatures (blkid cannot tell which one is in use)';
  const parts: string[] = [];
  const t = sig.type;
  if (t !== null) {
    if (sig.usage === 'raid' && t === 'linux_raid_member') parts.push(`a RAID member (${t})${sig.label ? ` of array ${sig.label}` : ''}`);
    else if (t === 'LVM2_member') parts.push(`an LVM physical volume (${t})`);
    else if (sig.usage === 'filesystem') parts.push(`${withArticle(t)} filesystem ${sig.label ? `labelled ${sig.label}` : '(no label)'}`);
    else parts.push(`${withArticle(t)} signature${sig.label ? ` labelled ${sig.label}` : ''}`);
  }
  if (sig.ptType !== null) parts.push(`${withArticle(sig.ptType === 'dos' ? 'msdos' : sig.ptType)} partition table`);
  return parts.join(' and ');
}

// ---------------------------------------------------------------- parted -m -s DEV unit B print

export interface PartedPartition {
  readonly number: number;
  /** First and last byte (inclusive), and size, in bytes. */
  readonly start: number;
  readonly end: number;
  readonly size: number;
  /** The filesystem parted recognises in it ('' when none). */
  readonly fs: string;
  /** GPT partition name ('' when none; always '' on msdos). */
  readonly name: string;
  readonly flags: readonly string[];
}

export interface PartedTable {
  /** The device parted opened (symlinks resolved: /dev/sdb, /dev/mapper/mpatha). */
  readonly path: string;
  readonly size: number;
  readonly logicalSector: number;
  readonly physicalSector: number;
  /** gpt, msdos, loop (a filesystem on the whole device), ...; null: no label ("unrecognised disk label"). */
  readonly label: string | null;
  readonly model: string;
  readonly partitions: readonly PartedPartition[];
  /** What parted wrote on stderr though it succeeded (warnings). */
  readonly warnings: string;
}

const bytes = (field: string | undefined, what: string): number => {
  const m = /^(\d+)B$/.exec(field ?? '');
  if (!m?.[1]) throw new Error(`parted: ${what} is not a byte count: ${JSON.stringify(field)}`);
  return Number(m[1]);
};

/**
 * Parse `parted -m -s DEV unit B print`. Exit 1 with "unrecognised disk label" is a device without a label
 * (parted still prints the device line). Any other failure throws with parted's message.
 */
export function parseParted(stdout: string, exitCode: number, stderr: string): PartedTable {
  const noLabel = exitCode === 1 && /unrecognised disk label/.test(stderr);
  if (exitCode !== 0 && !noLabel) throw new Error(`parted failed (exit ${exitCode}): ${stderr.trim() || stdout.trim()}`);
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const at = lines.indexOf('BYT;');
  const dev = lines[at + 1];
  if (at < 0 || dev === undefined) throw new Error(`parted: no device line in its output: ${JSON.stringify(stdout)}`);
  // path:size:transport:logical-sector:physical-sector:label:model:flags;
  const f = dev.replace(/;$/, '').split(':');
  const partitions: PartedPartition[] = [];
  for (const line of lines.slice(at + 2)) {
    // number:start:end:size:fs:name:flags;
    const p = line.replace(/;$/, '').split(':');
    if (!/^\d+$/.test(p[0] ?? '')) continue;
    partitions.push({
      number: Number(p[0]),
      start: bytes(p[1], 'a partition start'),
      end: bytes(p[2], 'a partition end'),
      size: bytes(p[3], 'a partition size'),
      fs: p[4] ?? '',
      name: p.slice(5, -1).join(':'),
      flags: (p[p.length - 1] ?? '').split(',').map((x) => x.trim()).filter(Boolean),
    });
  }
  return {
    path: f[0] ?? '',
    size: bytes(f[1], 'the device size'),
    logicalSector: Number(f[3]),
    physicalSector: Number(f[4]),
    label: noLabel ? null : (f[5] ?? null),
    model: f.slice(6, -1).join(':'),
    partitions: noLabel ? [] : partitions,
    warnings: noLabel ? '' : stderr.trim(),
  };
}

// ---------------------------------------------------------------- lsblk -J -b

export interface BlockNode {
  readonly name: string;
  readonly kname: string;
  readonly path: string;
  /** disk, part, mpath, raid1, lvm, crypt, loop, ... */
  readonly type: string;
  readonly size: number;
  readonly fstype: string | null;
  readonly label: string | null;
  readonly partlabel: string | null;
  readonly mountpoints: readonly string[];
  readonly children: readonly BlockNode[];
}

function node(raw: Record<string, unknown>): BlockNode {
  const str = (k: string): string | null => (typeof raw[k] === 'string' ? (raw[k] as string) : null);
  const name = str('name') ?? '';
  const mounts = Array.isArray(raw['mountpoints']) ? raw['mountpoints'] : raw['mountpoint'] ? [raw['mountpoint']] : [];
  const children = Array.isArray(raw['children']) ? (raw['children'] as Record<string, unknown>[]) : [];
  return {
    name,
    kname: str('kname') ?? name,
    path: str('path') ?? `/dev/${name}`,
    type: str('type') ?? '',
    size: Number(raw['size'] ?? 0),
    fstype: str('fstype'),
    label: str('label'),
    partlabel: str('partlabel'),
    mountpoints: mounts.filter((m): m is string => typeof m === 'string'),
    children: children.map(node),
  };
}

/** Parse `lsblk -J -b -o ...` (any columns; name, path, type, size, fstype, label, mountpoints are read). */
export function parseLsblk(stdout: string): BlockNode[] {
  const json = JSON.parse(stdout) as { blockdevices?: Record<string, unknown>[] };
  return (json.blockdevices ?? []).map(node);
}

/** The node with this path (or kernel name), searched depth first. */
export function findNode(nodes: readonly BlockNode[], pathOrName: string): BlockNode | undefined {
  for (const n of nodes) {
    if (n.path === pathOrName || n.kname === pathOrName || n.name === pathOrName) return n;
    const hit = findNode(n.children, pathOrName);
    if (hit) return hit;
  }
  return undefined;
}

/** What uses a device, in words: its mounts and its holders (an md array, a dm map, ...), not its partitions. */
export function usersOf(n: BlockNode): string[] {
  return [
    ...n.mountpoints.map((m) => `mounted on ${m}`),
    ...n.children.filter((c) => c.type !== 'part').map((c) => `used by ${c.path} (${c.type})`),
  ];
}
