/**
 * LVM's part of the recorded-output corpus, on sto1's disks d4..d6 (the boot lab's volume group is on d7..d10;
 * the other phases' recordings on d4..d6 are done by the time this one runs): the reports the
 * lvm module's gather runs (pvs, vgs, lvs as JSON in bytes) with nothing, with an orphan PV, a VG and an LV, the
 * LV open and inactive, and blkid/lsblk of a PV. It starts and ends by removing what it made.
 */
import { sh } from '../lib/command.ts';
import { LSBLK_COLUMNS, lvsCommand, pvsCommand, vgsCommand } from '../modules/lvm/facts.ts';
import { pkgVersion, type Recorder } from './record-kit.ts';

const diskId = (host: string, n: number): string => `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_${host}-d${n}`;
const LVM_DISKS = [4, 5, 6] as const;

/** Remove the recording's VG and PV labels (and nothing else: only VG rec and the three disks). */
export async function resetLvm(r: Recorder): Promise<void> {
  const disks = LVM_DISKS.map((n) => diskId(r.name, n));
  await r.must(sh`if command -v vgremove >/dev/null; then vgremove -q -y rec >/dev/null 2>&1; for d in ${disks}; do pvremove -q -y "$d" >/dev/null 2>&1; done; fi
for d in ${disks}; do wipefs -a -q "$d"; done; :`, 'reset the LVM disks');
}

export async function recordLvm(r: Recorder): Promise<void> {
  const [da, db, dc] = [diskId(r.name, 4), diskId(r.name, 5), diskId(r.name, 6)];
  await r.install(['lvm2']);
  await resetLvm(r);
  const v = await pkgVersion(r, 'lvm2');
  const blkid = await pkgVersion(r, 'util-linux');
  await r.record('lvm/pvs-none.json', v, pvsCommand());
  await r.record('lvm/vgs-none.json', v, vgsCommand());
  await r.record('lvm/lvs-none.json', v, lvsCommand());
  await r.record('lsblk/lvm-blank-disk.json', blkid, sh`lsblk -J -b -o ${LSBLK_COLUMNS} ${dc}`);
  await r.must(sh`pvcreate -q -y ${dc}`, 'an orphan PV');
  await r.record('lvm/pvs-orphan.json', v, pvsCommand());
  await r.record('blkid/lvm-pv.json', blkid, sh`blkid -p -o export ${dc}`);
  await r.must(sh`vgcreate -q -y -s 4m rec ${da} ${db} && lvcreate -q -y -n root -l 100 rec && udevadm settle`, 'a VG with an LV');
  await r.record('lvm/pvs-vg.json', v, pvsCommand());
  await r.record('lvm/vgs-vg.json', v, vgsCommand());
  await r.record('lvm/lvs-vg.json', v, lvsCommand());
  await r.record('lsblk/lvm-pv-in-use.json', blkid, sh`lsblk -J -b -o ${LSBLK_COLUMNS} ${da}`);
  // Open: a process holds the LV open (as a mount or a target would); it is the recording's own, ended by PID.
  await r.must(sh`sleep 60 < /dev/rec/root > /dev/null 2>&1 & echo $! > /run/sanbook-rec-open.pid`, 'hold the LV open');
  try {
    await r.record('lvm/lvs-open.json', v, lvsCommand());
  } finally {
    await r.must(sh`kill "$(cat /run/sanbook-rec-open.pid)"; rm -f /run/sanbook-rec-open.pid`, 'close the LV');
  }
  await r.must(sh`lvchange -q -an rec/root`, 'deactivate the LV');
  await r.record('lvm/lvs-inactive.json', v, lvsCommand());
  await r.must(sh`lvchange -q -ay rec/root && vgextend -q -y rec ${dc}`, 'grow the VG');
  await r.record('lvm/vgs-grown.json', v, vgsCommand());
  await resetLvm(r);
}
