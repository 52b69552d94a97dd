/**
 * The verify play of playbooks/iscsi-boot.ts as a module, on a diskless client that is up: its root filesystem
 * has the UUID the playbook gave it and lives on a SCSI disk of an iSCSI session to its target on its portal, it is
 * writable, and iscsid runs (it recovers the session after a connection error). It
 * plans nothing when so, and fails with a plain message naming what differs when not.
 */
import { sh, type Command } from '../../lib/command.ts';
import { defineModule } from '../../lib/module.ts';
import { SECTION_FUNCTION, sectionOf, splitSections } from '../../modules/blockdev.ts';

export interface IscsiBootVerifyParams {
  readonly target: string;
  readonly portal: string;
  readonly uuid: string;
}

export interface IscsiBootVerifyFacts {
  readonly host: string;
  /** findmnt of /: the device and the filesystem's UUID. */
  readonly source: string;
  readonly uuid: string;
  /** The disk under the root partition, and the sysfs path of that disk (it names the iSCSI session). */
  readonly disk: string;
  readonly sysfsPath: string;
  /** The session the disk belongs to (null: the disk is on no iSCSI session), its target and portal. */
  readonly session: string | null;
  readonly targetName: string | null;
  readonly address: string | null;
  /** The root's mount options (rw, or ro: ext4's errors=remount-ro after I/O errors). */
  readonly rootOptions: string;
  /** systemctl is-active iscsid.service: without iscsid, the session under the root cannot recover from a connection error. */
  readonly iscsid: string;
}

/** The iSCSI session in a disk's sysfs path (/sys/devices/platform/host2/session1/target2:0:0/...), if any. */
export function sessionOf(sysfsPath: string): string | null {
  return /\/(session\d+)\//.exec(sysfsPath)?.[1] ?? null;
}

/** The gather script: the root's source and UUID, its disk, the disk's sysfs path, and that session's target and portal. */
export function verifyGatherCommand(): Command {
  return sh`${SECTION_FUNCTION}
sanbook_run root findmnt -n -o SOURCE,UUID /
sanbook_run options findmnt -n -o OPTIONS /
sanbook_run iscsid systemctl is-active iscsid.service
src=$(findmnt -n -o SOURCE /)
disk=$(lsblk -n -d -o PKNAME "$src" 2>/dev/null); [ -n "$disk" ] || disk=\${src#/dev/}
sanbook_run disk echo "$disk"
sanbook_run sysfs readlink -f "/sys/class/block/$disk"
s=$(readlink -f "/sys/class/block/$disk" | sed -n 's|.*/\\(session[0-9]*\\)/.*|\\1|p')
if [ -n "$s" ]; then
  sanbook_run target cat "/sys/class/iscsi_session/$s/targetname"
  sanbook_run address sh -c 'cat /sys/class/iscsi_connection/connection"$1":*/persistent_address' sh "\${s#session}"
fi
:`;
}

export function parseVerifyGather(stdout: string, host: string): IscsiBootVerifyFacts {
  const sections = splitSections(stdout);
  const get = (tag: string) => sectionOf(sections, tag, 'iscsi_boot_verify');
  const [source = '', uuid = ''] = get('root').stdout.trim().split(/\s+/);
  const sysfsPath = get('sysfs').stdout.trim();
  const opt = (tag: string) => {
    const x = sections.find((y) => y.tag === tag);
    return x && x.exitCode === 0 ? x.stdout.trim() : null;
  };
  return {
    host, source, uuid, disk: get('disk').stdout.trim(), sysfsPath, session: sessionOf(sysfsPath), targetName: opt('target'), address: opt('address'),
    rootOptions: get('options').stdout.trim(),
    // is-active prints the state and exits non-zero unless it is active: the state is what counts.
    iscsid: sections.find((x) => x.tag === 'iscsid')?.stdout.trim() || 'unknown',
  };
}

export function verifyProblems(p: IscsiBootVerifyParams, f: IscsiBootVerifyFacts): string[] {
  const problems: string[] = [];
  if (f.uuid !== p.uuid) problems.push(`the root filesystem (${f.source}) has UUID ${f.uuid || '(none)'}, not ${p.uuid}`);
  if (f.session === null) problems.push(`the root disk ${f.disk || '(unknown)'} is on no iSCSI session (${f.sysfsPath})`);
  else {
    if (f.targetName !== p.target) problems.push(`the root disk's session ${f.session} is to ${f.targetName ?? '(unknown)'}, not ${p.target}`);
    if (f.address !== p.portal) problems.push(`the root disk's session ${f.session} is on ${f.address ?? '(unknown)'}, not ${p.portal}`);
    if (f.iscsid !== 'active') problems.push(`iscsid is ${f.iscsid}: the session under the root cannot recover from a connection error`);
  }
  if (!f.rootOptions.split(',').includes('rw')) problems.push(`the root filesystem is mounted ${f.rootOptions || '(unknown options)'}: read-only (ext4 remounts it so after I/O errors)`);
  return problems;
}

export const iscsiBootVerify = defineModule<IscsiBootVerifyParams, IscsiBootVerifyFacts, IscsiBootVerifyFacts>({
  name: 'iscsi_boot_verify',
  description: "playbooks/iscsi-boot.ts's verify play: the client's root filesystem is the volume of its iSCSI target.",
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['target', 'portal', 'uuid'],
    properties: {
      target: { type: 'string', description: 'The IQN the root disk must come from.' },
      portal: { type: 'string', description: 'The address of the session.' },
      uuid: { type: 'string', description: "The root filesystem's UUID." },
    },
  },
  async gather(conn, _p, ctx) {
    return parseVerifyGather((await conn.exec(verifyGatherCommand())).stdout, ctx.host);
  },
  plan(p, f) {
    const problems = verifyProblems(p, f);
    if (problems.length > 0) throw new Error(`${f.host}: ${problems.join('; ')}`);
    return [];
  },
});
