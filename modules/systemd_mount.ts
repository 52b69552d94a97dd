/**
 * systemd_mount: a filesystem mounted at boot and now by a systemd mount unit (/etc/systemd/system/NAME.mount,
 * NAME from the path as `systemd-escape --path` makes it), or by an /etc/fstab line (fstab: true).
 *
 * gather is one round trip and changes nothing: the unit file, /etc/fstab, `systemctl show` of the unit, what
 * findmnt shows mounted at the path (exit 1: nothing), the device node of that source and of `what`
 * (readlink -e; UUID=/LABEL= through their /dev/disk/by-* links) and blkid -p of the latter. So a wrong device
 * or type mounted there is seen; replacing it is destructive (see systemd_mount/plan.ts for why).
 *
 * For network storage (network: true, the default) the options get _netdev and the unit is ordered after the
 * network, remote-fs-pre.target (which open-iscsi's logins come before) and iscsid, and wanted by
 * remote-fs.target. A service that uses the mount (requiredBy) is ordered after it and requires it: a
 * MooseFS chunkserver then never holds the mount point busy before the mount, and stops with it.
 */
import { sh, type Command } from '../lib/command.ts';
import { defineModule } from '../lib/module.ts';
import { parseBlkid, SECTION_FUNCTION, sectionOf, splitSections, type Section } from './blockdev.ts';
import { parseSystemctlShow, showCommand } from './service.ts';
import { devicePath, normalizePath, planSystemdMount, unitName, UNIT_DIR, type Mounted, type SystemdMountFacts, type SystemdMountParams } from './systemd_mount/plan.ts';

export { planSystemdMount, unitName, deviceUnit, dropinPath, renderDropin, escapePath, normalizePath, devicePath, renderUnit, wanted, editFstab, fstabLine, fstabFields, type SystemdMountParams, type SystemdMountFacts, type Mounted } from './systemd_mount/plan.ts';

const PATH = '^/(?!.*/\\.\\.?(/|$))[^\\x00-\\x1f\\x7f]*$';
const UNIT = { type: 'string', pattern: '^[A-Za-z0-9:_.\\\\@-]+\\.(service|socket|target|mount|automount|device|swap|path|timer|slice)$' };
const units = (description: string) => ({ type: 'array', uniqueItems: true, items: UNIT, description });

/** One round trip; each part is a section of its own (see blockdev.ts). */
export function gatherScript(where: string, what: string | undefined): Command {
  const name = unitName(where);
  return sh`${SECTION_FUNCTION}
u=${`${UNIT_DIR}/${name}`}; w=${normalizePath(where)}; d=${what === undefined ? '' : devicePath(what)}
if [ -f "$u" ]; then sanbook_run unit cat -- "$u"; fi
if [ -f /etc/fstab ]; then sanbook_run fstab cat /etc/fstab; fi
sanbook_run show ${showCommand(name)}
sanbook_run findmnt findmnt -J -o TARGET,SOURCE,FSTYPE,OPTIONS ${normalizePath(where)}
src=$(findmnt -n -o SOURCE "$w" | tail -n 1)
if [ -n "$src" ]; then sanbook_run source readlink -e -- "$src"; fi
if [ -n "$d" ] && sanbook_run device readlink -e -- "$d"; then sanbook_run blkid blkid -p -o export "$(readlink -e -- "$d")"; fi
for f in ${UNIT_DIR}/*.device.d/${`sanbook-${name}.conf`}; do
  if [ -f "$f" ]; then sanbook_run dropin sh -c 'printf "%s\\n" "$1"; cat -- "$1"' sh "$f"; fi
done
:`;
}

/** Parse `findmnt -J -o TARGET,SOURCE,FSTYPE,OPTIONS WHERE`: the filesystem on top at where, null on exit 1. */
export function parseFindmnt(stdout: string, exitCode: number, where: string, stderr = ''): Mounted | null {
  if (exitCode === 1) return null;
  if (exitCode !== 0) throw new Error(`findmnt ${where} failed (exit ${exitCode})${stderr ? `: ${stderr}` : ''}`);
  const doc = JSON.parse(stdout) as { filesystems?: { target?: string; source?: string; fstype?: string; options?: string }[] };
  const top = (doc.filesystems ?? []).filter((f) => f.target === where).pop();
  return top ? { source: top.source ?? '', fstype: top.fstype ?? '', options: top.options ?? '' } : null;
}

export function parseGather(stdout: string, p: SystemdMountParams): SystemdMountFacts {
  const sections = splitSections(stdout);
  const ok = (tag: string): Section | undefined => sections.find((s) => s.tag === tag && s.exitCode === 0);
  const show = sectionOf(sections, 'show', 'systemd_mount');
  if (show.exitCode !== 0) throw new Error(`systemctl show failed: ${show.stderr || `exit ${show.exitCode}`}`);
  const fm = sectionOf(sections, 'findmnt', 'systemd_mount');
  const line = (s: Section | undefined) => s?.stdout.trim() || null;
  const blkid = sections.find((s) => s.tag === 'blkid');
  return {
    unitFile: ok('unit')?.stdout ?? null,
    fstab: ok('fstab')?.stdout ?? null,
    service: parseSystemctlShow(show.stdout, unitName(p.where)),
    mounted: parseFindmnt(fm.stdout, fm.exitCode, normalizePath(p.where), fm.stderr),
    mountedDevice: line(ok('source')),
    device: line(ok('device')),
    signature: blkid ? parseBlkid(blkid.stdout, blkid.exitCode, blkid.stderr) : null,
    dropins: Object.fromEntries(
      sections.filter((x) => x.tag === 'dropin' && x.exitCode === 0).map((x) => {
        const nl = x.stdout.indexOf('\n');
        return [x.stdout.slice(0, nl), x.stdout.slice(nl + 1)];
      }),
    ),
  };
}

/** What later tasks read: the unit, the device `what` is now, and what is mounted at where. */
export interface SystemdMountOutput {
  readonly unit: string;
  readonly where: string;
  readonly device: string | null;
  readonly mounted: Mounted | null;
}

export const systemdMount = defineModule<SystemdMountParams, SystemdMountFacts, SystemdMountOutput>({
  name: 'systemd_mount',
  description:
    'A filesystem mounted by a systemd mount unit (or an /etc/fstab line): _netdev and network ordering for iSCSI storage, services that need it ordered after it; a wrong device mounted there is replaced only with force.',
  examples: [
    {
      title: "Seed 000's chunk1: the XFS partition of the multipath map on /mnt/data_chunk1, before the chunkserver",
      params: { where: '/mnt/data_chunk1', what: '/dev/mapper/mpatha-part1', type: 'xfs', requiredBy: ['moosefs-chunkserver.service'] },
    },
    {
      title: 'Seed 001: by UUID in /etc/fstab with _netdev',
      params: { where: '/datab', what: 'UUID=74435bdf-f453-471f-aa85-ec5418d59cfd', type: 'xfs', fstab: true },
    },
    { title: 'No mount at /mnt/old any more: unmounted, unit disabled and removed', params: { where: '/mnt/old', state: 'absent' } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['where'],
    properties: {
      where: { type: 'string', pattern: PATH, minLength: 2, description: 'Mount point (absolute, no . or .. components); the unit is named after it: /mnt/data_chunk1 -> mnt-data_chunk1.mount.' },
      what: {
        type: 'string',
        pattern: '^(/[^\\x00-\\x1f\\x7f]+|UUID=[A-Fa-f0-9-]+|(LABEL|PARTLABEL)=[A-Za-z0-9_.-]+|PARTUUID=[A-Fa-f0-9-]+)$',
        description: 'The device: a path (/dev/mapper/mpatha-part1, /dev/disk/by-label/x), UUID=..., LABEL=..., PARTUUID=... or PARTLABEL=.... Required unless state is absent.',
      },
      type: { type: 'string', pattern: '^[a-z0-9_.]+$', description: 'Filesystem type (xfs, ext4, ...). Required unless state is absent; a mount of another type there is a wrong mount.' },
      options: { type: 'array', items: { type: 'string', pattern: '^[^\\s,\\x00-\\x1f]+$' }, description: 'Mount options (default: defaults); _netdev is added for network storage.' },
      network: { type: 'boolean', default: true, description: 'Network storage (iSCSI): _netdev, ordered after the network and iscsid, wanted by remote-fs.target.' },
      after: units('Units the mount starts after (default for network storage: network-online.target remote-fs-pre.target iscsid.service; none otherwise).'),
      wants: units('Units the mount pulls in (default for network storage: network-online.target; none otherwise).'),
      wantedBy: units('Targets that pull the mount in at boot (default: remote-fs.target for network storage, local-fs.target otherwise).'),
      requiredBy: units('Units that need the mount (moosefs-chunkserver.service): they require it and start after it, and stop with it.'),
      state: {
        enum: ['mounted', 'unmounted', 'absent'],
        default: 'mounted',
        description: 'mounted: unit written, enabled, started; unmounted: unit written, not mounted now; absent: unmounted, unit disabled and removed (or the fstab line).',
      },
      enabled: { type: 'boolean', default: true, description: 'Mount at boot (systemctl enable; fstab: without noauto).' },
      fstab: { type: 'boolean', default: false, description: 'An /etc/fstab line (by UUID) instead of a unit file; a unit file this module wrote before is removed, and the other way round.' },
      deviceTimeout: {
        anyOf: [{ type: 'integer', minimum: 1 }, { enum: ['infinity'] }],
        description:
          "How long systemd waits at boot for the device before it gives up on the mount and the units that require it (seconds, or 'infinity'; systemd's default is 90 s). A multipath map of iSCSI LUNs can take longer on a slow boot, or while its storage host boots too. A unit file's mount gets a drop-in of the device unit (JobRunningTimeoutSec=, what fstab's x-systemd.device-timeout= makes), the fstab form that option.",
      },
    },
  },
  async gather(conn, params, ctx) {
    if (!ctx.facts.systemd) throw new Error(`systemd_mount: systemd is not running on ${ctx.host}`);
    const r = await conn.exec(gatherScript(params.where, params.state === 'absent' ? undefined : params.what));
    if (r.exitCode !== 0) throw new Error(`reading the mount ${params.where} failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseGather(r.stdout, params);
  },
  plan: planSystemdMount,
  output: (params, facts) => ({ unit: unitName(params.where), where: normalizePath(params.where), device: facts.device, mounted: facts.mounted }),
});
