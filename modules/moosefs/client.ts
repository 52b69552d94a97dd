/**
 * moosefs_client: a MooseFS path mounted with mfsmount at a mount point, now and at boot, by a systemd mount unit
 * (/etc/systemd/system/NAME.mount, NAME from the mount point as systemd-escape --path makes it).
 *
 * mfsmount(8) (FSTAB) has Linux mount MooseFS from /etc/fstab as `mfsmount MOUNTPOINT fuse OPTIONS`, which is also
 * Debian's README: the source is the program, mount.fuse (package fuse3) runs `mfsmount MOUNTPOINT -o OPTIONS` and
 * drops _netdev. The unit says the same (What=mfsmount, Type=fuse) with mfsmaster=, mfsport=, mfssubfolder= and
 * _netdev, ordered after network-online.target and wanted by remote-fs.target.
 *
 * gather is one round trip: the packages, the unit file, `systemctl show` of the unit, findmnt of the mount point.
 * A FUSE mount already there from another master, or mounted by an older version of the unit, is remounted: that
 * cuts off whoever uses it, so the change is destructive (refused unless force). Something else mounted there is an
 * error. A mount made by hand from the right master is adopted as it is.
 */
import { cmd, sh } from '../../lib/command.ts';
import { defineModule, exec, type Change } from '../../lib/module.ts';
import type { Rendered } from '../../lib/template.ts';
import { planContent, type FileContentFacts } from '../copy.ts';
import type { ServiceFacts } from '../service.ts';
import { parseFindmnt } from '../systemd_mount.ts';
import { normalizePath, unitName, UNIT_DIR, type Mounted } from '../systemd_mount/plan.ts';
import { HOST_PATTERN, PATH_PATTERN, render } from './cfg.ts';
import { planService } from './daemon.ts';
import { gatherScript, parseGathered } from './gather.ts';

export interface MoosefsClientParams {
  where: string;
  masterHost: string;
  masterPort?: number;
  subfolder?: string;
  options?: string[];
  after?: string[];
}

export interface MoosefsClientFacts {
  readonly unitFile: FileContentFacts;
  readonly service: ServiceFacts;
  readonly mounted: Mounted | null;
}

export interface MoosefsClientOutput {
  readonly unit: string;
  readonly where: string;
  readonly mounted: Mounted | null;
}

const OWN_OPTIONS = /^(mfsmaster|mfsport|mfssubfolder|mfspassword|mfsmd5pass|_netdev)(=|$)/;

/** The mount options of the unit: rw unless ro is given, the master, port and subfolder, _netdev, then the rest. */
export function mountOptions(p: MoosefsClientParams): string[] {
  const extra = p.options ?? [];
  const own = extra.find((o) => OWN_OPTIONS.test(o));
  if (own !== undefined) throw new Error(`moosefs_client ${p.where}: option ${own} is set by the module (masterHost, masterPort, subfolder; passwords are not supported)`);
  return [...(extra.includes('ro') || extra.includes('rw') ? [] : ['rw']), `mfsmaster=${p.masterHost}`, `mfsport=${p.masterPort ?? 9421}`, `mfssubfolder=${p.subfolder ?? '/'}`, '_netdev', ...extra];
}

export function renderMountUnit(p: MoosefsClientParams): Rendered {
  return render('mfsmount.mount', { master: `${p.masterHost}:${p.masterPort ?? 9421}`, subfolder: p.subfolder ?? '/', where: normalizePath(p.where), options: mountOptions(p).join(','), after: p.after ?? [] });
}

/** The master an mfsmount mount comes from, as its source shows it (HOST:PORT[/PATH], or mfs#HOST:PORT): null if not readable. */
export function sourceMaster(source: string): string | null {
  const m = /^(?:mfs(?:meta)?#)?([^#/]+):(\d+)(?:\/|$)/.exec(source);
  return m === null ? null : `${m[1] ?? ''}:${m[2] ?? ''}`;
}

const mountSection = (text: string): string => /^\[Mount\]\n([^[]*)/m.exec(text)?.[1]?.trim() ?? '';

export function planClient(p: MoosefsClientParams, f: MoosefsClientFacts): Change[] {
  const where = normalizePath(p.where);
  const unit = unitName(where);
  const path = `${UNIT_DIR}/${unit}`;
  const s = f.service;
  if (s.loadState === 'masked' || s.unitFileState === 'masked') throw new Error(`${unit} is masked: unmask it first`);
  const rendered = renderMountUnit(p);
  const changes: Change[] = planContent({ path, content: Buffer.from(rendered.content), mode: '0644', owner: 'root', group: 'root' }, f.unitFile).map((c) =>
    c.steps.some((st) => st.kind === 'put') ? { ...c, summary: `${c.summary}; daemon-reload`, steps: [...c.steps, exec(cmd('systemctl', 'daemon-reload'))] } : c,
  );
  const m = f.mounted;
  let mounted = m !== null;
  if (m !== null) {
    if (!/^fuse(\.|$)/.test(m.fstype)) throw new Error(`${where} has ${m.source} (${m.fstype}) mounted, not MooseFS: unmount it first, or mount MooseFS elsewhere`);
    const master = `${p.masterHost}:${p.masterPort ?? 9421}`;
    const from = sourceMaster(m.source);
    const old = f.unitFile.content === null ? null : f.unitFile.content.toString('utf8');
    const why = from !== null && from !== master ? `it is mounted from ${from}, not ${master}` : old !== null && mountSection(old) !== mountSection(rendered.content) ? 'its unit mounted it with other settings' : null;
    if (why !== null) {
      changes.push({
        summary: `remount ${where} from ${master}${p.subfolder && p.subfolder !== '/' ? `:${p.subfolder}` : ''} (${why}): systemctl restart ${unit}`,
        steps: [exec(cmd('systemctl', 'restart', unit))],
        destructive: `${where} has ${m.source} (${m.fstype}) mounted: unmounting it cuts off whoever uses it (their open files fail)`,
      });
      mounted = true;
    }
  }
  return [...changes, ...planService(unit, s, mounted, ` (mount ${p.masterHost}:${p.subfolder ?? '/'} on ${where})`)];
}

export function clientGatherScript(p: MoosefsClientParams) {
  const where = normalizePath(p.where);
  return gatherScript({
    needs: [
      { pkg: 'moosefs-client', program: 'mfsmount' },
      { pkg: 'fuse3', path: '/sbin/mount.fuse' },
    ],
    files: [`${UNIT_DIR}/${unitName(where)}`],
    unit: unitName(where),
    more: [sh`sanbook_run findmnt findmnt -J -o TARGET,SOURCE,FSTYPE,OPTIONS ${where}`],
  });
}

export function parseClientGather(stdout: string, p: MoosefsClientParams, host: string): MoosefsClientFacts {
  const where = normalizePath(p.where);
  const g = parseGathered(stdout, 'moosefs_client', host, unitName(where));
  const fm = g.section('findmnt');
  return { unitFile: g.file(`${UNIT_DIR}/${unitName(where)}`), service: g.service, mounted: parseFindmnt(fm.stdout, fm.exitCode, where, fm.stderr) };
}

const UNIT = { type: 'string', pattern: '^[A-Za-z0-9:_.\\\\@-]+\\.(service|socket|target|mount|automount|device|swap|path|timer|slice)$' };

export const moosefsClient = defineModule<MoosefsClientParams, MoosefsClientFacts, MoosefsClientOutput>({
  name: 'moosefs_client',
  description: 'A MooseFS path mounted with mfsmount at a mount point, now and at boot (a systemd mount unit: mfsmount of type fuse, _netdev, after the network); a remount that cuts off users is refused unless force.',
  examples: [{ title: 'The whole filesystem of the master at 10.3.1.100 on /mnt/mfs', params: { where: '/mnt/mfs', masterHost: '10.3.1.100' } }],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['where', 'masterHost'],
    properties: {
      where: { type: 'string', pattern: PATH_PATTERN, minLength: 2, description: 'The mount point (created by systemd when missing); the unit is named after it: /mnt/mfs -> mnt-mfs.mount.' },
      masterHost: { type: 'string', pattern: HOST_PATTERN, description: 'mfsmaster=: the master\'s address or name.' },
      masterPort: { type: 'integer', minimum: 1, maximum: 65535, default: 9421, description: 'mfsport=: the master\'s port for clients.' },
      subfolder: { type: 'string', pattern: PATH_PATTERN, default: '/', description: 'mfssubfolder=: the MooseFS directory mounted (/ for the whole filesystem); the master\'s exports must allow it.' },
      options: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z0-9_.]+(=[^\\s,%#\\x00-\\x1f\\x7f]+)?$' }, description: 'More mount options (ro, mfsdelayedinit, mfscachemode=..., ...); rw is added unless ro or rw is given.' },
      after: { type: 'array', uniqueItems: true, items: UNIT, description: 'Units the mount starts after, besides network-online.target (e.g. moosefs-master.service on the master itself).' },
    },
  },
  async gather(conn, params, ctx) {
    if (!ctx.facts.systemd) throw new Error(`moosefs_client: systemd is not running on ${ctx.host}`);
    const r = await conn.exec(clientGatherScript(params));
    if (r.exitCode !== 0) throw new Error(`moosefs_client: reading the mount ${params.where} failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseClientGather(r.stdout, params, ctx.host);
  },
  plan: planClient,
  output: (p, f) => ({ unit: unitName(p.where), where: normalizePath(p.where), mounted: f.mounted }),
});
