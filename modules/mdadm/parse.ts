/**
 * Pure parsers for the mdadm module: the gather script's sections, `mdadm --detail [--export]`,
 * `mdadm --examine --export`, /proc/mdstat, `blkid -p -o export` and `lsblk -J` (mdadm.conf is in conf.ts).
 * Every parser is tested on output recorded from the real tools (test/fixtures/).
 */

/** The gather script prints each sub-command's stdout between these marker lines, then its exit code. */
export const MARK = '@@sanbook-mdadm@@';

export interface Section {
  readonly stdout: string;
  readonly exitCode: number;
}

/**
 * Split the gather script's output. Each section is `MARK begin KEY\n<stdout>\nMARK end CODE\n`: the script
 * prints a newline before the end marker, so the stdout is exactly what the command printed.
 */
export function splitSections(stdout: string): Map<string, Section> {
  const out = new Map<string, Section>();
  const begin = `${MARK} begin `;
  const end = `\n${MARK} end `;
  let pos = 0;
  for (;;) {
    const b = stdout.indexOf(begin, pos);
    if (b < 0) return out;
    const nl = stdout.indexOf('\n', b);
    if (nl < 0) throw new Error('mdadm gather: a section header is cut short');
    const key = stdout.slice(b + begin.length, nl);
    const e = stdout.indexOf(end, nl);
    if (e < 0) throw new Error(`mdadm gather: section ${key} has no end marker (output cut short?)`);
    const eol = stdout.indexOf('\n', e + end.length);
    const code = Number(stdout.slice(e + end.length, eol < 0 ? undefined : eol));
    if (!Number.isInteger(code)) throw new Error(`mdadm gather: section ${key} has no exit code`);
    out.set(key, { stdout: stdout.slice(nl + 1, e), exitCode: code });
    pos = eol < 0 ? stdout.length : eol + 1;
  }
}

/** KEY=VALUE lines (mdadm --export, blkid -o export). */
export function parseKeyValues(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** Any UUID spelling (blkid's dashes, mdadm's colons, the kernel's random uuid) as 32 lowercase hex digits. */
export function uuidHex(uuid: string): string {
  return uuid.replace(/[^0-9a-fA-F]/g, '').toLowerCase();
}

/** mdadm's 8:8:8:8 form (as --detail --brief and mdadm.conf write it). */
export function mdadmUuid(uuid: string): string {
  const hex = uuidHex(uuid);
  if (hex.length !== 32) throw new Error(`not a 128-bit UUID: ${uuid}`);
  return [0, 8, 16, 24].map((i) => hex.slice(i, i + 8)).join(':');
}

export function sameUuid(a: string | null | undefined, b: string | null | undefined): boolean {
  return !!a && !!b && uuidHex(a) === uuidHex(b);
}

/** 1.2 -> 1.2, 0.90.0 (blkid) or 0.90 -> 0.90. */
export function metadataVersion(v: string): string {
  const m = /^(\d+)\.(\d+)/.exec(v.trim());
  if (!m || m[1] === undefined || m[2] === undefined) return v.trim();
  return m[1] === '0' ? `0.${m[2].padStart(2, '0')}` : `${m[1]}.${m[2]}`;
}

export interface DetailExport {
  /** raid1, raid5, ... (absent for an inactive array) */
  readonly level: string | null;
  readonly raidDevices: number;
  readonly metadata: string | null;
  readonly uuid: string | null;
  /** The name under /dev/md/ (data1). */
  readonly devname: string | null;
  /** The superblock's name, homehost:name (1.x metadata only). */
  readonly name: string | null;
  /** Each device: its slot number, or 'spare' (faulty devices are reported as spares here). */
  readonly devices: readonly { readonly dev: string; readonly role: number | string }[];
}

/** `mdadm --detail --export /dev/md/NAME` */
export function parseDetailExport(stdout: string): DetailExport {
  const kv = parseKeyValues(stdout);
  const byId = new Map<string, { dev?: string; role?: number | string }>();
  for (const [k, v] of Object.entries(kv)) {
    const m = /^MD_DEVICE_(.+)_(ROLE|DEV)$/.exec(k);
    if (!m || m[1] === undefined) continue;
    const entry = byId.get(m[1]) ?? {};
    if (m[2] === 'DEV') entry.dev = v;
    else entry.role = /^\d+$/.test(v) ? Number(v) : v;
    byId.set(m[1], entry);
  }
  return {
    level: kv['MD_LEVEL'] ?? null,
    raidDevices: Number(kv['MD_DEVICES'] ?? 0),
    metadata: kv['MD_METADATA'] ? metadataVersion(kv['MD_METADATA']) : null,
    uuid: kv['MD_UUID'] ?? null,
    devname: kv['MD_DEVNAME'] ?? null,
    name: kv['MD_NAME'] ?? null,
    devices: [...byId.values()].filter((d) => d.dev !== undefined).map((d) => ({ dev: d.dev ?? '', role: d.role ?? 'unknown' })),
  };
}

export interface ExamineExport {
  readonly level: string | null;
  readonly raidDevices: number;
  /** homehost:name (1.x metadata); null for 0.90 */
  readonly name: string | null;
  readonly uuid: string;
  readonly deviceUuid: string | null;
  readonly events: number | null;
}

/** `mdadm --examine --export DEV` (exit 0: the device carries an md superblock). */
export function parseExamineExport(stdout: string): ExamineExport | null {
  const kv = parseKeyValues(stdout);
  if (!kv['MD_UUID']) return null;
  return {
    level: kv['MD_LEVEL'] ?? null,
    raidDevices: Number(kv['MD_DEVICES'] ?? 0),
    name: kv['MD_NAME'] ?? null,
    uuid: kv['MD_UUID'],
    deviceUuid: kv['MD_DEV_UUID'] ?? null,
    events: kv['MD_EVENTS'] !== undefined ? Number(kv['MD_EVENTS']) : null,
  };
}

export interface Sync {
  /** resync, recovery, reshape, check, repair */
  readonly action: string;
  readonly percent: number;
  /** Minutes left (from /proc/mdstat; null when only --detail said it). */
  readonly finishMinutes: number | null;
  /** DELAYED or PENDING (the sync waits for another array on the same disks). */
  readonly waiting?: string;
}

export interface DetailMember {
  /** Major:minor of the device ("8:16"), the identity compared with the listed devices. */
  readonly majMin: string;
  /** Slot in the array, or null (spare, faulty, not in a slot). */
  readonly raidDevice: number | null;
  /** active, sync, spare, rebuilding, faulty, removed, writemostly, ... */
  readonly state: readonly string[];
  /** null for an empty slot ("removed") */
  readonly device: string | null;
}

export interface Detail {
  readonly fields: Readonly<Record<string, string>>;
  readonly level: string | null;
  readonly raidDevices: number;
  /** "clean, degraded, recovering" as words: ['clean', 'degraded', 'recovering']; ['inactive'] */
  readonly state: readonly string[];
  readonly failedDevices: number;
  readonly spareDevices: number;
  readonly chunkKiB: number | null;
  /** resync, bitmap, ppl, journal (Consistency Policy) */
  readonly consistencyPolicy: string | null;
  readonly bitmap: boolean;
  readonly name: string | null;
  readonly uuid: string | null;
  readonly sync: Sync | null;
  readonly members: readonly DetailMember[];
}

const STATUS_ACTION: Record<string, string> = { Rebuild: 'recovery', Resync: 'resync', Reshape: 'reshape', Check: 'check' };

/** `mdadm --detail /dev/md/NAME` (the human form: state, chunk, sync status, the device table). */
export function parseDetail(stdout: string): Detail {
  const fields: Record<string, string> = {};
  const members: DetailMember[] = [];
  let table = false;
  for (const line of stdout.split('\n')) {
    if (/^\s*Number\s+Major\s+Minor\s+RaidDevice/.test(line)) {
      table = true;
      continue;
    }
    if (table) {
      const m = /^\s*(-|\d+)\s+(\d+)\s+(\d+)\s+(-|\d+)\s+(.*?)\s*$/.exec(line);
      if (!m || m[5] === undefined) continue;
      const words = m[5].split(/\s+/).filter(Boolean);
      const device = words.length > 0 && words[words.length - 1]?.startsWith('/') ? (words.pop() ?? null) : null;
      members.push({ majMin: `${m[2]}:${m[3]}`, raidDevice: m[4] === '-' ? null : Number(m[4]), state: words, device });
      continue;
    }
    const kv = /^\s*([A-Za-z][A-Za-z' ]*?)\s+:\s?(.*)$/.exec(line);
    if (kv && kv[1] !== undefined && kv[2] !== undefined) fields[kv[1]] = kv[2].trim();
  }
  const num = (k: string) => (fields[k] !== undefined ? Number.parseInt(fields[k], 10) : 0);
  let sync: Sync | null = null;
  for (const [word, action] of Object.entries(STATUS_ACTION)) {
    const m = /^(\d+)%/.exec(fields[`${word} Status`] ?? '');
    if (m) sync = { action, percent: Number(m[1]), finishMinutes: null };
  }
  const chunk = /^(\d+)K$/.exec(fields['Chunk Size'] ?? '');
  const policy = fields['Consistency Policy'] ?? null;
  return {
    fields,
    level: fields['Raid Level'] ?? null,
    raidDevices: num('Raid Devices'),
    state: (fields['State'] ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    failedDevices: num('Failed Devices'),
    spareDevices: num('Spare Devices'),
    chunkKiB: chunk ? Number(chunk[1]) : null,
    consistencyPolicy: policy,
    bitmap: fields['Intent Bitmap'] !== undefined || policy === 'bitmap',
    name: fields['Name']?.split(/\s+/)[0] ?? null,
    uuid: fields['UUID'] ?? null,
    sync,
    members,
  };
}

export interface MdstatArray {
  /** md127 */
  readonly device: string;
  readonly active: boolean;
  /** auto-read-only, read-only (null: read-write) */
  readonly readOnly: string | null;
  readonly level: string | null;
  /** Each member: kernel name, slot number in the superblock, flags F (faulty), S (spare), W, R, J. */
  readonly members: readonly { readonly name: string; readonly slot: number; readonly flags: readonly string[] }[];
  readonly blocks: number | null;
  readonly chunkKiB: number | null;
  /** [n/m]: raid devices, and how many are in sync; [UU_] */
  readonly raidDevices: number | null;
  readonly inSync: number | null;
  readonly status: string | null;
  readonly sync: Sync | null;
}

const SYNC_RE = /\b(resync|recovery|reshape|check|repair)\s*=\s*([\d.]+)%.*?finish=([\d.]+)min/;
const WAIT_RE = /\b(resync|recovery|reshape|check|repair)\s*=\s*(DELAYED|PENDING)/;

/** /proc/mdstat */
export function parseMdstat(text: string): MdstatArray[] {
  const out: MdstatArray[] = [];
  let cur: { -readonly [K in keyof MdstatArray]: MdstatArray[K] } | null = null;
  for (const line of text.split('\n')) {
    const head = /^(md\S+)\s*:\s*(active|inactive)\s*(.*)$/.exec(line);
    if (head && head[1] !== undefined && head[3] !== undefined) {
      const members: { name: string; slot: number; flags: string[] }[] = [];
      let level: string | null = null;
      let readOnly: string | null = null;
      for (const word of head[3].split(/\s+/).filter(Boolean)) {
        const ro = /^\((.+)\)$/.exec(word);
        const member = /^(.+)\[(\d+)\]((?:\([A-Z]\))*)$/.exec(word);
        if (ro) readOnly = ro[1] ?? null;
        else if (member && member[1] !== undefined) {
          members.push({ name: member[1], slot: Number(member[2]), flags: (member[3] ?? '').replace(/[()]/g, '').split('').filter(Boolean) });
        } else if (level === null) level = word;
      }
      cur = { device: head[1], active: head[2] === 'active', readOnly, level, members, blocks: null, chunkKiB: null, raidDevices: null, inSync: null, status: null, sync: null };
      out.push(cur);
      continue;
    }
    if (!cur || !/^\s/.test(line)) {
      cur = null;
      continue;
    }
    const blocks = /^\s*(\d+) blocks/.exec(line);
    if (blocks) cur.blocks = Number(blocks[1]);
    const chunk = /(\d+)k chunks?/.exec(line);
    if (chunk) cur.chunkKiB = Number(chunk[1]);
    const st = /\[(\d+)\/(\d+)\]\s+\[([U_]+)\]/.exec(line);
    if (st) {
      cur.raidDevices = Number(st[1]);
      cur.inSync = Number(st[2]);
      cur.status = st[3] ?? null;
    }
    const sync = SYNC_RE.exec(line);
    if (sync && sync[1] !== undefined) cur.sync = { action: sync[1], percent: Number(sync[2]), finishMinutes: Number(sync[3]) };
    const wait = WAIT_RE.exec(line);
    if (wait && wait[1] !== undefined) cur.sync = { action: wait[1], percent: 0, finishMinutes: null, waiting: wait[2] ?? '' };
  }
  return out;
}

/** What a device holds, in words, from `blkid -p -o export` (null: nothing blkid recognises). */
export function describeBlkid(kv: Readonly<Record<string, string>>): string | null {
  const type = kv['TYPE'];
  const label = kv['LABEL'] ? ` labelled ${kv['LABEL']}` : '';
  if (type === 'linux_raid_member') {
    const uuid = kv['UUID'] ? `, UUID ${mdadmUuid(kv['UUID'])}` : '';
    return `a member of RAID array ${kv['LABEL'] ?? '(no name)'} (md metadata ${kv['VERSION'] ?? '?'}${uuid})`;
  }
  if (type !== undefined) {
    const article = /^[aeiox]/i.test(type) ? 'an' : 'a';
    return kv['USAGE'] === 'filesystem' ? `${article} ${type} filesystem${label}` : `${article} ${type} signature${label}`;
  }
  if (kv['PTTYPE'] !== undefined) return `a ${kv['PTTYPE']} partition table`;
  return null;
}

export interface LsblkNode {
  readonly name: string;
  readonly path: string;
  readonly type: string;
  readonly mountpoints: readonly string[];
  readonly children: readonly LsblkNode[];
}

function toNode(raw: Record<string, unknown>): LsblkNode {
  const mps = Array.isArray(raw['mountpoints']) ? (raw['mountpoints'] as unknown[]) : [raw['mountpoint']];
  const name = String(raw['name'] ?? '');
  return {
    name,
    path: typeof raw['path'] === 'string' ? raw['path'] : `/dev/${name}`,
    type: String(raw['type'] ?? ''),
    mountpoints: mps.filter((m): m is string => typeof m === 'string' && m !== ''),
    children: Array.isArray(raw['children']) ? (raw['children'] as Record<string, unknown>[]).map(toNode) : [],
  };
}

/** `lsblk -J ...`: the device trees (a device's children are its partitions and its holders). */
export function parseLsblk(stdout: string): LsblkNode[] {
  const json = JSON.parse(stdout) as { blockdevices?: Record<string, unknown>[] };
  return (json.blockdevices ?? []).map(toNode);
}

export interface DeviceUse {
  readonly partitions: readonly string[];
  /** Devices built on top of it (md, dm, ...): "/dev/md126 (raid5)" */
  readonly holders: readonly string[];
  /** Mount points on it or on anything built on it. */
  readonly mounts: readonly string[];
}

/** What uses a device, from its lsblk tree; `own` (this array's kernel device) and what is on it are skipped. */
export function deviceUse(node: LsblkNode, own: string | null = null): DeviceUse {
  const partitions: string[] = [];
  const holders: string[] = [];
  const mounts: string[] = [...node.mountpoints];
  const walk = (n: LsblkNode) => {
    for (const c of n.children) {
      if (own !== null && c.path === own) continue;
      // The device's partitions; what is built on it or on them (what is built on a holder is the holder's).
      if (c.type === 'part' && n === node) partitions.push(c.path);
      else if (n === node || n.type === 'part') holders.push(`${c.path} (${c.type})`);
      mounts.push(...c.mountpoints);
      walk(c);
    }
  };
  walk(node);
  return { partitions, holders, mounts };
}
