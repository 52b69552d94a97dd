/**
 * The daemons' KEY = VALUE configuration files (mfsmaster.cfg, mfschunkserver.cfg, mfsmetalogger.cfg): the keys
 * each daemon knows (every key of Debian's moosefs 3.0.117 example files), the typed settings plus the `extra` map
 * turned into the file's lines, a parser of the current file, and which changed keys a reload cannot apply.
 *
 * Debian's units reload with SIGHUP (ExecReload=/bin/kill -HUP $MAINPID): the daemon re-reads its files
 * ("SIGHUP or reload forces mfsmaster to reload all configuration files", mfsmaster(8)). What it reads only when it
 * starts (its user, group, data directory, syslog name, memory locking, nice level, umask, malloc arenas, OOM
 * killer) takes a restart.
 */
import { fileURLToPath } from 'node:url';
import { renderTemplate, type Rendered } from '../../lib/template.ts';
import { Secret } from '../../lib/secret.ts';

export type Daemon = 'mfsmaster' | 'mfschunkserver' | 'mfsmetalogger';

const COMMON = ['WORKING_USER', 'WORKING_GROUP', 'SYSLOG_IDENT', 'LOCK_MEMORY', 'LIMIT_GLIBC_MALLOC_ARENAS', 'DISABLE_OOM_KILLER', 'NICE_LEVEL', 'FILE_UMASK', 'DATA_PATH'];

/** The settings of each file, as Debian's moosefs 3.0.117 examples list them (/usr/share/doc/moosefs-*\/examples). */
export const CFG_KEYS: Readonly<Record<Daemon, readonly string[]>> = {
  mfsmaster: [
    ...COMMON,
    ...['EXPORTS_FILENAME', 'TOPOLOGY_FILENAME', 'BACK_LOGS', 'METADATA_SAVE_FREQ', 'BACK_META_KEEP_PREVIOUS', 'CHANGELOG_PRESERVE_SECONDS', 'CHANGELOG_SAVE_MODE'],
    ...['MISSING_LOG_CAPACITY', 'MATOML_LISTEN_HOST', 'MATOML_LISTEN_PORT', 'MATOCS_LISTEN_HOST', 'MATOCS_LISTEN_PORT', 'MATOCS_TIMEOUT', 'AUTH_CODE'],
    ...['REMAP_BITS', 'REMAP_SOURCE_IP_CLASS', 'REMAP_DESTINATION_IP_CLASS', 'REPLICATIONS_DELAY_INIT', 'REPLICATIONS_RESPECT_TOPOLOGY', 'CREATIONS_RESPECT_TOPOLOGY'],
    ...['CHUNKS_UNIQUE_MODE', 'CHUNKS_LOOP_MAX_CPS', 'CHUNKS_LOOP_MIN_TIME', 'CHUNKS_SOFT_DEL_LIMIT', 'CHUNKS_HARD_DEL_LIMIT', 'CHUNKS_WRITE_REP_LIMIT', 'CHUNKS_READ_REP_LIMIT'],
    ...['CS_HEAVY_LOAD_THRESHOLD', 'CS_HEAVY_LOAD_RATIO_THRESHOLD', 'CS_HEAVY_LOAD_GRACE_PERIOD', 'ACCEPTABLE_PERCENTAGE_DIFFERENCE', 'PRIORITY_QUEUES_LENGTH'],
    ...['CS_MAINTENANCE_MODE_TIMEOUT', 'CS_TEMP_MAINTENANCE_MODE_TIMEOUT', 'CS_DAYS_TO_REMOVE_UNUSED', 'MATOCL_LISTEN_HOST', 'MATOCL_LISTEN_PORT', 'SESSION_SUSTAIN_TIME'],
    ...['QUOTA_DEFAULT_GRACE_PERIOD', 'ATIME_MODE', 'RESERVE_SPACE', 'MAX_ALLOWED_HARD_LINKS', 'INODE_REUSE_DELAY'],
  ],
  mfschunkserver: [
    ...COMMON,
    ...['HDD_CONF_FILENAME', 'HDD_TEST_SPEED', 'HDD_MIN_TEST_INTERVAL', 'HDD_FADVISE_MIN_TIME', 'HDD_LEAVE_SPACE_DEFAULT', 'HDD_REBALANCE_UTILIZATION'],
    ...['HDD_HIGH_SPEED_REBALANCE_LIMIT', 'HDD_ERROR_TOLERANCE_COUNT', 'HDD_ERROR_TOLERANCE_PERIOD', 'HDD_FSYNC_BEFORE_CLOSE', 'HDD_SPARSIFY_ON_WRITE', 'HDD_RR_CHUNK_COUNT'],
    ...['HDD_KEEP_DUPLICATES_HOURS', 'ALLOW_STARTING_WITH_INVALID_DISKS', 'WORKERS_MAX', 'WORKERS_MAX_IDLE', 'LABELS', 'BIND_HOST', 'MASTER_HOST', 'MASTER_PORT'],
    ...['MASTER_TIMEOUT', 'MASTER_RECONNECTION_DELAY', 'AUTH_CODE', 'CHUNKS_PER_REGISTER_PACKET', 'CSSERV_LISTEN_HOST', 'CSSERV_LISTEN_PORT'],
  ],
  mfsmetalogger: [...COMMON, 'BACK_LOGS', 'BACK_META_KEEP_PREVIOUS', 'META_DOWNLOAD_FREQ', 'MASTER_RECONNECTION_DELAY', 'BIND_HOST', 'MASTER_HOST', 'MASTER_PORT', 'MASTER_TIMEOUT'],
};

/** Keys a daemon reads only when it starts: a change of one of them takes a restart, not a reload. */
export const RESTART_KEYS: ReadonlySet<string> = new Set(COMMON);

/** Keys the module sets itself (a path it owns): not accepted in `extra`. */
export const MANAGED_KEYS: ReadonlySet<string> = new Set(['EXPORTS_FILENAME', 'HDD_CONF_FILENAME']);

/** A value on one line, without #, control characters, or blanks at either end (the daemons' parser trims them). */
export const VALUE_PATTERN = '^[^\\s#\\x00-\\x1f\\x7f]([^#\\x00-\\x1f\\x7f]*[^\\s#\\x00-\\x1f\\x7f])?$';
/** A size as MooseFS reads it: [0-9]*(.[0-9]*)?([kMGTPE]|[KMGTPE]i)?B? (mfshdd.cfg(5)). */
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]*)?([kMGTPE]|[KMGTPE]i)?B?$';
/** A host name or IPv4 address (MooseFS 3.0 speaks IPv4 only). */
export const HOST_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$';
/** An absolute path without blanks, quotes, % or . and .. components (it also goes into unit files). */
export const PATH_PATTERN = '^/(?!(.*/)?\\.\\.?(/|$))([A-Za-z0-9._+@:-]+/?)*$';

export type CfgValue = string | number | Secret;

export interface CfgEntry {
  readonly key: string;
  readonly value: CfgValue;
}

/** Schema of `extra`: KEY -> value, keys in capitals (which keys the daemon knows is checked by cfgEntries). */
export function extraSchema(file: string) {
  return {
    type: 'object',
    propertyNames: { pattern: '^[A-Z][A-Z0-9_]*$' },
    additionalProperties: { anyOf: [{ type: 'string', pattern: VALUE_PATTERN }, { type: 'number' }] },
    description: `Other settings of ${file}: KEY (in capitals, one the daemon knows) -> value. A key also given by a typed param is an error.`,
  };
}

/** The schema properties every daemon shares. */
export function daemonSchema(file: string, unit: string, files = file) {
  return {
    workingUser: { type: 'string', pattern: '^[a-z_][a-z0-9_-]*$', description: `WORKING_USER: the user the daemon runs as and owns its files (default mfs).` },
    workingGroup: { type: 'string', pattern: '^[a-z_][a-z0-9_-]*$', description: `WORKING_GROUP (default mfs).` },
    dataPath: { type: 'string', pattern: PATH_PATTERN, description: `DATA_PATH: the daemon's data directory (default /var/lib/mfs); created and owned by the working user.` },
    extra: extraSchema(file),
    restart: {
      type: 'boolean',
      default: true,
      description: `Apply a changed ${files} in the same change: systemctl reload ${unit} (SIGHUP: the daemon re-reads its files), or restart when a key read only at start changed (WORKING_USER, WORKING_GROUP, DATA_PATH, ...). false: only write it and notify a handler, e.g. service.task('reload ${unit.replace(/\.service$/, '')}', { name: '${unit}', state: 'reloaded' }) (state: 'restarted' for those keys).`,
    },
  };
}

/**
 * The lines of a file: the typed settings (in the order given), then `extra` sorted by key. An unknown key, a key
 * the module owns, or a key given twice is an error naming it.
 */
export function cfgEntries(daemon: Daemon, typed: readonly (readonly [string, CfgValue | undefined])[], extra: Readonly<Record<string, string | number>> = {}): CfgEntry[] {
  const known = new Set(CFG_KEYS[daemon]);
  const entries: CfgEntry[] = typed.filter((t): t is readonly [string, CfgValue] => t[1] !== undefined).map(([key, value]) => ({ key, value }));
  const typedKeys = new Set(entries.map((e) => e.key));
  for (const key of Object.keys(extra).sort()) {
    if (!known.has(key)) throw new Error(`extra.${key} is not a setting of ${daemon}.cfg (the keys of MooseFS 3.0.117: ${CFG_KEYS[daemon].join(', ')})`);
    if (MANAGED_KEYS.has(key)) throw new Error(`extra.${key}: the module sets ${key} itself`);
    if (typedKeys.has(key)) throw new Error(`extra.${key} is also given by a typed param: give it once`);
    entries.push({ key, value: extra[key] as string | number });
  }
  return entries;
}

/** The active settings of a KEY = VALUE file (comments and blank lines skipped; the last one of a key wins). */
export function parseCfg(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    settings.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return settings;
}

const reveal = (v: CfgValue): string => (v instanceof Secret ? v.reveal() : String(v));

/** The keys whose value differs between the current file (null: none) and the wanted entries. */
export function changedKeys(current: string | null, entries: readonly CfgEntry[]): string[] {
  const old = parseCfg(current ?? '');
  const wanted = new Map(entries.map((e) => [e.key, reveal(e.value)]));
  return [...new Set([...old.keys(), ...wanted.keys()])].filter((k) => old.get(k) !== wanted.get(k)).sort();
}

/** How a running daemon takes the new file: a reload, unless a key read only at start changed. */
export function applyBy(keys: readonly string[]): 'reload' | 'restart' {
  return keys.some((k) => RESTART_KEYS.has(k)) ? 'restart' : 'reload';
}

/** The current file's text for a diff, with AUTH_CODE masked (an old code is not a registered secret). */
export function maskCfg(text: string): string {
  return text.replace(/^(\s*AUTH_CODE\s*=\s*)\S.*$/gm, '$1***');
}

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Render templates/NAME.hbs of the project (secrets revealed in content, *** in display). */
export function render(name: string, vars: Readonly<Record<string, unknown>>): Rendered {
  return renderTemplate(name, vars, { root: ROOT });
}

/** Render a daemon's file (templates/mfsmaster.cfg.hbs, ...). */
export function renderCfg(daemon: Daemon, entries: readonly CfgEntry[]): Rendered {
  return render(`${daemon}.cfg`, { settings: entries });
}
