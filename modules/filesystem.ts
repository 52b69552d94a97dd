/**
 * filesystem: an xfs or ext4 filesystem (with a label) on a block device.
 *
 * gather is one round trip: whether the device exists (a clear error naming it when not), then
 * `blkid -p -o export DEV` (low-level probe, not the cache; exit 2: nothing on the device).
 *
 * plan: nothing on the device -> mkfs (safe). The wanted type with the wanted label (or no label asked) ->
 * nothing to do. Anything else (another filesystem, another label, a RAID member, a partition table, several
 * signatures) -> a forced mkfs (-f / -F), marked destructive with the device, what is there and its label:
 * the runner refuses it unless the task says force.
 */
import { cmd, sh, type Command } from '../lib/command.ts';
import { defineModule, exec, type Change } from '../lib/module.ts';
import { SECTION_FUNCTION, describeSignature, parseBlkid, sectionOf, splitSections, type Signature } from './blockdev.ts';

export type FsType = 'xfs' | 'ext4';

export interface FilesystemParams {
  device: string;
  fstype: FsType;
  label?: string;
  options?: string[];
}

export interface FilesystemFacts {
  readonly device: string;
  /** What blkid -p finds on the device (null: nothing, or only the partition's own entry). */
  readonly signature: Signature | null;
}

export interface FilesystemOutput {
  device: string;
  fstype: string | null;
  label: string | null;
  uuid: string | null;
}

/** Longest label each mkfs accepts, in bytes (xfs: 12, ext4: 16). */
export const LABEL_MAX: Record<FsType, number> = { xfs: 12, ext4: 16 };
/** The flag that makes each mkfs write over an existing signature. */
const FORCE_FLAG: Record<FsType, string> = { xfs: '-f', ext4: '-F' };

export function gatherCommand(device: string): Command {
  return sh`${SECTION_FUNCTION}
d=${device}
sanbook_run exists test -b "$d" && sanbook_run blkid blkid -p -o export "$d"
:`;
}

/** Parse the gather script's output; throws when the device does not exist or blkid failed. */
export function parseFilesystemGather(stdout: string, device: string): FilesystemFacts {
  const sections = splitSections(stdout);
  const exists = sectionOf(sections, 'exists', `filesystem ${device}`);
  if (exists.exitCode !== 0) throw new Error(`${device} does not exist (not a block device)`);
  const blkid = sectionOf(sections, 'blkid', `filesystem ${device}`);
  return { device, signature: parseBlkid(blkid.stdout, blkid.exitCode, blkid.stderr) };
}

/** The checks the schema cannot express: the label's length for the type, no force flag in options. */
export function checkParams(p: FilesystemParams): void {
  if (p.label !== undefined && Buffer.byteLength(p.label) > LABEL_MAX[p.fstype]) {
    throw new Error(
      `filesystem ${p.device}: an ${p.fstype} label is at most ${LABEL_MAX[p.fstype]} bytes: ${JSON.stringify(p.label)} has ${Buffer.byteLength(p.label)}`,
    );
  }
  const bad = (p.options ?? []).find((o) => o === FORCE_FLAG[p.fstype] || o === '-L' || o.startsWith('-L'));
  if (bad !== undefined) {
    throw new Error(`filesystem ${p.device}: ${bad} is not an option here (force is the task's force: true; the label is the label param)`);
  }
}

export function mkfsCommand(p: FilesystemParams, force: boolean): Command {
  return cmd(
    `mkfs.${p.fstype}`,
    ...(force ? [FORCE_FLAG[p.fstype]] : []),
    ...(p.label !== undefined ? ['-L', p.label] : []),
    ...(p.options ?? []),
    p.device,
  );
}

export function planFilesystem(p: FilesystemParams, f: FilesystemFacts): Change[] {
  checkParams(p);
  const sig = f.signature;
  const labelled = p.label !== undefined ? ` labelled ${p.label}` : '';
  if (sig === null) {
    return [{ summary: `create an ${p.fstype} filesystem${labelled} on ${p.device}`, steps: [exec(mkfsCommand(p, false))] }];
  }
  const sameType = !sig.ambivalent && sig.ptType === null && sig.type === p.fstype;
  if (sameType && (p.label === undefined || (sig.label ?? '') === p.label)) return [];
  const reason = sameType ? `its label is ${sig.label ? JSON.stringify(sig.label) : 'empty'}, not ${JSON.stringify(p.label)}` : `mkfs.${p.fstype} erases it`;
  return [
    {
      summary: `create an ${p.fstype} filesystem${labelled} on ${p.device} (over ${describeSignature(sig)})`,
      steps: [exec(mkfsCommand(p, true))],
      destructive: `${p.device} holds ${describeSignature(sig)}: ${reason}`,
      diff: { label: p.device, before: describeSignature(sig), after: `an ${p.fstype} filesystem ${p.label !== undefined ? `labelled ${p.label}` : '(no label)'}` },
    },
  ];
}

export function filesystemOutput(p: FilesystemParams, f: FilesystemFacts): FilesystemOutput {
  const s = f.signature;
  return { device: p.device, fstype: s?.type ?? null, label: s?.label ?? null, uuid: s?.uuid ?? null };
}

export const filesystem = defineModule<FilesystemParams, FilesystemFacts, FilesystemOutput>({
  name: 'filesystem',
  description:
    'An xfs or ext4 filesystem on a block device, made with mkfs when the device holds nothing. Another filesystem, another label, a RAID member or a partition table on the device is destructive (a forced mkfs; needs force on the task). Output: {device, fstype, label, uuid}.',
  examples: [
    { title: 'XFS on the partition, labelled for the mount unit', params: { device: '/dev/mapper/mpatha-part1', fstype: 'xfs', label: 'chunk1data' } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['device', 'fstype'],
    properties: {
      device: { type: 'string', pattern: '^/dev/[^\\s]+$', description: 'The block device: /dev/sdb1, /dev/md0, /dev/mapper/mpatha-part1, /dev/disk/by-id/...' },
      fstype: { enum: ['xfs', 'ext4'], description: 'The filesystem type.' },
      label: {
        type: 'string',
        minLength: 1,
        maxLength: 16,
        pattern: '^[^\\x00-\\x1f/]+$',
        description: 'Filesystem label (xfs: at most 12 bytes, ext4: 16). When not given, any label is accepted and mkfs sets none.',
      },
      options: {
        type: 'array',
        items: { type: 'string' },
        description: 'Extra mkfs arguments, before the device (e.g. ["-m", "reflink=1"], ["-E", "lazy_itable_init=0"]).',
      },
    },
  },
  async gather(conn, params, ctx) {
    const r = await conn.exec(gatherCommand(params.device));
    try {
      return parseFilesystemGather(r.stdout, params.device);
    } catch (e) {
      throw new Error(`filesystem on ${ctx.host}: ${(e as Error).message}${r.exitCode !== 0 ? ` (${r.stderr.trim() || `exit ${r.exitCode}`})` : ''}`);
    }
  },
  plan: planFilesystem,
  output: filesystemOutput,
});
