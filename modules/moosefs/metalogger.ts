/**
 * moosefs_metalogger: a MooseFS metalogger (a live copy of the master's metadata and changelogs, to recover a
 * lost master). mfsmetalogger.cfg from its template (MASTER_HOST, MASTER_PORT, ...), DATA_PATH owned by the working
 * user, moosefs-metalogger enabled, started, and reloaded or restarted in the same change as a changed file.
 */
import { defineModule, type Change } from '../../lib/module.ts';
import type { FileContentFacts } from '../copy.ts';
import type { Stat } from '../file.ts';
import type { ServiceFacts } from '../service.ts';
import { applyBy, cfgEntries, changedKeys, daemonSchema, HOST_PATTERN, maskCfg, renderCfg } from './cfg.ts';
import { checkUnit, fileMode, isRunning, planFiles, planOwnedDir, planService, withApply } from './daemon.ts';
import { gatherScript, parseGathered } from './gather.ts';
import { DEFAULT_DATA, type DaemonParams } from './master.ts';

export interface MoosefsMetaloggerParams extends DaemonParams {
  masterHost: string;
  masterPort?: number;
}

export interface MoosefsMetaloggerFacts {
  readonly config: FileContentFacts;
  readonly service: ServiceFacts;
  readonly dataDir: Stat | null;
}

export interface MoosefsMetaloggerOutput {
  readonly unit: string;
  readonly activeState: string;
  readonly dataPath: string;
}

export const METALOGGER_UNIT = 'moosefs-metalogger.service';
export const METALOGGER_CFG = '/etc/mfs/mfsmetalogger.cfg';

export function planMetalogger(p: MoosefsMetaloggerParams, f: MoosefsMetaloggerFacts): Change[] {
  checkUnit(f.service, METALOGGER_UNIT, 'moosefs-metalogger');
  const user = p.workingUser ?? 'mfs';
  const group = p.workingGroup ?? 'mfs';
  const entries = cfgEntries(
    'mfsmetalogger',
    [['WORKING_USER', p.workingUser], ['WORKING_GROUP', p.workingGroup], ['DATA_PATH', p.dataPath], ['MASTER_HOST', p.masterHost], ['MASTER_PORT', p.masterPort]],
    p.extra ?? {},
  );
  const current = f.config.content === null ? null : f.config.content.toString('utf8');
  const files = planFiles([{ path: METALOGGER_CFG, rendered: renderCfg('mfsmetalogger', entries), ...fileMode(false, group), apply: applyBy(changedKeys(current, entries)), mask: maskCfg }], () => f.config);
  return [
    ...planOwnedDir(p.dataPath ?? DEFAULT_DATA, f.dataDir, user, group, 'data directory', true),
    ...withApply(files, METALOGGER_UNIT, f.service, p.restart !== false),
    ...planService(METALOGGER_UNIT, f.service, isRunning(f.service)),
  ];
}

export function metaloggerGatherScript(p: MoosefsMetaloggerParams) {
  return gatherScript({ needs: [{ pkg: 'moosefs-metalogger', program: 'mfsmetalogger' }], files: [METALOGGER_CFG], stats: [p.dataPath ?? DEFAULT_DATA], unit: METALOGGER_UNIT });
}

export function parseMetaloggerGather(stdout: string, p: MoosefsMetaloggerParams, host: string): MoosefsMetaloggerFacts {
  const g = parseGathered(stdout, 'moosefs_metalogger', host, METALOGGER_UNIT);
  return { config: g.file(METALOGGER_CFG), service: g.service, dataDir: g.stat(p.dataPath ?? DEFAULT_DATA) };
}

export const moosefsMetalogger = defineModule<MoosefsMetaloggerParams, MoosefsMetaloggerFacts, MoosefsMetaloggerOutput>({
  name: 'moosefs_metalogger',
  description: 'A MooseFS metalogger: mfsmetalogger.cfg from its template, moosefs-metalogger enabled, started, and reloaded or restarted in the same change as a changed file.',
  examples: [{ title: 'A metalogger of the master at 10.3.1.100', params: { masterHost: '10.3.1.100' } }],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['masterHost'],
    properties: {
      masterHost: { type: 'string', pattern: HOST_PATTERN, description: 'MASTER_HOST: the master\'s address or name.' },
      masterPort: { type: 'integer', minimum: 1, maximum: 65535, description: 'MASTER_PORT: the master\'s port for metaloggers (default 9419).' },
      ...daemonSchema('mfsmetalogger.cfg', METALOGGER_UNIT),
    },
  },
  async gather(conn, params, ctx) {
    if (!ctx.facts.systemd) throw new Error(`moosefs_metalogger: systemd is not running on ${ctx.host}`);
    const r = await conn.exec(metaloggerGatherScript(params));
    if (r.exitCode !== 0) throw new Error(`moosefs_metalogger: reading the metalogger's state failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseMetaloggerGather(r.stdout, params, ctx.host);
  },
  plan: planMetalogger,
  output: (p, f) => ({ unit: METALOGGER_UNIT, activeState: f.service.activeState, dataPath: p.dataPath ?? DEFAULT_DATA }),
});
