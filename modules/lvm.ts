/**
 * lvm: a volume group on the listed devices, holding the listed logical volumes.
 *
 * gather is one round trip (lvm/facts.ts): pvs, vgs and lvs as JSON in bytes, and each listed device's node,
 * blkid -p and holders. plan works in extents, as LVM does: a size is rounded up to whole extents and passed as
 * `-l N`, so what is created is exactly what the next plan expects. It never shrinks or removes anything
 * without force: lvreduce, lvremove, vgremove and a pvcreate over a device that holds something are destructive.
 * A device or LV that is in use (mounted, held, opened by a target) is refused even with force.
 */
import { cmd } from '../lib/command.ts';
import { defineModule, exec, type Change, type Step } from '../lib/module.ts';
import { describeSignature } from './blockdev.ts';
import * as F from './lvm/facts.ts';
import type { DeviceFacts, LogicalVolume, LvmFacts, VolumeGroup } from './lvm/facts.ts';

export type { DeviceFacts, LogicalVolume, LvmFacts, PhysicalVolume, VolumeGroup } from './lvm/facts.ts';

export interface LvParams {
  name: string;
  /** "1800M", "2G", "512MiB" (binary units, as LVM's -L) or "N%VG". */
  size?: string;
  state?: 'present' | 'absent';
}

export interface LvmParams {
  vg: string;
  state?: 'present' | 'absent';
  pvs?: string[];
  extentSizeMiB?: number;
  lvs?: LvParams[];
}

export interface LvmOutput {
  vg: string;
  /** null: the VG does not exist (state absent, or check mode before it is created). */
  extentSize: number | null;
  size: number | null;
  free: number | null;
  pvs: string[];
  lvs: Record<string, { path: string; size: number; open: boolean }>;
}

const MiB = 1024 * 1024;
const UNITS: Record<string, number> = { K: 1024, M: MiB, G: 1024 * MiB, T: 1024 * 1024 * MiB };
export const SIZE_PATTERN = '^([1-9][0-9]*)(K|M|G|T|KiB|MiB|GiB|TiB)$|^([1-9][0-9]?|100)%VG$';

function raise(message: string): never {
  throw new Error(message);
}

/** A size in words: 1.76 GiB, 512 MiB. */
export function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(2)} ${units[i]}`;
}

/** The extents a size asks for: [least, most] accepted (a %VG may be rounded either way by LVM), and what to pass to -l. */
export function wantedExtents(size: string, extentSize: number, vgExtents: number | null): { min: number; max: number; arg: string } {
  const pct = /^(\d+)%VG$/.exec(size);
  if (pct) {
    const n = Number(pct[1]);
    if (vgExtents === null) return { min: 1, max: Number.MAX_SAFE_INTEGER, arg: `${n}%VG` };
    const lo = Math.floor((n * vgExtents) / 100);
    return { min: lo, max: Math.ceil((n * vgExtents) / 100), arg: String(lo) };
  }
  const m = /^(\d+)([KMGT])(?:iB)?$/.exec(size) ?? raise(`size ${JSON.stringify(size)} is not like 1800M, 2G or 50%VG`);
  const e = Math.ceil((Number(m[1]) * (UNITS[m[2] ?? ''] ?? 0)) / extentSize);
  return { min: e, max: e, arg: String(e) };
}

/** The PV of a listed device (matched by its real path or its own path), if it is one. */
function pvOf(f: LvmFacts, d: DeviceFacts) {
  return f.pvs.find((p) => p.name === d.realPath || p.name === d.path);
}

/** The listed devices that are not yet in the VG: the steps that make them PVs, and what that destroys. */
function newPvs(p: LvmParams, f: LvmFacts): { paths: string[]; steps: Step[]; reasons: string[] } {
  const seen = new Map<string, string>();
  const out = { paths: [] as string[], steps: [] as Step[], reasons: [] as string[] };
  const busy: string[] = [];
  for (const path of p.pvs ?? []) {
    const d = f.devices[path] ?? raise(`no facts for ${path} (a module bug)`);
    if (!d.exists) raise(`physical volume device ${path} does not exist (not a block device)`);
    const dup = seen.get(d.realPath);
    if (dup !== undefined) raise(`${dup} and ${path} are the same device (${d.realPath})`);
    seen.set(d.realPath, path);
    const pv = pvOf(f, d);
    if (pv?.vg === p.vg) continue;
    if (pv && pv.vg !== '') raise(`${path} (${pv.name}) is a physical volume of volume group ${pv.vg}: remove it from ${pv.vg} first (vgreduce)`);
    out.paths.push(path);
    if (pv) continue; // an orphan PV: vgcreate/vgextend takes it as it is
    if (d.users.length > 0) busy.push(`${path} is in use (${d.users.join(', ')})`);
    const held = [...(d.signature ? [describeSignature(d.signature)] : []), ...(d.partitions.length > 0 ? [`partitions ${d.partitions.join(', ')}`] : [])];
    if (held.length > 0) {
      out.reasons.push(`${path} holds ${held.join(' and ')}`);
      out.steps.push(exec(cmd('wipefs', '-a', path)));
    }
    out.steps.push(exec(cmd('pvcreate', '--yes', path)));
  }
  if (busy.length > 0) raise(`cannot use these devices for volume group ${p.vg}: ${busy.join('; ')}. A device in use is refused even with force: free it first`);
  return out;
}

const destructive = (reasons: readonly string[]) => (reasons.length > 0 ? { destructive: reasons.join('; ') } : {});
const lvName = (vg: string, lv: string) => `${vg}/${lv}`;

function vgChanges(p: LvmParams, f: LvmFacts, vg: VolumeGroup | undefined): Change[] {
  const add = newPvs(p, f);
  if (!vg) {
    const extent = `${p.extentSizeMiB ?? 4}m`;
    return [{
      summary: `create volume group ${p.vg} on ${add.paths.join(', ')} (extents of ${p.extentSizeMiB ?? 4} MiB)`,
      steps: [...add.steps, exec(cmd('vgcreate', '--yes', '-s', extent, p.vg, ...add.paths))],
      ...destructive(add.reasons),
    }];
  }
  if (p.extentSizeMiB !== undefined && vg.extentSize !== p.extentSizeMiB * MiB) {
    raise(`volume group ${p.vg} has extents of ${human(vg.extentSize)}, not ${p.extentSizeMiB} MiB: leave extentSizeMiB out, or change it by hand (vgchange -s)`);
  }
  if (add.paths.length === 0) return [];
  return [{
    summary: `add ${add.paths.join(', ')} to volume group ${p.vg}`,
    steps: [...add.steps, exec(cmd('vgextend', '--yes', p.vg, ...add.paths))],
    ...destructive(add.reasons),
  }];
}

function lvChanges(p: LvmParams, f: LvmFacts, vg: VolumeGroup | undefined, growing: boolean): Change[] {
  const extentSize = vg?.extentSize ?? (p.extentSizeMiB ?? 4) * MiB;
  // The VG's extent count is known only when it exists and gets no new PV in this run.
  const total = vg && !growing ? vg.extentCount : null;
  let needed = 0;
  const changes: Change[] = [];
  for (const lv of p.lvs ?? []) {
    const name = lvName(p.vg, lv.name);
    const cur = f.lvs.find((l) => l.vg === p.vg && l.name === lv.name);
    if (lv.state === 'absent') {
      if (!cur) continue;
      if (cur.open) raise(`logical volume ${name} is open (mounted, or exported by a target): it cannot be removed`);
      changes.push({ summary: `remove logical volume ${name} (${human(cur.size)})`, steps: [exec(cmd('lvremove', '--yes', name))], destructive: `removing ${name} destroys its data (${human(cur.size)})` });
      continue;
    }
    const want = wantedExtents(lv.size ?? raise(`logical volume ${name}: size is required (a schema bug)`), extentSize, total);
    if (!cur) {
      needed += want.arg.endsWith('%VG') ? 0 : want.min;
      changes.push({ summary: `create logical volume ${name} of ${sizeWords(lv.size ?? '', want, extentSize)}`, steps: [exec(cmd('lvcreate', '--yes', '-n', lv.name, '-l', want.arg, p.vg))] });
      continue;
    }
    const have = cur.size / extentSize;
    if (have < want.min) {
      needed += want.arg.endsWith('%VG') ? 0 : want.min - have;
      changes.push({ summary: `grow logical volume ${name} from ${human(cur.size)} to ${sizeWords(lv.size ?? '', want, extentSize)}`, steps: [exec(cmd('lvextend', '-l', want.arg, name))] });
    } else if (have > want.max) {
      if (cur.open) raise(`logical volume ${name} is ${human(cur.size)}, more than ${lv.size}, and open: it cannot be shrunk while in use`);
      changes.push({
        summary: `shrink logical volume ${name} from ${human(cur.size)} to ${sizeWords(lv.size ?? '', want, extentSize)}`,
        steps: [exec(cmd('lvreduce', '--yes', '-f', '-l', want.arg, name))],
        destructive: `shrinking ${name} from ${human(cur.size)} to ${human(want.min * extentSize)} destroys the data past the new end (a filesystem on it must be shrunk first)`,
      });
    }
    if (!cur.active) changes.push({ summary: `activate logical volume ${name}`, steps: [exec(cmd('lvchange', '-ay', name))] });
  }
  if (vg && !growing && needed > vg.freeCount) {
    raise(`volume group ${p.vg} has ${vg.freeCount} free extents (${human(vg.free)}); the logical volumes asked for need ${needed} (${human(needed * extentSize)}): list more devices, or ask for less`);
  }
  return changes;
}

function sizeWords(size: string, want: { min: number; arg: string }, extentSize: number): string {
  return want.arg.endsWith('%VG') ? size : `${human(want.min * extentSize)} (${want.min} extents)`;
}

function planAbsent(p: LvmParams, f: LvmFacts, vg: VolumeGroup | undefined): Change[] {
  if (!vg) return [];
  const lvs = f.lvs.filter((l) => l.vg === p.vg);
  const open = lvs.filter((l) => l.open);
  if (open.length > 0) raise(`volume group ${p.vg} has open logical volumes (${open.map((l) => l.name).join(', ')}): it cannot be removed`);
  const pvs = f.pvs.filter((x) => x.vg === p.vg).map((x) => x.name);
  return [{
    summary: `remove volume group ${p.vg}${lvs.length ? ` and its logical volumes ${lvs.map((l) => l.name).join(', ')}` : ''}, and the PV labels of ${pvs.join(', ')}`,
    steps: [
      ...lvs.map((l) => exec(cmd('lvremove', '--yes', lvName(p.vg, l.name)))),
      exec(cmd('vgremove', '--yes', p.vg)),
      exec(cmd('pvremove', '--yes', ...pvs)),
    ],
    ...destructive(lvs.length ? [`removing volume group ${p.vg} destroys ${lvs.map((l) => `${l.name} (${human(l.size)})`).join(', ')}`] : []),
  }];
}

export function planLvm(p: LvmParams, f: LvmFacts): Change[] {
  const vg = f.vgs.find((v) => v.name === p.vg);
  if (p.state === 'absent') return planAbsent(p, f, vg);
  if (vg?.attr[3] === 'p' || f.pvs.some((x) => x.vg === p.vg && x.name === '[unknown]')) {
    raise(`volume group ${p.vg} is partial (a physical volume is missing): repair it by hand (vgreduce --removemissing, or bring the device back)`);
  }
  const vgc = vgChanges(p, f, vg);
  return [...vgc, ...lvChanges(p, f, vg, vgc.length > 0)];
}

export function lvmOutput(p: LvmParams, f: LvmFacts): LvmOutput {
  const vg = f.vgs.find((v) => v.name === p.vg);
  const lvs: LvmOutput['lvs'] = {};
  for (const l of f.lvs.filter((x: LogicalVolume) => x.vg === p.vg)) lvs[l.name] = { path: l.path, size: l.size, open: l.open };
  return {
    vg: p.vg, extentSize: vg?.extentSize ?? null, size: vg?.size ?? null, free: vg?.free ?? null,
    pvs: f.pvs.filter((x) => x.vg === p.vg).map((x) => x.name), lvs,
  };
}

const NAME = '^(?!\\.\\.?$)(?!-)[A-Za-z0-9+_.-]+$';

export const lvm = defineModule<LvmParams, LvmFacts, LvmOutput>({
  name: 'lvm',
  description:
    'An LVM volume group on the listed devices, holding the listed logical volumes (linear, sized in extents). Devices that are not physical volumes yet get pvcreate; a VG that exists gets the listed devices it lacks (vgextend); PVs in it that are not listed are left alone. An LV smaller than asked is grown (lvextend); one larger is shrunk only with force (lvreduce). Destructive, refused unless force: pvcreate over a device that holds a filesystem, a partition table or anything blkid finds; shrinking or removing an LV; removing a VG with LVs. A device in use (mounted, held by a map) and an LV that is open (mounted, exported by a target) are refused even with force. Output: {vg, extentSize, size, free, pvs, lvs: {NAME: {path, size, open}}}.',
  examples: [
    {
      title: 'A VG over two spare disks with the root volume of a diskless client (seed 002)',
      params: {
        vg: 'boot',
        pvs: ['/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d7', '/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sto1-d8'],
        lvs: [{ name: 'dl1-root', size: '900M' }],
      },
    },
    { title: 'Remove one LV (destructive: needs force on the task)', params: { vg: 'boot', pvs: ['/dev/sdh'], lvs: [{ name: 'old', state: 'absent' }] } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['vg'],
    properties: {
      vg: { type: 'string', pattern: NAME, maxLength: 127, description: 'Volume group name (/dev/VG/LV).' },
      state: { enum: ['present', 'absent'], default: 'present', description: 'absent removes the VG, its LVs (destructive when it has any) and the PV labels of its devices.' },
      pvs: {
        type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^/dev/[^\\s]+$' },
        description: 'The devices of the VG (required when present): /dev/sdb, /dev/disk/by-id/..., /dev/md/NAME. A device that is not a PV yet is made one.',
      },
      extentSizeMiB: { type: 'integer', minimum: 1, maximum: 16384, description: 'Extent size when the VG is created (vgcreate -s; default 4). For a VG that exists it must match, or be left out.' },
      lvs: {
        type: 'array', default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: { type: 'string', pattern: NAME, maxLength: 127, description: 'LV name.' },
            size: { type: 'string', pattern: SIZE_PATTERN, description: 'Size (required when present): 1800M, 2G, 512MiB (binary units, rounded up to whole extents), or N%VG of the VG\'s extents.' },
            state: { enum: ['present', 'absent'], default: 'present', description: 'absent removes the LV (destructive).' },
          },
          if: { properties: { state: { const: 'absent' } }, required: ['state'] },
          else: { properties: { size: true }, required: ['size'] },
        },
        description: 'Logical volumes of the VG; LVs not listed are left alone.',
      },
    },
    if: { properties: { state: { const: 'absent' } }, required: ['state'] },
    else: { properties: { pvs: true }, required: ['pvs'] },
  },
  async gather(conn, params, ctx) {
    const devices = params.state === 'absent' ? [] : (params.pvs ?? []);
    const r = await conn.exec(F.gatherCommand(devices));
    return F.parseLvmGather(r.stdout, devices, ctx.host);
  },
  plan: planLvm,
  output: lvmOutput,
});
