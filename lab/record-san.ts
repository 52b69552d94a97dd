/**
 * Phase "san" of lab/record.ts: outputs of seed 000's finished network, as playbooks/san.ts leaves it on the full
 * lab (run the playbook first). What the verify play and the MooseFS and firewalld modules read there:
 * - chunk1: the mount tree and multipathd's maps (two aliased maps of two paths), multipathd's merged config (the
 *   overrides section beating the built-in LIO-ORG entry), the chunkserver's id files through od, and `ls` of an XFS
 *   that shut down (xfs_io's shutdown: the state a filesystem is left in when multipath fails its writes).
 * - master: the firewalld unit, the MooseFS facts module's one mfscli call, firewall-offline-cmd with the daemon
 *   stopped (the plane check mode reads on a host where firewalld is not running yet).
 * Every step puts back what it changed: the shut-down XFS is remounted (its log replays) under a stopped
 * chunkserver, firewalld is started again.
 */
import { sh } from '../lib/command.ts';
import { mfscliCommand } from '../modules/moosefs/facts.ts';
import { showCommand } from '../modules/service.ts';
import { pkgVersion, until, type Recorder } from './record-kit.ts';


export async function recordSan(chunk1: Recorder, master: Recorder, masterIp: string): Promise<void> {
  const built = await chunk1.conn.exec(sh`grep -q 'alias data_chunk1' /etc/multipath.conf && mountpoint -q /mnt/data_chunk2 && systemctl is-active -q moosefs-chunkserver`);
  if (built.exitCode !== 0) throw new Error('chunk1: seed 000\'s network is not built (no data_chunk1 alias, /mnt/data_chunk2 mount or chunkserver): run playbooks/san.ts on the full lab first');

  const util = await pkgVersion(chunk1, 'util-linux');
  const mp = await pkgVersion(chunk1, 'multipath-tools');
  const coreutils = await pkgVersion(chunk1, 'coreutils');
  const cs = await pkgVersion(chunk1, 'moosefs-chunkserver');
  await chunk1.record('findmnt/chunk1-san.json', util, sh`findmnt -J -o TARGET,SOURCE,FSTYPE`);
  await chunk1.record('multipath/maps-json-san.json', mp, sh`multipathd show maps json`);
  await chunk1.record('multipath/show-config-local-san.json', mp, sh`multipathd show config local`);
  await chunk1.record('moosefs/chunkserverid-od.json', `${coreutils} (od) on the chunkserverid.mfs of ${cs}`, sh`od -A n -t x1 -v -- /var/lib/mfs/chunkserverid.mfs`);
  await chunk1.record('moosefs/metaid-od.json', `${coreutils} (od) on a disk's .metaid of ${cs}`, sh`od -A n -t x1 -v -- /mnt/data_chunk1/.metaid`);

  await chunk1.record('ls/chunk-data-mount.json', `${coreutils} ls on a chunkserver's XFS`, sh`ls -A -- /mnt/data_chunk1`);
  const xfs = await pkgVersion(chunk1, 'xfsprogs');
  const kernel = (await chunk1.must(sh`uname -r`, 'uname')).trim();
  await chunk1.must(sh`systemctl stop moosefs-chunkserver && xfs_io -x -c shutdown /mnt/data_chunk2`, 'shut XFS down');
  try {
    await chunk1.record('ls/xfs-shut-down.json', `${coreutils} ls on XFS shut down by ${xfs} xfs_io (kernel ${kernel})`, sh`ls -A -- /mnt/data_chunk2`, [2]);
  } finally {
    await chunk1.must(sh`systemctl stop mnt-data_chunk2.mount && systemctl start mnt-data_chunk2.mount && systemctl start moosefs-chunkserver`, 'remount /mnt/data_chunk2');
  }
  await until(chunk1, sh`ls -A -- /mnt/data_chunk2 >/dev/null`, '/mnt/data_chunk2 readable again');

  const systemd = await master.version(sh`systemctl --version`);
  const fw = await pkgVersion(master, 'firewalld');
  const cli = await pkgVersion(master, 'moosefs-cli');
  await master.record('service/firewalld-running.json', systemd, showCommand('firewalld'));
  await master.record('mfscli/facts-3-chunkservers.json', cli, mfscliCommand({ masterHost: masterIp, masterPort: 9421 }));
  await master.must(sh`systemctl stop firewalld`, 'stop firewalld');
  try {
    await master.record('firewalld/offline-default-zone.json', fw, sh`firewall-offline-cmd --get-default-zone`);
    await master.record('firewalld/offline-list-all.json', fw, sh`firewall-offline-cmd --list-all --zone=public`);
    await master.record('firewalld/offline-get-zones.json', fw, sh`firewall-offline-cmd --get-zones`);
  } finally {
    await master.must(sh`systemctl start firewalld`, 'start firewalld');
  }
}
