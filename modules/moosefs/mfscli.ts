/**
 * Parsers of `mfscli -p` (moosefs-cli 3.0.117, plain text): every table row is printed as `TITLE:\tCELL\tCELL...`
 * (mfscli's Tabble in neither tty nor cgi mode), so one parser reads any mix of sections (-SIN -SCS -SHD -SMB in
 * one call), line by line, by title. The columns, as mfscli 3.0.117 prints them with a 3.0 master:
 *
 *   metadata servers:  ip, version, state, local time, metadata version, metadata delay, RAM used, CPU used,
 *                      last save, last save duration, last save status, exports checksum
 *   master info:       NAME, VALUE ("total space", "avail space", "chunks", "all chunk copies", ...)
 *   all chunks matrix: "goal/copies/chunks:", GOAL, COPIES, CHUNKS (only cells > 0), and
 *                      "chunkclass missing:" N (endangered, undergoal, stable, overgoal, pending deletion, to be removed)
 *   chunk servers:     host, port, id, labels, version, load, maintenance, chunks, used, total,
 *                      removal status, removal chunks, removal used, removal total ('marked for removal' disks)
 *   Disconnected chunk servers: host, port, id, maintenance
 *   disks:             IP:PORT:PATH, chunks, last error, status, 8 I/O columns, used, total (or "progress:", %)
 *   metadata backup loggers: host, version
 *
 * Hosts are names when mfscli resolves them, IP addresses with -n (which moosefs_facts passes). A master that
 * cannot be reached is a line of text (exit status 0): it is kept as `masterError`.
 */
export interface MfsMetadataServer {
  readonly ip: string;
  readonly version: string;
  /** '-' for a single (community) master, DEAD when it cannot be reached, LEADER/FOLLOWER/... otherwise. */
  readonly state: string;
  readonly metadataVersion: number | null;
  readonly ramUsed: number | null;
  readonly exportsChecksum: string | null;
}

export interface MfsMasterInfo {
  readonly version: string;
  readonly totalSpace: number | null;
  readonly availSpace: number | null;
  readonly trashSpace: number | null;
  readonly trashFiles: number | null;
  readonly fsObjects: number | null;
  readonly directories: number | null;
  readonly files: number | null;
  readonly chunks: number | null;
  readonly allChunkCopies: number | null;
  readonly regularChunkCopies: number | null;
  /** Every "master info" row as printed (name -> value). */
  readonly raw: Readonly<Record<string, string>>;
}

export interface MfsChunkserver {
  readonly host: string;
  readonly port: number;
  readonly id: number | null;
  readonly labels: readonly string[];
  readonly version: string;
  /** The load; mfscli wraps it in (), [] or <> while the server is in its grace period. */
  readonly load: number | null;
  readonly maintenance: string;
  readonly chunks: number;
  readonly used: number;
  readonly total: number;
  readonly removal: { readonly status: string; readonly chunks: number; readonly used: number; readonly total: number };
}

export interface MfsDisconnected {
  readonly host: string;
  readonly port: number;
  readonly id: number | null;
  readonly maintenance: string;
}

export interface MfsDisk {
  /** IP:PORT of the chunkserver. */
  readonly chunkserver: string;
  readonly path: string;
  readonly chunks: number;
  /** 'no errors', or the time of the last error (seconds since the epoch, as printed). */
  readonly lastError: string;
  /** ok, damaged, invalid, marked for removal..., scanning. */
  readonly status: readonly string[];
  readonly used: number | null;
  readonly total: number | null;
  /** Percent scanned, while the disk is being scanned. */
  readonly scanning: number | null;
}

export interface MfsChunkClasses {
  readonly missing: number;
  readonly endangered: number;
  readonly undergoal: number;
  readonly stable: number;
  readonly overgoal: number;
  readonly pendingDeletion: number;
  readonly toBeRemoved: number;
}

export interface MfscliReport {
  /** mfscli's message when it found no working master, null otherwise. */
  readonly masterError: string | null;
  readonly metadataServers: readonly MfsMetadataServer[];
  readonly info: MfsMasterInfo | null;
  /** The chunks by goal and number of valid copies ("all chunks" matrix: cells with chunks only). */
  readonly copies: readonly { readonly goal: number; readonly copies: number; readonly chunks: number }[];
  readonly classes: MfsChunkClasses | null;
  readonly chunkservers: readonly MfsChunkserver[];
  readonly disconnected: readonly MfsDisconnected[];
  readonly disks: readonly MfsDisk[];
  readonly metaloggers: readonly { readonly host: string; readonly version: string }[];
  /** Python tracebacks mfscli printed for a section it could not read. */
  readonly errors: readonly string[];
}

const int = (s: string | undefined): number | null => (s !== undefined && /^\d+$/.test(s) ? Number(s) : null);
const must = (s: string | undefined, what: string, line: string): number => {
  const n = int(s);
  if (n === null) throw new Error(`mfscli: ${what} is not a number in ${JSON.stringify(line)}`);
  return n;
};

const CLASS_KEYS: Readonly<Record<string, keyof MfsChunkClasses>> = {
  missing: 'missing',
  endangered: 'endangered',
  undergoal: 'undergoal',
  stable: 'stable',
  overgoal: 'overgoal',
  'pending deletion': 'pendingDeletion',
  'to be removed': 'toBeRemoved',
};

const MASTER_ERRORS = [/^Working master servers not found/, /^Can't find masters/, /^Leader master server not found/];

function chunkserver(f: readonly string[], line: string): MfsChunkserver {
  if (f.length < 14) throw new Error(`mfscli: a chunk servers row has ${f.length} columns, not 14 (a master older than 3.0.38?): ${JSON.stringify(line)}`);
  const [host = '', port, id, labels = '-', version = '', load = '', maintenance = '', chunks, used, total, status = '-', rc, ru, rt] = f;
  return {
    host,
    port: must(port, 'the port', line),
    id: int(id),
    labels: labels === '-' ? [] : labels.split(','),
    version,
    load: int(load.replace(/^[([<](\d+)[)\]>]$/, '$1')),
    maintenance,
    chunks: must(chunks, 'chunks', line),
    used: must(used, 'used', line),
    total: must(total, 'total', line),
    removal: { status, chunks: must(rc, 'removal chunks', line), used: must(ru, 'removal used', line), total: must(rt, 'removal total', line) },
  };
}

function disk(f: readonly string[], line: string): MfsDisk {
  const m = /^([^:]+):(\d+):(.*)$/.exec(f[0] ?? '');
  if (m === null) throw new Error(`mfscli: a disks row does not start with IP:PORT:PATH: ${JSON.stringify(line)}`);
  const scanning = f[12] === 'progress:';
  return {
    chunkserver: `${m[1] ?? ''}:${m[2] ?? ''}`,
    path: m[3] ?? '',
    chunks: must(f[1], 'chunks', line),
    lastError: f[2] ?? '',
    status: (f[3] ?? '').split(', ').filter(Boolean),
    used: scanning ? null : int(f[12]),
    total: scanning ? null : int(f[13]),
    scanning: scanning ? Number.parseFloat(f[13] ?? '') : null,
  };
}

/** Parse the output of `mfscli -p -S...` (any sections, in one output). */
export function parseMfscli(stdout: string): MfscliReport {
  let masterError: string | null = null;
  const metadataServers: MfsMetadataServer[] = [];
  const raw: Record<string, string> = {};
  const copies: { goal: number; copies: number; chunks: number }[] = [];
  const classes: Partial<Record<keyof MfsChunkClasses, number>> = {};
  const chunkservers: MfsChunkserver[] = [];
  const disconnected: MfsDisconnected[] = [];
  const disks: MfsDisk[] = [];
  const metaloggers: { host: string; version: string }[] = [];
  const errors: string[] = [];
  const lines = stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (MASTER_ERRORS.some((r) => r.test(line))) masterError = line.trim();
    if (/^-+ error -+$/.test(line)) {
      const trace: string[] = [];
      while (i + 1 < lines.length && (lines[i + 1] ?? '') !== '') trace.push(lines[++i] ?? '');
      errors.push(trace.join('\n'));
      continue;
    }
    const sep = line.indexOf(':\t');
    if (sep < 0) continue;
    const title = line.slice(0, sep);
    const f = line.slice(sep + 2).split('\t');
    if (title === 'metadata servers') {
      metadataServers.push({ ip: f[0] ?? '', version: f[1] ?? '', state: f[2] ?? '', metadataVersion: int(f[4]?.replace(/ /g, '')), ramUsed: int(f[6]), exportsChecksum: f[11] && f[11] !== '-' ? f[11] : null });
    } else if (title === 'master info') {
      raw[f[0] ?? ''] = f[1] ?? '';
    } else if (title === 'all chunks matrix') {
      const cls = /^chunkclass (.+):$/.exec(f[0] ?? '');
      const key = cls?.[1] === undefined ? undefined : CLASS_KEYS[cls[1]];
      if (key !== undefined) classes[key] = must(f[1], cls?.[1] ?? '', line);
      else if (f[0] === 'goal/copies/chunks:') copies.push({ goal: must(f[1], 'goal', line), copies: must(f[2], 'copies', line), chunks: must(f[3], 'chunks', line) });
    } else if (title === 'chunk servers') {
      chunkservers.push(chunkserver(f, line));
    } else if (title === 'Disconnected chunk servers') {
      disconnected.push({ host: f[0] ?? '', port: must(f[1], 'the port', line), id: int(f[2]), maintenance: f[3] ?? '' });
    } else if (title === 'disks') {
      disks.push(disk(f, line));
    } else if (title === 'metadata backup loggers') {
      metaloggers.push({ host: f[0] ?? '', version: f[1] ?? '' });
    }
  }
  const n = (k: string) => int(raw[k]);
  const info: MfsMasterInfo | null =
    raw['master version'] === undefined
      ? null
      : {
          version: raw['master version'],
          totalSpace: n('total space'),
          availSpace: n('avail space'),
          trashSpace: n('trash space'),
          trashFiles: n('trash files'),
          fsObjects: n('all fs objects'),
          directories: n('directories'),
          files: n('files'),
          chunks: n('chunks'),
          allChunkCopies: n('all chunk copies'),
          regularChunkCopies: n('regular chunk copies'),
          raw,
        };
  const complete = Object.values(CLASS_KEYS).every((k) => classes[k] !== undefined);
  return { masterError, metadataServers, info, copies, classes: complete ? (classes as MfsChunkClasses) : null, chunkservers, disconnected, disks, metaloggers, errors };
}

/** Every chunk has as many valid copies as its goal: nothing missing, endangered (1 copy) or under its goal. */
export function allAtGoal(r: MfscliReport): boolean {
  return r.classes !== null && r.classes.missing + r.classes.endangered + r.classes.undergoal === 0;
}
