/**
 * The verify play of playbooks/san.ts as a module: it plans nothing when the network works and fails with a plain
 * message naming the host and what is missing when it does not.
 *
 * chunk hosts: exactly one multipath map per storage host, named by its alias, with the WWID of that host's LUN
 *   and every path active (one per storage address), and XFS from that map mounted on its mount point and
 *   readable (a filesystem that shut down after I/O errors stays mounted, but its directory gives EIO).
 * master: every chunkserver connected (mfscli), and a probe file written on the MooseFS client mount, read back
 *   identical and removed (the one write this play makes; in check mode too: it leaves nothing behind).
 */
import { sh } from '../../lib/command.ts';
import { defineModule } from '../../lib/module.ts';
import { parseMfscli, parseMapsJson, type MfscliReport, type MultipathMap } from '../../modules/index.ts';
import { SECTION_FUNCTION, sectionOf, splitSections } from '../../modules/blockdev.ts';

export interface ChunkVolume {
  readonly alias: string;
  readonly wwid: string;
  readonly mountPoint: string;
  readonly target: string;
  readonly storageHost: string;
  /** The storage host's targetcli result lists this target with portals. */
  readonly exported: boolean;
  /** Paths expected: one per portal of the target. */
  readonly paths: number;
}

export type SanVerifyParams =
  | { readonly role: 'chunk'; readonly volumes: readonly ChunkVolume[] }
  | { readonly role: 'master'; readonly masterHost: string; readonly chunkservers: number; readonly mount: string };

interface Mount {
  readonly target: string;
  readonly source: string;
  readonly fstype: string;
}

export interface SanVerifyFacts {
  readonly host: string;
  readonly maps: readonly MultipathMap[];
  readonly mounts: readonly Mount[];
  /** chunk: each volume's mount point that could not be listed, with the error (mount point -> stderr). */
  readonly unreadable: Readonly<Record<string, string>>;
  readonly mfs: MfscliReport | null;
  /** The probe file: written and read back the same (null: not tried). */
  readonly probe: { readonly ok: boolean; readonly detail: string } | null;
}

const PROBE_BYTES = 4 * 1024 * 1024;

function chunkProblems(p: Extract<SanVerifyParams, { role: 'chunk' }>, f: SanVerifyFacts): string[] {
  const problems: string[] = [];
  const extra = f.maps.filter((m) => !p.volumes.some((v) => v.alias === m.name));
  if (extra.length > 0) problems.push(`unexpected multipath maps ${extra.map((m) => `${m.name} (${m.wwid})`).join(', ')}`);
  for (const v of p.volumes) {
    if (!v.exported) problems.push(`${v.storageHost} does not export ${v.target}`);
    const m = f.maps.find((x) => x.name === v.alias);
    if (!m) {
      problems.push(`no multipath map ${v.alias} (the LUN of ${v.target} on ${v.storageHost}, WWID ${v.wwid})`);
      continue;
    }
    if (m.wwid !== v.wwid) problems.push(`map ${v.alias} has WWID ${m.wwid}, not ${v.wwid} (the LUN of ${v.storageHost})`);
    const active = m.paths.filter((x) => x.state === 'active' && x.checker === 'ready').length;
    if (m.paths.length !== v.paths || active !== v.paths) problems.push(`map ${v.alias} has ${active} active paths of ${m.paths.length}, ${v.paths} wanted`);
    const mount = f.mounts.find((x) => x.target === v.mountPoint);
    if (!mount) problems.push(`nothing is mounted on ${v.mountPoint}`);
    else {
      if (mount.fstype !== 'xfs') problems.push(`${v.mountPoint} is ${mount.fstype}, not xfs`);
      if (!mount.source.startsWith(`/dev/mapper/${v.alias}-`)) problems.push(`${v.mountPoint} is mounted from ${mount.source}, not a partition of /dev/mapper/${v.alias}`);
      const err = f.unreadable[v.mountPoint];
      if (err !== undefined) problems.push(`${v.mountPoint} cannot be read (${err}): the filesystem may have shut down after I/O errors (see dmesg)`);
    }
  }
  return problems;
}

function masterProblems(p: Extract<SanVerifyParams, { role: 'master' }>, f: SanVerifyFacts): string[] {
  const problems: string[] = [];
  if (!f.mfs || f.mfs.masterError) problems.push(`no MooseFS master answers at ${p.masterHost}${f.mfs?.masterError ? ` (${f.mfs.masterError})` : ''}`);
  else if (f.mfs.chunkservers.length !== p.chunkservers) {
    problems.push(`${f.mfs.chunkservers.length} chunkservers connected (${f.mfs.chunkservers.map((c) => c.host).join(', ') || 'none'}), ${p.chunkservers} wanted`);
  }
  if (!f.probe?.ok) problems.push(`the MooseFS mount ${p.mount}: ${f.probe?.detail ?? 'not checked'}`);
  return problems;
}

export const sanVerify = defineModule<SanVerifyParams, SanVerifyFacts, SanVerifyFacts>({
  name: 'san_verify',
  description: "playbooks/san.ts's verify play: multipath maps, paths and XFS mounts on the chunk hosts; MooseFS chunkservers and a probe file on the master.",
  schema: {
    type: 'object',
    required: ['role'],
    properties: {
      role: { enum: ['chunk', 'master'], description: 'What the host is checked for.' },
      volumes: { type: 'array', description: 'chunk: the volumes it must have.' },
      masterHost: { type: 'string', description: 'master: the address mfscli asks.' },
      chunkservers: { type: 'integer', minimum: 1, description: 'master: how many chunkservers must be connected.' },
      mount: { type: 'string', pattern: '^/', description: 'master: the MooseFS client mount to probe.' },
    },
  },
  async gather(conn, p, ctx) {
    const script =
      p.role === 'chunk'
        ? sh`${SECTION_FUNCTION}
sanbook_run maps multipathd show maps json
sanbook_run mounts findmnt -J -o TARGET,SOURCE,FSTYPE
# Listed whether mounted or not (findmnt says which): on an XFS that shut down even stat fails (so does
# mountpoint -q), and only the listing tells.
i=0
for mp in ${p.volumes.map((v) => v.mountPoint)}; do
  sanbook_run "read$i" ls -A -- "$mp"
  i=$((i + 1))
done
:`
        : sh`${SECTION_FUNCTION}
sanbook_run mfs mfscli -H ${p.masterHost} -p -SCS
probe() {
  f=${p.mount}/.sanbook-verify-$$
  head -c ${PROBE_BYTES} /dev/urandom > /run/sanbook-verify-$$ || return 1
  cp /run/sanbook-verify-$$ "$f" && sync -f "$f" && echo 3 > /proc/sys/vm/drop_caches
  if cmp -s /run/sanbook-verify-$$ "$f"; then echo same; else echo differs; fi
  rm -f -- "$f" /run/sanbook-verify-$$
}
if mountpoint -q ${p.mount}; then sanbook_run probe probe; else echo 'not mounted' | sanbook_run probe cat; fi
:`;
    const r = await conn.exec(script);
    const sections = splitSections(r.stdout);
    if (p.role === 'chunk') {
      const maps = sectionOf(sections, 'maps', 'san_verify');
      const mounts = sectionOf(sections, 'mounts', 'san_verify');
      const doc = JSON.parse(mounts.stdout || '{"filesystems":[]}') as { filesystems?: { target: string; source: string; fstype: string; children?: unknown[] }[] };
      const flat: Mount[] = [];
      const walk = (list: readonly { target: string; source: string; fstype: string; children?: unknown[] }[]): void => {
        for (const m of list) {
          flat.push({ target: m.target, source: m.source, fstype: m.fstype });
          walk((m.children ?? []) as { target: string; source: string; fstype: string; children?: unknown[] }[]);
        }
      };
      walk(doc.filesystems ?? []);
      const unreadable: Record<string, string> = {};
      p.volumes.forEach((v, i) => {
        const s = sections.find((x) => x.tag === `read${i}`);
        if (s && s.exitCode !== 0) unreadable[v.mountPoint] = s.stderr.trim().replace(/^ls: /, '') || `ls exit ${s.exitCode}`;
      });
      return { host: ctx.host, maps: maps.exitCode === 0 ? parseMapsJson(maps.stdout) : [], mounts: flat, unreadable, mfs: null, probe: null };
    }
    const mfs = sectionOf(sections, 'mfs', 'san_verify');
    const probe = sectionOf(sections, 'probe', 'san_verify');
    const said = probe.stdout.trim();
    return {
      host: ctx.host,
      maps: [],
      mounts: [],
      unreadable: {},
      mfs: parseMfscli(mfs.stdout),
      probe: { ok: probe.exitCode === 0 && said === 'same', detail: said === 'differs' ? `a ${PROBE_BYTES / 1048576} MiB file read back different` : said || probe.stderr.trim() || `probe exit ${probe.exitCode}` },
    };
  },
  plan(p, f) {
    const problems = p.role === 'chunk' ? chunkProblems(p, f) : masterProblems(p, f);
    if (problems.length > 0) throw new Error(`${f.host}: ${problems.join('; ')}`);
    return [];
  },
});
