/**
 * Phase "boot" of lab/record.ts: what the rootfs module's and the iscsi-boot verify play's gathers read on the boot
 * lab once playbooks/iscsi-boot.ts has built dl1's root volume (run the playbook first; dl1 up for the last ones):
 * - sto1: the rootfs gather script's whole output with the volume built and exported (a LIO backstore holds it:
 *   the exclusive open fails), and blkid of the volume and of its partition at 1 MiB;
 * - dl1: the verify play's gather script's output on a client running from its iSCSI root, and again with iscsid
 *   stopped for the moment of the recording (socket too, so nothing restarts it; the kernel's session carries on
 *   without it; started again right after).
 */
import { sh } from '../lib/command.ts';
import { Secret } from '../lib/secret.ts';
import { gatherCommand } from '../modules/rootfs.ts';
import { verifyGatherCommand } from '../playbooks/iscsi-boot/verify.ts';
import { ROOT_PACKAGES, ROOT_SUITE, rootUuid } from '../playbooks/iscsi-boot/vars.ts';
import { pkgVersion, type Recorder } from './record-kit.ts';

export const BOOT_DEVICE = '/dev/boot/dl1-root';

export async function recordBoot(sto1: Recorder, dl1: Recorder | undefined): Promise<void> {
  const built = await sto1.conn.exec(sh`test -e /var/lib/sanbook/rootfs/dev-boot-dl1-root/marker.json`);
  if (built.exitCode !== 0) throw new Error('sto1: dl1\'s root volume is not built: run playbooks/iscsi-boot.ts on the boot lab first');
  const util = await pkgVersion(sto1, 'util-linux');
  const params = {
    device: BOOT_DEVICE, suite: ROOT_SUITE, source: { mirror: 'http://unused' }, hostname: 'dl1', uuid: rootUuid('sto1', 'dl1'),
    include: [...ROOT_PACKAGES], sshHostKey: new Secret('unused'), exportDir: '/srv/tftp/sanbook/dl1',
  };
  await sto1.record('rootfs/gather-built-exported.json', `${util}; coreutils sha256sum; python3 os.open O_EXCL`, gatherCommand(params));
  await sto1.record('blkid/rootfs-volume.json', util, sh`blkid -p -o export ${BOOT_DEVICE}`);
  await sto1.record('blkid/rootfs-partition.json', util, sh`blkid -p -o export -O 1048576 ${BOOT_DEVICE}`);
  if (dl1) {
    const kernel = (await dl1.must(sh`uname -r`, 'uname')).trim();
    const tool = `${await pkgVersion(dl1, 'util-linux')}; ${await pkgVersion(dl1, 'systemd')}; sysfs of kernel ${kernel}`;
    await dl1.record('iscsi-boot/verify-gather-dl1.json', tool, verifyGatherCommand());
    await dl1.must(sh`systemctl stop iscsid.socket iscsid.service`, 'stop iscsid');
    try {
      await dl1.record('iscsi-boot/verify-gather-dl1-iscsid-stopped.json', tool, verifyGatherCommand());
    } finally {
      await dl1.must(sh`systemctl start iscsid.socket iscsid.service`, 'start iscsid');
    }
  }
}
