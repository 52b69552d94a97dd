/**
 * moosefs_master: the MooseFS metadata server. /etc/mfs/mfsmaster.cfg and /etc/mfs/mfsexports.cfg rendered from
 * templates, DATA_PATH owned by the working user, the metadata of a new instance initialised from Debian's
 * metadata.mfs.empty on first start (never over existing metadata), moosefs-master enabled and started, and
 * reloaded (SIGHUP: it re-reads both files) or restarted in the same change as a file that changed.
 *
 * A running master keeps its metadata as metadata.mfs.back (metadata.mfs appears again when it stops), so "no
 * metadata.mfs" does not mean a new instance: the metadata is initialised only when DATA_PATH holds no
 * metadata.mfs*, no changelog and the master is stopped; the step itself refuses to write over anything.
 */
import { sh } from '../../lib/command.ts';
import { defineModule, exec, type Change } from '../../lib/module.ts';
import type { Secret } from '../../lib/secret.ts';
import type { FileContentFacts } from '../copy.ts';
import type { Stat } from '../file.ts';
import type { ServiceFacts } from '../service.ts';
import { applyBy, cfgEntries, changedKeys, daemonSchema, maskCfg, render, renderCfg, VALUE_PATTERN } from './cfg.ts';
import { checkUnit, fileMode, isRunning, planFiles, planOwnedDir, planService, withApply, type WantedFile } from './daemon.ts';
import { gatherScript, parseGathered } from './gather.ts';

export interface ExportEntry {
  network: string;
  path: string;
  options?: string[];
}

export interface DaemonParams {
  workingUser?: string;
  workingGroup?: string;
  dataPath?: string;
  extra?: Record<string, string | number>;
  restart?: boolean;
}

export interface MoosefsMasterParams extends DaemonParams {
  exports?: ExportEntry[];
  authCode?: Secret;
  minMemoryMiB?: number;
}

export interface MoosefsMasterFacts {
  readonly config: FileContentFacts;
  readonly exportsFile: FileContentFacts;
  readonly service: ServiceFacts;
  readonly dataDir: Stat | null;
  /** metadata.mfs*, changelog.* in DATA_PATH (metadata.mfs.empty left out). */
  readonly metadataFiles: readonly string[];
  /** /var/lib/mfs/metadata.mfs.empty exists (what a new instance starts from). */
  readonly emptyMetadata: boolean;
  readonly memTotalMiB: number | null;
}

export interface MoosefsMasterOutput {
  readonly unit: string;
  readonly activeState: string;
  readonly dataPath: string;
  readonly metadataFiles: readonly string[];
}

export const MASTER_UNIT = 'moosefs-master.service';
export const MASTER_CFG = '/etc/mfs/mfsmaster.cfg';
export const EXPORTS_CFG = '/etc/mfs/mfsexports.cfg';
export const EMPTY_METADATA = '/var/lib/mfs/metadata.mfs.empty';
export const DEFAULT_DATA = '/var/lib/mfs';
/** Debian's mfsexports.cfg: everything to everyone (read-write, root kept as root), and the meta filesystem. */
export const DEFAULT_EXPORTS: readonly ExportEntry[] = [
  { network: '*', path: '/', options: ['rw', 'alldirs', 'admin', 'maproot=0:0'] },
  { network: '*', path: '.', options: ['rw'] },
];

const IP = '[0-9]{1,3}(\\.[0-9]{1,3}){3}';

export const exportsSchema = {
  type: 'array',
  description: 'The lines of mfsexports.cfg, first match wins (default: Debian\'s, `* / rw,alldirs,admin,maproot=0:0` and `* . rw`).',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['network', 'path'],
    properties: {
      network: { type: 'string', pattern: `^(\\*|${IP}(/[0-9]{1,2}|/${IP}|-${IP})?)$`, description: 'Who may mount: *, an address, NET/BITS (10.3.1.0/24), NET/MASK or FROM-TO.' },
      path: { type: 'string', pattern: '^(\\.|/[^\\s#\\x00-\\x1f\\x7f]*)$', description: 'The exported directory (/ for the whole filesystem), or . for the meta filesystem (trash).' },
      options: {
        type: 'array',
        items: { type: 'string', pattern: '^[a-z]+(=[^\\s,#\\x00-\\x1f\\x7f]+)?$' },
        description: 'mfsexports.cfg(5) options: ro or rw, alldirs, admin, maproot=UID[:GID], mapall=..., mingoal=N, maxgoal=N, ... (default: ro).',
      },
    },
  },
};

export function exportLines(exports: readonly ExportEntry[]): { network: string; path: string; options: string }[] {
  return exports.map((e) => {
    const secret = (e.options ?? []).find((o) => /^(password|md5pass)=/.test(o));
    if (secret !== undefined) throw new Error(`export ${e.network} ${e.path}: ${secret.split('=')[0] ?? ''} is not supported (it would sit in clear in the file)`);
    return { network: e.network, path: e.path, options: (e.options ?? []).length > 0 ? (e.options ?? []).join(',') : 'ro' };
  });
}

/** A file name of DATA_PATH that belongs to existing metadata (anything but the empty template). */
export function isMetadataFile(name: string): boolean {
  return name !== 'metadata.mfs.empty' && /^(metadata\.mfs|changelog\.)/.test(name);
}

function masterFiles(p: MoosefsMasterParams, f: MoosefsMasterFacts): WantedFile[] {
  const group = p.workingGroup ?? 'mfs';
  const entries = cfgEntries('mfsmaster', [['WORKING_USER', p.workingUser], ['WORKING_GROUP', p.workingGroup], ['DATA_PATH', p.dataPath], ['AUTH_CODE', p.authCode]], p.extra ?? {});
  const cfgText = f.config.content === null ? null : f.config.content.toString('utf8');
  return [
    { path: MASTER_CFG, rendered: renderCfg('mfsmaster', entries), ...fileMode(p.authCode !== undefined, group), apply: applyBy(changedKeys(cfgText, entries)), mask: maskCfg },
    { path: EXPORTS_CFG, rendered: render('mfsexports.cfg', { exports: exportLines(p.exports ?? DEFAULT_EXPORTS) }), ...fileMode(false, group), apply: 'reload' },
  ];
}

/** Copy the empty metadata in place, refusing (exit 1) if any metadata appeared meanwhile: never over existing data. */
export function initMetadataCommand(dataPath: string, user: string, group: string) {
  return sh`d=${dataPath}; t="$d/metadata.mfs.sanbook-new"
for f in "$d"/metadata.mfs "$d"/metadata.mfs.back; do
  if [ -e "$f" ]; then echo "$f exists: the metadata is not initialised" >&2; exit 1; fi
done
cp -- ${EMPTY_METADATA} "$t" && chown ${`${user}:${group}`} -- "$t" && chmod 0640 -- "$t" && ln -- "$t" "$d/metadata.mfs"; rc=$?
rm -f -- "$t"; exit "$rc"`;
}

export function planMaster(p: MoosefsMasterParams, f: MoosefsMasterFacts): Change[] {
  checkUnit(f.service, MASTER_UNIT, 'moosefs-master');
  const min = p.minMemoryMiB ?? 768;
  if (min > 0 && f.memTotalMiB !== null && f.memTotalMiB < min) {
    throw new Error(`the MooseFS master needs memory (about 500 MiB resident when idle; it was OOM-killed on a 512 MiB host): this host has ${f.memTotalMiB} MiB (MemTotal), under minMemoryMiB ${min}. Give it more, or set minMemoryMiB: 0 to skip the check`);
  }
  const user = p.workingUser ?? 'mfs';
  const group = p.workingGroup ?? 'mfs';
  const data = p.dataPath ?? DEFAULT_DATA;
  const running = isRunning(f.service);
  const changes: Change[] = [...planOwnedDir(data, f.dataDir, user, group, 'data directory', true)];
  changes.push(...withApply(planFiles(masterFiles(p, f), (path) => (path === MASTER_CFG ? f.config : f.exportsFile)), MASTER_UNIT, f.service, p.restart !== false));
  let note = '';
  if (f.metadataFiles.length === 0 && !running) {
    if (!f.emptyMetadata) throw new Error(`${data} holds no metadata and there is no ${EMPTY_METADATA} to start a new instance from: is moosefs-master installed?`);
    changes.push({
      summary: `initialise the metadata of a new MooseFS instance: copy ${EMPTY_METADATA} to ${data}/metadata.mfs (${data} holds no metadata: first start)`,
      steps: [exec(initMetadataCommand(data, user, group))],
    });
  } else if (!running && !f.metadataFiles.includes('metadata.mfs') && f.metadataFiles.includes('metadata.mfs.back')) {
    note = `; ${data} has metadata.mfs.back but no metadata.mfs (the master did not stop cleanly): if it does not start, recover with mfsmaster -a`;
  }
  changes.push(...planService(MASTER_UNIT, f.service, running, note));
  return changes;
}

export function masterGatherScript(p: MoosefsMasterParams) {
  const data = p.dataPath ?? DEFAULT_DATA;
  return gatherScript({
    needs: [{ pkg: 'moosefs-master', program: 'mfsmaster' }],
    files: [MASTER_CFG, EXPORTS_CFG],
    stats: [data],
    unit: MASTER_UNIT,
    more: [
      sh`sanbook_meta() { for f in "$1"/metadata* "$1"/changelog*; do if [ -e "$f" ]; then printf '%s\\n' "\${f##*/}"; fi; done; :; }
sanbook_run metadata sanbook_meta ${data}
sanbook_run empty test -f ${EMPTY_METADATA}
sanbook_run memory grep MemTotal /proc/meminfo`,
    ],
  });
}

export function parseMasterGather(stdout: string, p: MoosefsMasterParams, host: string): MoosefsMasterFacts {
  const g = parseGathered(stdout, 'moosefs_master', host, MASTER_UNIT);
  const data = p.dataPath ?? DEFAULT_DATA;
  const mem = /MemTotal:\s+(\d+)\s*kB/.exec(g.section('memory').stdout);
  return {
    config: g.file(MASTER_CFG),
    exportsFile: g.file(EXPORTS_CFG),
    service: g.service,
    dataDir: g.stat(data),
    metadataFiles: g.section('metadata').stdout.split('\n').filter(isMetadataFile),
    emptyMetadata: g.section('empty').exitCode === 0,
    memTotalMiB: mem?.[1] === undefined ? null : Math.floor(Number(mem[1]) / 1024),
  };
}

export const moosefsMaster = defineModule<MoosefsMasterParams, MoosefsMasterFacts, MoosefsMasterOutput>({
  name: 'moosefs_master',
  description:
    'The MooseFS master: mfsmaster.cfg and mfsexports.cfg from templates, metadata initialised on first start (never over existing metadata), moosefs-master enabled, started, and reloaded or restarted in the same change as a changed file.',
  examples: [
    { title: "Seed 000's master: exports for the storage network only", params: { exports: [{ network: '10.3.1.0/24', path: '/', options: ['rw', 'alldirs', 'maproot=0'] }, { network: '10.3.1.0/24', path: '.', options: ['rw'] }] } },
    { title: 'Reloaded by a handler at the end of the play instead', params: { restart: false }, options: { notify: 'reload moosefs-master' } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      exports: exportsSchema,
      authCode: { secret: { pattern: VALUE_PATTERN }, description: 'AUTH_CODE: the password chunkservers must give (a secret; the file is then mode 0640 root:mfs).' },
      minMemoryMiB: { type: 'integer', minimum: 0, default: 768, description: 'Refuse a host with less memory (MemTotal) than this: the master uses ~500 MiB idle and was OOM-killed at 512 MiB. 0: no check.' },
      ...daemonSchema('mfsmaster.cfg', MASTER_UNIT, 'mfsmaster.cfg or mfsexports.cfg'),
    },
  },
  async gather(conn, params, ctx) {
    if (!ctx.facts.systemd) throw new Error(`moosefs_master: systemd is not running on ${ctx.host}`);
    const r = await conn.exec(masterGatherScript(params));
    if (r.exitCode !== 0) throw new Error(`moosefs_master: reading the master's state failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseMasterGather(r.stdout, params, ctx.host);
  },
  plan: planMaster,
  output: (params, f) => ({ unit: MASTER_UNIT, activeState: f.service.activeState, dataPath: params.dataPath ?? DEFAULT_DATA, metadataFiles: f.metadataFiles }),
});
