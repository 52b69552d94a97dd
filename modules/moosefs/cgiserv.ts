/**
 * moosefs_cgiserv: the MooseFS web UI (mfscgiserv serving mfs.cgi of moosefs-cgi), on port 9425 by default.
 *
 * mfscgiserv answers 404 unless its document root is the one moosefs-cgi fills: its built-in default is
 * /usr/share/mfscgi, Debian installs /usr/share/moosefs-cgi. Debian's unit already runs
 * `mfscgiserv -f -H ${BIND_HOST} -P ${BIND_PORT} -R ${ROOT_PATH}` with ROOT_PATH=/usr/share/moosefs-cgi and reads
 * /etc/default/moosefs-cgiserv (EnvironmentFile): no drop-in is needed. The module writes that file with the three
 * values explicitly, checks that the root holds mfs.cgi, and restarts the service when the file changed (the values
 * are arguments of its command line).
 */
import { defineModule, type Change } from '../../lib/module.ts';
import type { FileContentFacts } from '../copy.ts';
import type { ServiceFacts } from '../service.ts';
import { HOST_PATTERN, PATH_PATTERN, render } from './cfg.ts';
import { checkUnit, fileMode, isRunning, planFiles, planService, withApply } from './daemon.ts';
import { gatherScript, parseGathered } from './gather.ts';

export interface MoosefsCgiservParams {
  bindHost?: string;
  port?: number;
  root?: string;
  masterHost?: string;
  restart?: boolean;
}

export interface MoosefsCgiservFacts {
  /** The inventory name of the host (for the output url). */
  readonly host: string;
  readonly defaults: FileContentFacts;
  readonly service: ServiceFacts;
}

export interface MoosefsCgiservOutput {
  readonly unit: string;
  readonly activeState: string;
  /** The page of the cluster: http://HOST:PORT/mfs.cgi?masterhost=MASTER (HOST: this host's name in the inventory). */
  readonly url: string;
}

export const CGISERV_UNIT = 'moosefs-cgiserv.service';
export const CGISERV_DEFAULTS = '/etc/default/moosefs-cgiserv';
export const CGI_ROOT = '/usr/share/moosefs-cgi';

export function planCgiserv(p: MoosefsCgiservParams, f: MoosefsCgiservFacts): Change[] {
  checkUnit(f.service, CGISERV_UNIT, 'moosefs-cgiserv');
  const rendered = render('mfscgiserv.default', { bindHost: p.bindHost ?? '0.0.0.0', port: p.port ?? 9425, root: p.root ?? CGI_ROOT });
  const files = planFiles([{ path: CGISERV_DEFAULTS, rendered, ...fileMode(false, 'root'), apply: 'restart' }], () => f.defaults);
  return [...withApply(files, CGISERV_UNIT, f.service, p.restart !== false, ' (the values are arguments of mfscgiserv)'), ...planService(CGISERV_UNIT, f.service, isRunning(f.service))];
}

export function cgiservGatherScript(p: MoosefsCgiservParams) {
  return gatherScript({
    needs: [
      { pkg: 'moosefs-cgiserv', program: 'mfscgiserv' },
      { pkg: 'moosefs-cgi', path: `${p.root ?? CGI_ROOT}/mfs.cgi` },
    ],
    files: [CGISERV_DEFAULTS],
    unit: CGISERV_UNIT,
  });
}

export function parseCgiservGather(stdout: string, host: string): MoosefsCgiservFacts {
  const g = parseGathered(stdout, 'moosefs_cgiserv', host, CGISERV_UNIT);
  return { host, defaults: g.file(CGISERV_DEFAULTS), service: g.service };
}

export function cgiUrl(host: string, p: MoosefsCgiservParams): string {
  const where = p.bindHost !== undefined && p.bindHost !== '0.0.0.0' ? p.bindHost : host;
  return `http://${where}:${p.port ?? 9425}/mfs.cgi${p.masterHost !== undefined ? `?masterhost=${p.masterHost}` : ''}`;
}

export const moosefsCgiserv = defineModule<MoosefsCgiservParams, MoosefsCgiservFacts, MoosefsCgiservOutput>({
  name: 'moosefs_cgiserv',
  description:
    'The MooseFS web UI: /etc/default/moosefs-cgiserv (listen address, port 9425, the moosefs-cgi document root without which mfscgiserv answers 404), moosefs-cgiserv enabled, started, and restarted when that file changed.',
  examples: [{ title: 'The web UI on the master, pointing at it', params: { masterHost: '10.3.1.100' } }],
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      bindHost: { type: 'string', pattern: HOST_PATTERN, default: '0.0.0.0', description: 'BIND_HOST: the address mfscgiserv listens on (0.0.0.0: all).' },
      port: { type: 'integer', minimum: 1, maximum: 65535, default: 9425, description: 'BIND_PORT: the port mfscgiserv listens on.' },
      root: { type: 'string', pattern: PATH_PATTERN, default: CGI_ROOT, description: 'ROOT_PATH: the document root, where moosefs-cgi installs mfs.cgi (it must hold mfs.cgi).' },
      masterHost: { type: 'string', pattern: HOST_PATTERN, description: 'The master the page shows (only in the output url: mfs.cgi?masterhost=...; the default is the name mfsmaster).' },
      restart: {
        type: 'boolean',
        default: true,
        description: 'Restart moosefs-cgiserv in the same change as a changed file. false: notify a handler (service.task(\'restart cgiserv\', { name: \'moosefs-cgiserv\', state: \'restarted\' })).',
      },
    },
  },
  async gather(conn, params, ctx) {
    if (!ctx.facts.systemd) throw new Error(`moosefs_cgiserv: systemd is not running on ${ctx.host}`);
    const r = await conn.exec(cgiservGatherScript(params));
    if (r.exitCode !== 0) throw new Error(`moosefs_cgiserv: reading the web UI's state failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseCgiservGather(r.stdout, ctx.host);
  },
  plan: planCgiserv,
  output: (p, f) => ({ unit: CGISERV_UNIT, activeState: f.service.activeState, url: cgiUrl(f.host, p) }),
});
