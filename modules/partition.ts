/**
 * partition: a partition table (gpt or msdos) on a block device, holding the listed partitions.
 *
 * gather is one round trip (blockdev.ts sections): parted -m (exit 1 "unrecognised disk label" = no label),
 * blkid -p on the device (a whole-device filesystem or RAID superblock), lsblk -J (holders, mounts),
 * blockdev sizes, then for each partition (sysfs: /sys/class/block/DISK/DISKn, or a kpartx/parted dm map
 * whose dm uuid is partN-...) its node path, number and a blkid -p of what it holds.
 *
 * plan compares the wanted start/end, resolved against the device size, with parted's bytes, accepting a
 * difference up to the alignment grain (parted -a optimal moves positions to 1 MiB, or the optimal I/O size).
 * Anything that can lose data (a label over content, a partition moved or resized, a partition removed that
 * holds something) is destructive and names the device and what is on it.
 */
import { sh, type Command } from '../lib/command.ts';
import { defineModule } from '../lib/module.ts';
import { SECTION_FUNCTION, describeSignature, findNode, withArticle, parseBlkid, parseLsblk, parseParted, sectionOf, splitSections, usersOf } from './blockdev.ts';
import {
  MiB, POSITION_PATTERN, partitionOutput, planPartition, type PartitionFacts, type PartitionOutput, type PartitionParams,
} from './partition-plan.ts';

// ---------------------------------------------------------------- gather

export const LSBLK_COLUMNS = 'NAME,KNAME,PATH,SIZE,TYPE,FSTYPE,LABEL,UUID,PTTYPE,PARTLABEL,SERIAL,MOUNTPOINTS';

/**
 * The gather script: one section per tool (see blockdev.ts), then one `part KNAME PATH NUMBER` section per
 * partition (a blkid -p of it; the number is the kernel's, from sysfs or the dm uuid partN-...). `sysfs` is where the kernel lists block devices (a test points it elsewhere).
 */
export function gatherCommand(device: string, sysfs = '/sys/class/block'): Command {
  return sh`${SECTION_FUNCTION}
d=${device}
sanbook_run exists test -b "$d" && {
sanbook_run realpath readlink -f -- "$d"
sanbook_run size blockdev --getsize64 "$d"
sanbook_run sector blockdev --getss "$d"
sanbook_run ioopt blockdev --getioopt "$d"
sanbook_run parted parted -m -s "$d" unit B print
sanbook_run blkid blkid -p -o export "$d"
sanbook_run lsblk lsblk -J -b -o ${LSBLK_COLUMNS} "$d"
s=${sysfs}
k=$(readlink -f -- "$d"); k=\${k##*/}
for p in "$s/$k/$k"*; do
  [ -r "$p/partition" ] || continue
  sanbook_run "part \${p##*/} /dev/\${p##*/} $(cat "$p/partition")" blkid -p -o export "/dev/\${p##*/}"
done
for h in "$s/$k/holders/"*; do
  u=$(cat "$h/dm/uuid" 2>/dev/null) && n=$(cat "$h/dm/name") || continue
  case $u in part[0-9]*-*) u=\${u%%-*}; sanbook_run "part \${h##*/} /dev/mapper/$n \${u#part}" blkid -p -o export "/dev/mapper/$n";; esac
done
}
:`;
}

const num = (s: { stdout: string; exitCode: number; stderr: string; tag: string }): number => {
  if (s.exitCode !== 0) throw new Error(`${s.tag} failed: ${s.stderr.trim() || `exit ${s.exitCode}`}`);
  return Number(s.stdout.trim());
};

/** Parse the gather script's output. Throws when the device does not exist or a tool failed. */
export function parsePartitionGather(stdout: string, device: string): PartitionFacts {
  const sections = splitSections(stdout);
  const what = `partition ${device}`;
  if (sectionOf(sections, 'exists', what).exitCode !== 0) throw new Error(`${device} does not exist (not a block device)`);
  const get = (tag: string) => sectionOf(sections, tag, what);
  const realPath = get('realpath').stdout.trim();
  const parted = get('parted');
  const table = parseParted(parted.stdout, parted.exitCode, parted.stderr);
  const blkid = get('blkid');
  const lsblk = get('lsblk');
  if (lsblk.exitCode !== 0) throw new Error(`lsblk ${device} failed: ${lsblk.stderr.trim()}`);
  const tree = parseLsblk(lsblk.stdout);
  const top = findNode(tree, realPath) ?? findNode(tree, realPath.replace(/^.*\//, '')) ?? tree[0];
  const parts = sections.flatMap((s) => {
    const m = /^part (\S+) (\S+) (\d+)$/.exec(s.tag);
    return m ? [{ kname: m[1] ?? '', path: m[2] ?? '', number: Number(m[3]), section: s }] : [];
  });
  const mapper = device.startsWith('/dev/mapper/') ? device : top?.path.startsWith('/dev/mapper/') ? top.path : undefined;
  return {
    device,
    realPath,
    nodeBase: mapper ?? realPath,
    size: num(get('size')),
    sectorSize: num(get('sector')),
    grain: Math.max(MiB, num(get('ioopt'))),
    label: table.label,
    signature: parseBlkid(blkid.stdout, blkid.exitCode, blkid.stderr),
    users: top ? usersOf(top) : [],
    partitions: table.label === 'loop' ? [] : table.partitions.map((p) => {
      const found = parts.find((x) => x.number === p.number);
      const child = found && top ? findNode(top.children, found.kname) : undefined;
      const sig = found ? parseBlkid(found.section.stdout, found.section.exitCode, found.section.stderr) : null;
      // No node to probe (the kernel does not show the partition): trust parted, and never call it empty.
      const unprobed = p.fs ? `${withArticle(p.fs)} filesystem (seen by parted)` : 'content that could not be probed (no node)';
      const holds = found ? (sig ? [describeSignature(sig)] : []) : [unprobed];
      return { ...p, path: child?.path ?? found?.path ?? null, holds, users: child ? usersOf(child) : [] };
    }),
  };
}

/** parted 3.5's partition flags (parted -m prints them by these names). */
export const PARTED_FLAGS = [
  'boot', 'root', 'swap', 'hidden', 'raid', 'lvm', 'lba', 'legacy_boot', 'irst', 'esp', 'chromeos_kernel', 'bls_boot',
  'msftres', 'msftdata', 'palo', 'prep', 'diag', 'linux-home', 'atvrecv', 'bios_grub',
] as const;

export const partition = defineModule<PartitionParams, PartitionFacts, PartitionOutput>({
  name: 'partition',
  description:
    'A gpt or msdos partition table on a block device (a disk, /dev/mapper/mpathX, /dev/disk/by-id/...) holding the listed partitions, or the listed partitions removed. Positions are compared after parted\'s alignment (1 MiB or the optimal I/O size); moving, resizing or removing a partition that holds something, or labelling a device that holds a filesystem, RAID member or another table, is destructive (needs force). Output: {device, label, partitions: [{number, start, end, size, name, path}]} (bytes; path is the node lsblk shows).',
  examples: [
    { title: 'One GPT partition over the whole multipath LUN', params: { device: '/dev/mapper/mpatha', partitions: [{ number: 1, name: 'chunk1data', start: '1MiB', end: '100%' }] } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['device', 'partitions'],
    properties: {
      device: { type: 'string', pattern: '^/dev/[^\\s]+$', description: 'The block device: /dev/sdb, /dev/nvme0n1, /dev/mapper/mpatha, /dev/disk/by-id/...' },
      label: { enum: ['gpt', 'msdos'], default: 'gpt', description: 'The partition table type.' },
      state: {
        enum: ['present', 'absent'],
        default: 'present',
        description: 'present: the table and the listed partitions exist (others are left alone); absent: the listed partition numbers are removed.',
      },
      partitions: {
        type: 'array',
        description: 'The partitions, by number. parted numbers a new partition with the lowest free number: list them without gaps.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['number'],
          properties: {
            number: { type: 'integer', minimum: 1, maximum: 128, description: 'Partition number (msdos: 1-4, primary partitions only).' },
            name: {
              type: 'string',
              maxLength: 36,
              pattern: '^[^"\'\\\\:;\\x00-\\x1f]*$',
              description: 'GPT partition name (not on msdos). Left as it is when not given.',
            },
            start: { type: 'string', pattern: POSITION_PATTERN, description: 'Start, as parted reads it: 1MiB, 0%, 1048576B, 2048s, 1GiB (required for present).' },
            end: { type: 'string', pattern: POSITION_PATTERN, description: 'End (exclusive), as parted reads it: 100%, 512MiB, 10GiB (required for present).' },
            flags: {
              type: 'array',
              items: { enum: [...PARTED_FLAGS] },
              uniqueItems: true,
              description: 'The exact set of flags (e.g. [lvm], [raid]); flags not listed are turned off. Left as they are when not given.',
            },
          },
        },
      },
    },
  },
  async gather(conn, params, ctx) {
    const r = await conn.exec(gatherCommand(params.device));
    try {
      return parsePartitionGather(r.stdout, params.device);
    } catch (e) {
      throw new Error(`partition on ${ctx.host}: ${(e as Error).message}${r.exitCode !== 0 ? ` (${r.stderr.trim() || `exit ${r.exitCode}`})` : ''}`);
    }
  },
  plan: planPartition,
  output: partitionOutput,
});
