/**
 * moosefs_chunkserver: a MooseFS chunkserver. mfschunkserver.cfg (MASTER_HOST, HDD_LEAVE_SPACE_DEFAULT, ...) and
 * mfshdd.cfg (the storage directories) from templates; each directory owned by the working user and, for mounts
 * (requireMounts), a mounted filesystem; a systemd drop-in orders the chunkserver after those mounts
 * (RequiresMountsFor=); moosefs-chunkserver enabled, started, reloaded or restarted with a changed file.
 *
 * A chunkserver keeps the metadata id of the instance it joined (DATA_PATH/chunkserverid.mfs: its 2-byte id and the
 * 8-byte metadata id; DISK/.metaid on each disk) and refuses a master with another one ("wrong meta data id"): a
 * re-created master. gather reads those files and the last registration message in the unit's journal; when they
 * disagree with the master's id (masterMetaid, or the id the journal says the master sent), clearing them is planned,
 * marked destructive: the chunks on the disks belong to the old instance and the new master has them deleted.
 */
import { cmd, sh } from '../../lib/command.ts';
import { defineModule, exec, mkdirFor, type Change } from '../../lib/module.ts';
import type { Secret } from '../../lib/secret.ts';
import { planContent, type FileContentFacts } from '../copy.ts';
import { STAT_FORMAT, parseStat, type Stat } from '../file.ts';
import type { ServiceFacts } from '../service.ts';
import { applyBy, cfgEntries, changedKeys, daemonSchema, HOST_PATTERN, maskCfg, PATH_PATTERN, render, renderCfg, SIZE_PATTERN, VALUE_PATTERN } from './cfg.ts';
import { checkUnit, fileMode, isRunning, planFiles, planOwnedDir, planService, withApply } from './daemon.ts';
import { gatherScript, hexOf, parseGathered } from './gather.ts';
import { DEFAULT_DATA, type DaemonParams } from './master.ts';

export interface MoosefsChunkserverParams extends DaemonParams {
  masterHost: string;
  masterPort?: number;
  disks: string[];
  removing?: string[];
  requireMounts?: boolean;
  leaveSpaceDefault?: string;
  authCode?: Secret;
  masterMetaid?: string;
}

export interface DiskFacts {
  readonly path: string;
  readonly stat: Stat | null;
  /** The mount point of the filesystem holding the path (findmnt -T), null when unknown. */
  readonly mountTarget: string | null;
  /** DISK/.metaid as upper-case hex, null when absent (or all zero). */
  readonly metaid: string | null;
}

export interface MoosefsChunkserverFacts {
  readonly config: FileContentFacts;
  readonly hdd: FileContentFacts;
  readonly dropIn: FileContentFacts;
  readonly service: ServiceFacts;
  readonly dataDir: Stat | null;
  readonly disks: readonly DiskFacts[];
  /** DATA_PATH/chunkserverid.mfs: the chunkserver's id and the metadata id of its instance. */
  readonly csid: { readonly id: number; readonly metaid: string | null } | null;
  /** The metadata id the master sent, when the journal's last registration message is a "wrong meta data id". */
  readonly refusedBy: string | null;
}

export interface MoosefsChunkserverOutput {
  readonly unit: string;
  readonly activeState: string;
  readonly disks: readonly { readonly path: string; readonly mountTarget: string | null; readonly owner: string | null }[];
  readonly chunkserverId: number | null;
  readonly metaid: string | null;
}

export const CHUNKSERVER_UNIT = 'moosefs-chunkserver.service';
export const CHUNKSERVER_CFG = '/etc/mfs/mfschunkserver.cfg';
export const HDD_CFG = '/etc/mfs/mfshdd.cfg';
export const MOUNTS_DROP_IN = '/etc/systemd/system/moosefs-chunkserver.service.d/sanbook-mounts.conf';

const ZERO = /^0*$/;
const id = (hex: string | null | undefined): string | null => (hex === null || hex === undefined || hex === '' || ZERO.test(hex) ? null : hex.slice(0, 16));

/** requireMounts, per disk: given, or true for directories under /mnt. */
export function requiresMount(p: MoosefsChunkserverParams, path: string): boolean {
  return p.requireMounts ?? path.startsWith('/mnt/');
}

function planDisk(p: MoosefsChunkserverParams, d: DiskFacts, user: string, group: string): Change[] {
  const mount = requiresMount(p, d.path);
  if (d.stat === null && mount) throw new Error(`disk ${d.path} does not exist: mount its filesystem there first (requireMounts)`);
  if (mount && d.stat !== null && (d.mountTarget === null || d.mountTarget === '/')) {
    throw new Error(`disk ${d.path} is on the root filesystem, not on a mounted disk: mount it first (systemd_mount), or set requireMounts: false`);
  }
  return planOwnedDir(d.path, d.stat, user, group, 'disk', true);
}

/** The lines of mfshdd.cfg: a disk being removed is marked with * (its chunks are replicated elsewhere). */
export function hddLines(p: MoosefsChunkserverParams): string[] {
  const removing = p.removing ?? [];
  const unknown = removing.filter((r) => !p.disks.includes(r));
  if (unknown.length > 0) throw new Error(`removing: ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not among the disks (a disk is marked for removal while it is still listed)`);
  return p.disks.map((d) => (removing.includes(d) ? `*${d}` : d));
}

/** The directories the current mfshdd.cfg uses (prefixes *<>~ and a space limit stripped) that the task drops. */
export function droppedDisks(current: string, disks: readonly string[]): string[] {
  const norm = (d: string) => d.replace(/(.)\/+$/, '$1');
  const wanted = new Set(disks.map(norm));
  const used = current.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l !== '').map((l) => norm(l.replace(/^[*<>~]+/, '').split(/\s+/)[0] ?? ''));
  return used.filter((d) => !wanted.has(d));
}

/** The stored ids that differ from the master's (files to remove), when the master's id is known. */
export function staleIds(p: MoosefsChunkserverParams, f: MoosefsChunkserverFacts): { master: string; held: string[]; files: string[] } | null {
  const master = p.masterMetaid?.toUpperCase() ?? f.refusedBy;
  if (master === null) return null;
  const data = p.dataPath ?? DEFAULT_DATA;
  const held = [f.csid?.metaid ?? null, ...f.disks.map((d) => d.metaid)].filter((m): m is string => m !== null);
  if (held.every((m) => m === master)) return null;
  const files = [...(f.csid !== null ? [`${data}/chunkserverid.mfs`] : []), ...f.disks.filter((d) => d.metaid !== null).map((d) => `${d.path.replace(/\/$/, '')}/.metaid`)];
  return { master, held: [...new Set(held.filter((m) => m !== master))], files };
}

export function planChunkserver(p: MoosefsChunkserverParams, f: MoosefsChunkserverFacts): Change[] {
  checkUnit(f.service, CHUNKSERVER_UNIT, 'moosefs-chunkserver');
  const user = p.workingUser ?? 'mfs';
  const group = p.workingGroup ?? 'mfs';
  const changes: Change[] = [];
  const dropIn = render('mfschunkserver-mounts.conf', { paths: p.disks.join(' ') });
  const dropInChanges = planContent({ path: MOUNTS_DROP_IN, content: Buffer.from(dropIn.content), mode: '0644', owner: 'root', group: 'root' }, f.dropIn);
  for (const c of dropInChanges) {
    const writes = c.steps.some((s) => s.kind === 'put');
    changes.push(writes ? { ...c, summary: `${c.summary}: the chunkserver starts after the mounts of ${p.disks.join(', ')}; daemon-reload`, steps: [mkdirFor(MOUNTS_DROP_IN), ...c.steps, exec(cmd('systemctl', 'daemon-reload'))] } : c);
  }
  changes.push(...planOwnedDir(p.dataPath ?? DEFAULT_DATA, f.dataDir, user, group, 'data directory', true));
  for (const d of f.disks) changes.push(...planDisk(p, d, user, group));
  const entries = cfgEntries(
    'mfschunkserver',
    [['WORKING_USER', p.workingUser], ['WORKING_GROUP', p.workingGroup], ['DATA_PATH', p.dataPath], ['MASTER_HOST', p.masterHost], ['MASTER_PORT', p.masterPort], ['HDD_LEAVE_SPACE_DEFAULT', p.leaveSpaceDefault], ['AUTH_CODE', p.authCode]],
    p.extra ?? {},
  );
  const cfgText = f.config.content === null ? null : f.config.content.toString('utf8');
  const files = planFiles(
    [
      { path: CHUNKSERVER_CFG, rendered: renderCfg('mfschunkserver', entries), ...fileMode(p.authCode !== undefined, group), apply: applyBy(changedKeys(cfgText, entries)), mask: maskCfg },
      { path: HDD_CFG, rendered: render('mfshdd.cfg', { disks: hddLines(p), user, group, dropIn: MOUNTS_DROP_IN }), ...fileMode(false, group), apply: 'reload' },
    ],
    (path) => (path === CHUNKSERVER_CFG ? f.config : f.hdd),
  );
  const stale = staleIds(p, f);
  const dropped = droppedDisks(f.hdd.content === null ? '' : f.hdd.content.toString('utf8'), p.disks);
  const guarded = files.changes.map((c): Change =>
    dropped.length > 0 && c.steps.some((st) => st.kind === 'put' && st.path === HDD_CFG)
      ? { ...c, summary: `${c.summary}: ${dropped.join(', ')} no longer used`, destructive: `the chunks on ${dropped.join(', ')} become unavailable (a chunk with one copy is missing until the disk comes back): mark it for removal first (removing: [PATH]) and drop it once mfscli shows it holds no chunk` }
      : c,
  );
  changes.push(...(stale === null ? withApply({ ...files, changes: guarded }, CHUNKSERVER_UNIT, f.service, p.restart !== false) : guarded));
  if (stale !== null) {
    changes.push({
      summary: `clear the instance ids of this chunkserver (metadata id ${stale.held.join(', ')}; the master's is ${stale.master}): stop ${CHUNKSERVER_UNIT}, remove ${stale.files.join(' ')}`,
      steps: [exec(cmd('systemctl', 'stop', CHUNKSERVER_UNIT)), exec(cmd('rm', '-f', '--', ...stale.files))],
      destructive: `the chunks on ${p.disks.join(', ')} belong to the instance with metadata id ${stale.held.join(', ')}: the master of ${stale.master} does not know them and has them deleted`,
    });
  }
  changes.push(...planService(CHUNKSERVER_UNIT, f.service, isRunning(f.service) && stale === null));
  return changes;
}

export function chunkserverGatherScript(p: MoosefsChunkserverParams) {
  const data = p.dataPath ?? DEFAULT_DATA;
  const disks = p.disks.map((d) => sh`sanbook_run ${`disk ${d}`} sanbook_disk ${d}`);
  return gatherScript({
    needs: [{ pkg: 'moosefs-chunkserver', program: 'mfschunkserver' }],
    files: [CHUNKSERVER_CFG, HDD_CFG, MOUNTS_DROP_IN],
    stats: [data],
    unit: CHUNKSERVER_UNIT,
    more: [
      sh`sanbook_disk() {
  # A disk that cannot be read (EIO: an XFS that shut down) is an error naming it, not "absent".
  if ! s=$(stat --printf ${STAT_FORMAT} -- "$1" 2>&1); then
    case $s in *'No such file or directory') echo absent; return 0;; esac
    printf '%s\n' "$s" >&2; return 1
  fi
  printf '%s\n' "$s"
  printf 'mount %s\\n' "$(findmnt -n -o TARGET -T "$1" 2>/dev/null | head -n 1)"
  if [ -f "$1/.metaid" ]; then printf 'metaid %s\\n' "$(od -A n -t x1 -v -- "$1/.metaid" | tr -d ' \\n')"; fi
}
sanbook_csid() { if [ -f "$1" ]; then od -A n -t x1 -v -- "$1"; fi; }
sanbook_journal() { journalctl -u ${CHUNKSERVER_UNIT} -o cat -n 2000 --no-pager 2>/dev/null | grep -E 'wrong meta data id|connected to Master' | tail -n 1; :; }`,
      ...disks,
      sh`sanbook_run csid sanbook_csid ${`${data}/chunkserverid.mfs`}
sanbook_run journal sanbook_journal`,
    ],
  });
}

export function parseDisk(path: string, text: string): DiskFacts {
  const lines = text.split('\n');
  if (lines[0]?.trim() === 'absent') return { path, stat: null, mountTarget: null, metaid: null };
  const value = (key: string) => lines.find((l) => l.startsWith(`${key} `))?.slice(key.length + 1).trim();
  return { path, stat: parseStat(lines[0] ?? ''), mountTarget: value('mount') || null, metaid: id(value('metaid')?.toUpperCase()) };
}

export function parseChunkserverGather(stdout: string, p: MoosefsChunkserverParams, host: string): MoosefsChunkserverFacts {
  const g = parseGathered(stdout, 'moosefs_chunkserver', host, CHUNKSERVER_UNIT);
  const disk = (path: string) => {
    const s = g.section(`disk ${path}`);
    if (s.exitCode !== 0) throw new Error(`moosefs_chunkserver: reading disk ${path} failed on ${host}: ${s.stderr || `exit ${s.exitCode}`}`);
    return parseDisk(path, s.stdout);
  };
  const csid = hexOf(g.section('csid').stdout);
  const refused = /wrong meta data id.*received from master:([0-9A-Fa-f]{1,16})/.exec(g.section('journal').stdout);
  return {
    config: g.file(CHUNKSERVER_CFG),
    hdd: g.file(HDD_CFG),
    dropIn: g.file(MOUNTS_DROP_IN),
    service: g.service,
    dataDir: g.stat(p.dataPath ?? DEFAULT_DATA),
    disks: p.disks.map(disk),
    csid: csid.length < 4 ? null : { id: Number.parseInt(csid.slice(0, 4), 16), metaid: id(csid.slice(4, 20)) },
    refusedBy: refused?.[1] === undefined ? null : refused[1].toUpperCase().padStart(16, '0'),
  };
}

export const moosefsChunkserver = defineModule<MoosefsChunkserverParams, MoosefsChunkserverFacts, MoosefsChunkserverOutput>({
  name: 'moosefs_chunkserver',
  description:
    'A MooseFS chunkserver: mfschunkserver.cfg and mfshdd.cfg from templates, storage directories owned by mfs and started after their mounts (RequiresMountsFor), the service enabled, started, reloaded or restarted with a changed file; stale instance ids of a re-created master cleared only with force.',
  examples: [
    {
      title: "Seed 000's chunk1: the two multipath volumes mounted on /mnt/data_chunkN",
      params: { masterHost: '10.3.1.100', disks: ['/mnt/data_chunk1', '/mnt/data_chunk2'], leaveSpaceDefault: '64MiB' },
    },
    { title: 'The lab: a directory of the root filesystem as the disk', params: { masterHost: 'mfsmaster', disks: ['/var/lib/mfs-hdd'], requireMounts: false, leaveSpaceDefault: '64MiB' } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['masterHost', 'disks'],
    properties: {
      masterHost: { type: 'string', pattern: HOST_PATTERN, description: 'MASTER_HOST: the master\'s address or name (a loopback address is refused by the chunkserver).' },
      masterPort: { type: 'integer', minimum: 1, maximum: 65535, description: 'MASTER_PORT: the master\'s port for chunkservers (default 9420).' },
      disks: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'string', pattern: PATH_PATTERN, minLength: 2 },
        description: 'The storage directories (mfshdd.cfg), e.g. the /mnt/data_chunkN mounts: each is chowned to the working user; a missing one is created unless it must be a mount.',
      },
      removing: {
        type: 'array',
        uniqueItems: true,
        items: { type: 'string', pattern: PATH_PATTERN, minLength: 2 },
        description: 'Disks (among disks) marked for removal (*PATH in mfshdd.cfg): the master replicates their chunks elsewhere; drop them from disks once mfscli shows them empty (dropping a disk is destructive).',
      },
      requireMounts: {
        type: 'boolean',
        description: 'Each disk must exist on a mounted filesystem other than / (so the chunkserver never fills the root filesystem under a missing mount). Default: true for disks under /mnt, false otherwise.',
      },
      leaveSpaceDefault: { type: 'string', pattern: SIZE_PATTERN, description: 'HDD_LEAVE_SPACE_DEFAULT: the space left free on each disk (default 256MiB, which leaves nothing on small disks), e.g. 64MiB, 5GiB.' },
      authCode: { secret: { pattern: VALUE_PATTERN }, description: 'AUTH_CODE: the master\'s password for chunkservers (a secret; the file is then mode 0640 root:mfs).' },
      masterMetaid: {
        type: 'string',
        pattern: '^[0-9A-Fa-f]{16}$',
        description: 'The metadata id of the master (16 hex digits, as the chunkserver logs it): ids of another instance held by this chunkserver are cleared (destructive). Without it, the id the journal says the master sent is used.',
      },
      ...daemonSchema('mfschunkserver.cfg', CHUNKSERVER_UNIT, 'mfschunkserver.cfg or mfshdd.cfg'),
    },
  },
  async gather(conn, params, ctx) {
    if (!ctx.facts.systemd) throw new Error(`moosefs_chunkserver: systemd is not running on ${ctx.host}`);
    const r = await conn.exec(chunkserverGatherScript(params));
    if (r.exitCode !== 0) throw new Error(`moosefs_chunkserver: reading the chunkserver's state failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseChunkserverGather(r.stdout, params, ctx.host);
  },
  plan: planChunkserver,
  output: (_p, f) => ({
    unit: CHUNKSERVER_UNIT,
    activeState: f.service.activeState,
    disks: f.disks.map((d) => ({ path: d.path, mountTarget: d.mountTarget, owner: d.stat === null ? null : `${d.stat.owner}:${d.stat.group}` })),
    chunkserverId: f.csid?.id ?? null,
    metaid: f.csid?.metaid ?? null,
  }),
});
