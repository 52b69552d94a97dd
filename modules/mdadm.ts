/**
 * mdadm: a Linux software RAID array /dev/md/NAME, assembled and recorded in mdadm.conf (and the initramfs).
 *
 * gather is one round trip: one script prints each sub-command's output between marker lines with its exit code
 * (gatherScript; parsed by parseGather in mdadm/facts.ts). plan never re-creates an array that exists (running,
 * or stopped with its superblocks on the listed devices) unless what is asked cannot be reached otherwise, and
 * then only as a destructive change. Members of a running array that are not listed are left alone.
 */
import { cmd, raw, sh, type Command } from '../lib/command.ts';
import type { OsFamily } from '../lib/facts.ts';
import { defineModule, exec, put, type Change, type Step } from '../lib/module.ts';
import * as P from './mdadm/parse.ts';
import * as C from './mdadm/conf.ts';
import * as F from './mdadm/facts.ts';
import type { MdadmFacts, MdadmOutput, MemberFacts } from './mdadm/facts.ts';

export type { MdadmFacts, MdadmOutput, MemberFacts };

export type MdLevel = 0 | 1 | 4 | 5 | 6 | 10;
export interface MdadmParams {
  name: string;
  state?: 'present' | 'absent';
  level?: MdLevel;
  devices?: string[];
  spares?: string[];
  metadata?: '1.0' | '1.1' | '1.2' | '0.90';
  chunkKiB?: number;
  homehost?: string;
  bitmap?: 'internal' | 'none';
  wait?: boolean;
  config?: string;
  updateInitramfs?: boolean;
}

const CHUNKED: readonly number[] = [0, 4, 5, 6, 10];
const MIN_DEVICES: Record<MdLevel, number> = { 0: 2, 1: 2, 4: 2, 5: 2, 6: 4, 10: 2 };
const WAIT_MS = 24 * 3600_000;
const INITRAMFS_MS = 60 * 60_000;
const INITRAMFS: Partial<Record<OsFamily, { glob: string; command: Command }>> = {
  debian: { glob: '/boot/initrd.img-*', command: cmd('update-initramfs', '-u', '-k', 'all') },
  redhat: { glob: '/boot/initramfs-*.img', command: cmd('dracut', '-f', '--regenerate-all') },
  suse: { glob: '/boot/initrd-*', command: cmd('dracut', '-f', '--regenerate-all') },
};

export const mdDevice = (p: MdadmParams) => `/dev/md/${p.name}`;
const listed = (p: MdadmParams) => [...new Set([...(p.devices ?? []), ...(p.spares ?? [])])];
export const defaultConfig = (family: OsFamily) => (family === 'debian' ? '/etc/mdadm/mdadm.conf' : '/etc/mdadm.conf');
function raise(message: string): never {
  throw new Error(message);
}

/** A script that prints each command's stdout between `MARK begin KEY` and `MARK end EXIT` lines (P.splitSections). */
export function framedScript(sections: readonly (readonly [string, Command])[]): Command {
  const prelude = sh`M=${P.MARK}\nb() { printf '%s begin %s\\n' "$M" "$1"; }\ne() { printf '\\n%s end %s\\n' "$M" "$1"; }\n`;
  return sections.reduce((script, [key, c]) => sh`${script}b ${key}; ${c}; e $?\n`, prelude);
}

/** The one gather script (one round trip): the array, /proc/mdstat, mdadm.conf, the initramfs, each listed device. */
export function gatherScript(p: MdadmParams, configPath: string, family: OsFamily): Command {
  const dev = mdDevice(p);
  return framedScript([
    ['mdadm', sh`command -v mdadm`],
    ['uid', sh`id -u`],
    ['detail-export', cmd('mdadm', '--detail', '--export', dev)],
    ['detail', cmd('mdadm', '--detail', dev)],
    ['array-real', cmd('readlink', '-f', '--', dev)],
    ['mdstat', sh`cat /proc/mdstat`],
    ['uuid', sh`cat /proc/sys/kernel/random/uuid`],
    ['conf-exists', cmd('test', '-e', configPath)],
    ['conf', cmd('cat', '--', configPath)],
    ['conf-mtime', cmd('stat', '-c', '%Y', '--', configPath)],
    ['initramfs', sh`for f in ${raw(INITRAMFS[family]?.glob ?? '/nonexistent')}; do [ -e "$f" ] && stat -c '%Y %n' -- "$f"; done; :`],
    ...listed(p).flatMap((d, i) => [
      [`dev.${i}.stat`, cmd('stat', '-L', '-c', '%t:%T %F', '--', d)],
      [`dev.${i}.real`, cmd('readlink', '-f', '--', d)],
      [`dev.${i}.examine`, cmd('mdadm', '--examine', '--export', d)],
      [`dev.${i}.blkid`, cmd('blkid', '-p', '-o', 'export', d)],
      [`dev.${i}.lsblk`, cmd('lsblk', '-J', '-b', '-o', 'NAME,PATH,TYPE,MOUNTPOINTS', d)],
    ] as const),
  ]);
}

/** What the plan knows of an existing array: running, or stopped with its superblocks on listed devices. */
interface Current {
  readonly running: boolean;
  readonly uuid: string;
  readonly name: string | null;
  readonly level: string;
  readonly raidDevices: number;
  readonly metadata: string | null;
  readonly chunkKiB: number | null;
  readonly bitmap: boolean | null;
  /** Major:minor of the devices in it (any role but faulty), and of its faulty ones. */
  readonly present: ReadonlySet<string>;
  readonly faulty: ReadonlySet<string>;
  /** Paths of its (non-faulty) members: their superblocks are zeroed when it goes. */
  readonly members: readonly string[];
  readonly degraded: boolean;
  readonly kernel: string | null;
}

function current(p: MdadmParams, f: MdadmFacts): Current | null {
  const a = f.array;
  if (a?.detail.state.includes('inactive')) raise(`${mdDevice(p)} is inactive (assembled from too few devices?): start it (mdadm --run) or stop it (mdadm --stop)`);
  if (a) {
    const rows = a.detail.members.filter((r) => r.device !== null);
    const ok = rows.filter((r) => !r.state.includes('faulty'));
    return {
      running: true, uuid: a.export.uuid ?? a.detail.uuid ?? '', name: a.export.name, level: a.export.level ?? a.detail.level ?? '?',
      raidDevices: a.export.raidDevices, metadata: a.export.metadata, chunkKiB: a.detail.chunkKiB, bitmap: a.detail.bitmap,
      present: new Set(ok.map((r) => r.majMin)), faulty: new Set(rows.filter((r) => !ok.includes(r)).map((r) => r.majMin)),
      members: ok.map((r) => r.device ?? ''), degraded: a.detail.state.some((w) => w === 'degraded' || w === 'FAILED'), kernel: a.kernelDevice,
    };
  }
  const found = F.superblockMembers(f, p.name, mdDevice(p));
  const sb = found[0]?.superblock;
  if (!sb) return null;
  const other = found.find((m) => !P.sameUuid(m.superblock?.uuid, sb.uuid));
  if (other) raise(`${found[0]?.path} and ${other.path} carry superblocks of two different arrays named ${p.name}: zero the stale one`);
  const holders = found.flatMap((m) => (m.lsblk ? P.deviceUse(m.lsblk).holders : []));
  if (holders.length > 0) raise(`array ${p.name} runs as ${holders.join(', ')} but ${mdDevice(p)} does not exist: stop it (mdadm --stop) so that it is assembled under its name`);
  const version = found[0]?.blkid?.['VERSION'];
  return {
    running: false, uuid: sb.uuid, name: sb.name, level: sb.level ?? '?', raidDevices: sb.raidDevices,
    metadata: version ? P.metadataVersion(version) : null, chunkKiB: null, bitmap: null,
    present: new Set(found.map((m) => m.majMin ?? '')), faulty: new Set(), members: found.map((m) => m.path),
    degraded: found.length < sb.raidDevices, kernel: null,
  };
}

/**
 * Steps that make devices ready for a new superblock, and what that destroys. A device that is mounted or held by
 * another device is an error even with force: wipefs and mdadm would fail on it half-way through the change.
 */
function prepare(dev: string, devices: readonly MemberFacts[], own: { uuid: string | null; kernel: string | null }) {
  const reasons: string[] = [];
  const busy: string[] = [];
  const steps: Step[] = [];
  for (const m of devices) {
    const c = F.deviceContent(m, own);
    if (c.busy.length > 0) busy.push(`${m.path} is in use (${c.busy.join(', ')})`);
    if (c.what.length > 0) reasons.push(`${m.path} holds ${c.what.join(' and ')}`);
    if (m.superblock) steps.push(exec(cmd('mdadm', '--zero-superblock', m.path)));
    if (c.what.length > 0) steps.push(exec(cmd('wipefs', '-a', m.path)));
  }
  if (busy.length > 0) raise(`cannot use these devices for ${dev}: ${[...busy, ...reasons].join('; ')}. A device in use is refused even with force: free it first`);
  return { reasons, steps };
}

const waitStep = (dev: string) => exec(cmd('mdadm', '--wait', dev).with({ okCodes: [0, 1], timeoutMs: WAIT_MS }));
const destructive = (reasons: readonly string[]) => (reasons.length > 0 ? { destructive: reasons.join('; ') } : {});
const plural = (n: number, word: string) => `${n} ${word}${n > 1 ? 's' : ''}`;
type Devices = { devices: MemberFacts[]; spares: MemberFacts[] };

function check(p: MdadmParams, f: MdadmFacts): Devices {
  const level = p.level as MdLevel;
  const facts = (d: string) => f.devices[d] ?? raise(`no facts for ${d} (a module bug)`);
  const devs = { devices: (p.devices ?? []).map(facts), spares: (p.spares ?? []).map(facts) };
  if (p.chunkKiB !== undefined && !CHUNKED.includes(level)) raise(`chunkKiB applies to levels 0, 4, 5, 6 and 10, not ${level}`);
  if (level === 0 && devs.spares.length > 0) raise('a RAID 0 array cannot have spares');
  if (devs.devices.length < MIN_DEVICES[level]) raise(`RAID ${level} needs at least ${MIN_DEVICES[level]} devices, ${devs.devices.length} listed`);
  const seen = new Map<string, string>();
  for (const m of [...devs.devices, ...devs.spares]) {
    if (m.majMin === null) raise(`member device ${m.path} does not exist`);
    if (m.fileType !== 'block special file') raise(`${m.path} is not a block device (${m.fileType})`);
    const dup = seen.get(m.majMin);
    if (dup !== undefined) raise(`${dup} and ${m.path} are the same device (${m.realPath})`);
    seen.set(m.majMin, m.path);
  }
  return devs;
}

/** Why the existing array cannot become what is asked without re-creating it (null: it can). */
function mismatch(p: MdadmParams, cur: Current, n: number): string | null {
  const level = `raid${p.level}`;
  if (cur.level !== level) return `${cur.level} → ${level}`;
  if (cur.metadata !== null && cur.metadata !== p.metadata) return `metadata ${cur.metadata} → ${p.metadata}`;
  if (p.chunkKiB !== undefined && cur.chunkKiB !== null && cur.chunkKiB !== p.chunkKiB) return `chunk ${cur.chunkKiB}K → ${p.chunkKiB}K`;
  if (n !== cur.raidDevices && !(p.level === 1 && n > cur.raidDevices)) return `${level} on ${cur.raidDevices} → ${n} devices (a reshape)`;
  return null;
}

/** Create the array (over `old`, an existing array that cannot become what is asked: destructive). */
function createChange(p: MdadmParams, f: MdadmFacts, devs: Devices, old: Current | null): Change {
  const dev = mdDevice(p);
  const all = [...devs.devices, ...devs.spares];
  const prep = prepare(dev, all, { uuid: old?.uuid ?? null, kernel: old?.kernel ?? null });
  const opt = (flag: string, v: string | number | undefined) => (v === undefined ? [] : [`--${flag}=${v}`]);
  const create = cmd('mdadm', '--create', dev, '--run', `--level=${p.level}`, `--raid-devices=${devs.devices.length}`, `--metadata=${p.metadata}`,
    `--name=${p.name}`, `--uuid=${f.freshUuid}`, ...opt('chunk', p.chunkKiB), ...opt('homehost', p.homehost), ...opt('bitmap', p.bitmap),
    ...opt('spare-devices', devs.spares.length || undefined), ...all.map((m) => m.path));
  const listedIds = new Set(all.map((m) => m.majMin));
  const unlisted = old?.running ? (f.array?.detail.members ?? []).filter((r) => r.device && !listedIds.has(r.majMin) && !r.state.includes('faulty')) : [];
  const before = old?.running ? [exec(cmd('mdadm', '--stop', dev)), ...unlisted.map((r) => exec(cmd('mdadm', '--zero-superblock', r.device ?? '')))] : [];
  const what = `raid${p.level} ${dev} on ${plural(devs.devices.length, 'device')}${devs.spares.length ? ` + ${plural(devs.spares.length, 'spare')}` : ''}`;
  return {
    summary: old ? `re-create ${what} (it is ${old.level} on ${old.raidDevices})` : `create ${what}`,
    steps: [...before, ...prep.steps, exec(create), ...(p.wait ? [waitStep(dev)] : [])],
    ...destructive([...(old ? [`${mismatch(p, old, devs.devices.length)} would destroy the data on ${dev}`] : []), ...prep.reasons]),
  };
}

/** Changes that make an existing array (running, or assembled just before) hold the listed devices and spares. */
function memberChanges(p: MdadmParams, cur: Current, devs: Devices): Change[] {
  const dev = mdDevice(p);
  const absent = (m: MemberFacts) => !cur.present.has(m.majMin ?? '') && !cur.faulty.has(m.majMin ?? '');
  const missing = devs.devices.filter(absent);
  const spares = devs.spares.filter(absent);
  const own = { uuid: cur.uuid, kernel: cur.kernel };
  const add = (ms: MemberFacts[]) => ms.map((m) => exec(cmd('mdadm', dev, '--add', m.path)));
  const names = (ms: MemberFacts[]) => ms.map((m) => m.path).join(', ');
  const wait = p.wait ? [waitStep(dev)] : [];
  const changes: Change[] = [];
  const n = devs.devices.length;
  if (p.level === 1 && n > cur.raidDevices) {
    const prep = prepare(dev, missing, own);
    const grow = exec(cmd('mdadm', '--grow', dev, `--raid-devices=${n}`));
    const summary = `grow raid1 ${dev} from ${cur.raidDevices} to ${n} devices${missing.length ? ` (add ${names(missing)})` : ''}`;
    changes.push({ summary, steps: [...prep.steps, ...add(missing), grow, ...wait], ...destructive(prep.reasons) });
  } else if (missing.length > 0) {
    if (!cur.degraded) {
      raise(`${dev} has all its ${cur.raidDevices} devices but ${names(missing)} (listed in devices) is not in it: list it under spares to add it as a spare, or list the device that took its place`);
    }
    const prep = prepare(dev, missing, own);
    changes.push({ summary: `add ${names(missing)} to degraded ${dev}`, steps: [...prep.steps, ...add(missing), ...wait], ...destructive(prep.reasons) });
  }
  if (spares.length > 0) {
    const prep = prepare(dev, spares, own);
    changes.push({ summary: `add spare${spares.length > 1 ? 's' : ''} ${names(spares)} to ${dev}`, steps: [...prep.steps, ...add(spares)], ...destructive(prep.reasons) });
  }
  if (p.bitmap !== undefined && cur.bitmap !== null && cur.bitmap !== (p.bitmap === 'internal')) {
    const summary = p.bitmap === 'internal' ? `add an internal write-intent bitmap to ${dev}` : `remove the write-intent bitmap of ${dev}`;
    changes.push({ summary, steps: [exec(cmd('mdadm', '--grow', dev, `--bitmap=${p.bitmap}`))] });
  }
  return changes;
}

/** mdadm.conf holds exactly `line` for this array (null: none); then the initramfs is rebuilt if older. */
function persistChanges(p: MdadmParams, f: MdadmFacts, line: string | null, uuid: string | null): Change[] {
  const path = f.configPath;
  const next = C.editConf(f.conf ?? '', line, { device: mdDevice(p), uuid });
  const changes: Change[] = [];
  if (next !== null) {
    const summary = line ? `record ${mdDevice(p)} in ${path}` : `remove ${mdDevice(p)} from ${path}`;
    changes.push({ summary, steps: [put(path, next)], diff: { label: path, before: f.conf ?? '', after: next } });
  }
  const stale = f.confMtime === null ? [] : f.initramfs.filter((i) => i.mtime < (f.confMtime ?? 0));
  if (p.updateInitramfs !== false && (next !== null || stale.length > 0)) {
    const how = INITRAMFS[f.family] ?? raise(`cannot update the initramfs on a ${f.family} host: set updateInitramfs: false`);
    const why = next !== null ? `${path} changed` : `${stale.map((i) => i.path).join(', ')} older than ${path}`;
    changes.push({ summary: `update the initramfs (${why})`, steps: [exec(how.command.with({ timeoutMs: INITRAMFS_MS }))] });
  }
  return changes;
}

function planPresent(p: MdadmParams, f: MdadmFacts): Change[] {
  const devs = check(p, f);
  const dev = mdDevice(p);
  const cur = current(p, f);
  if (!cur || mismatch(p, cur, devs.devices.length)) {
    const line = C.arrayLine(dev, p.metadata ?? '1.2', F.superblockName(p.name, p.metadata ?? '1.2', p.homehost, f), f.freshUuid);
    return [createChange(p, f, devs, cur), ...persistChanges(p, f, line, f.freshUuid)];
  }
  const changes: Change[] = [];
  if (!cur.running) {
    const run = cur.degraded ? ['--run'] : [];
    const summary = `assemble ${dev} from ${cur.members.join(', ')}${cur.degraded ? ` (degraded: ${cur.members.length} of ${cur.raidDevices} devices)` : ''}`;
    changes.push({ summary, steps: [exec(cmd('mdadm', '--assemble', dev, ...run, `--uuid=${cur.uuid}`, ...cur.members))] });
  }
  changes.push(...memberChanges(p, cur, devs));
  return [...changes, ...persistChanges(p, f, C.arrayLine(dev, cur.metadata ?? p.metadata ?? '1.2', cur.name, cur.uuid), cur.uuid)];
}

function planAbsent(p: MdadmParams, f: MdadmFacts): Change[] {
  const dev = mdDevice(p);
  const cur = current(p, f);
  const changes: Change[] = [];
  if (cur) {
    const members = cur.members.join(', ');
    changes.push({
      summary: cur.running ? `stop ${dev} and wipe the RAID superblocks of ${members}` : `wipe the RAID superblocks of stopped array ${p.name} on ${members}`,
      steps: [...(cur.running ? [exec(cmd('mdadm', '--stop', dev))] : []), ...cur.members.map((d) => exec(cmd('mdadm', '--zero-superblock', d)))],
      destructive: `removing ${dev} destroys its data (members ${members})`,
    });
  }
  return [...changes, ...persistChanges(p, f, null, cur?.uuid ?? F.confUuid(f, dev))];
}

export function planMdadm(p: MdadmParams, f: MdadmFacts): Change[] {
  return p.state === 'absent' ? planAbsent(p, f) : planPresent(p, f);
}

export const mdadm = defineModule<MdadmParams, MdadmFacts, MdadmOutput>({
  name: 'mdadm',
  description:
    'A Linux software RAID array /dev/md/NAME (mdadm), recorded in mdadm.conf and the initramfs. An array that exists is never re-created: a stopped one is assembled, a degraded one gets the listed devices that are missing, listed spares are added, a RAID 1 grows to the listed count. Devices in the array that are not listed, and members marked faulty, are left alone. Re-creating (another level, chunk, metadata or device count), creating over disks that hold anything (a filesystem, a partition table, another array) and state absent are destructive: refused unless force, and then the disks are wiped first. A disk that is mounted or held by another device is always refused.',
  examples: [
    { title: 'A RAID 1 for the first chunk server (seed 000)', params: { name: 'data-chunk1', level: 1, devices: ['/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d1', '/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d2'] } },
    { title: 'A RAID 5 with a spare, waiting for the initial resync', params: { name: 'r5', level: 5, devices: ['/dev/sdb', '/dev/sdc', '/dev/sdd'], spares: ['/dev/sde'], chunkKiB: 64, wait: true } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', maxLength: 31, description: 'The array is /dev/md/NAME, created with --name=NAME (its superblock says HOMEHOST:NAME).' },
      state: { enum: ['present', 'absent'], default: 'present', description: 'absent stops the array, zeroes the superblocks of its members (destructive) and removes its mdadm.conf line.' },
      level: { enum: [0, 1, 4, 5, 6, 10], description: 'RAID level (required when present).' },
      devices: {
        type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^/' },
        description: 'Member devices, any path (/dev/sdb, /dev/disk/by-id/...). Required when present; a listed device that does not exist is an error.',
      },
      spares: { type: 'array', default: [], uniqueItems: true, items: { type: 'string', pattern: '^/' }, description: 'Hot spares: listed after the devices with --spare-devices on create, added with --add to an existing array.' },
      metadata: { enum: ['1.0', '1.1', '1.2', '0.90'], default: '1.2', description: 'Superblock format (0.90 has no name: its members are known by the UUID of the mdadm.conf line).' },
      chunkKiB: { type: 'integer', minimum: 4, description: 'Chunk size in KiB (levels 0, 4, 5, 6 and 10 only; default: mdadm\'s). Compared with a running array only when given.' },
      homehost: { type: 'string', pattern: '^[^\\s:]+$', description: 'Passed as --homehost on create (default: mdadm.conf HOMEHOST, else the host name).' },
      bitmap: { enum: ['internal', 'none'], description: 'Write-intent bitmap; changed on a running array with mdadm --grow --bitmap.' },
      wait: { type: 'boolean', default: false, description: 'Wait for the resync or recovery a create, grow or add starts (mdadm --wait, up to 24 h).' },
      config: { type: 'string', pattern: '^/', description: 'mdadm.conf path (default: /etc/mdadm/mdadm.conf on Debian and Ubuntu, /etc/mdadm.conf elsewhere).' },
      updateInitramfs: {
        type: 'boolean', default: true,
        description: 'Rebuild the initramfs (update-initramfs -u -k all on Debian, dracut -f --regenerate-all on RHEL and SUSE) when mdadm.conf changed or an initramfs is older than it.',
      },
    },
    if: { properties: { state: { const: 'absent' } }, required: ['state'] },
    else: { properties: { level: true, devices: true }, required: ['level', 'devices'] },
  },
  async gather(conn, params, ctx) {
    const configPath = params.config ?? defaultConfig(ctx.facts.os.family);
    const r = await conn.exec(gatherScript(params, configPath, ctx.facts.os.family));
    const host = { name: ctx.host, hostname: ctx.facts.hostname, family: ctx.facts.os.family, configPath };
    return F.parseGather(mdDevice(params), listed(params), host, r.stdout, r.stderr);
  },
  plan: planMdadm,
  output: (p, f) => F.arrayOutput(f, p.name, mdDevice(p)),
});
