/**
 * The storage part of the recorded-output corpus: the seed's chain built by hand on the lab (RAID, LIO targets,
 * an initiator with two paths and dm-multipath, GPT + XFS, a mount unit, tgt with CHAP, firewalld), recording
 * what each tool prints at each state the modules must understand. Each phase starts by resetting what an
 * earlier run left, so the recording can be re-run on a lab in any state.
 */
import { cmd, sh, type Command } from '../lib/command.ts';
import { showCommand } from '../modules/service.ts';
import { configfsDumpCommand } from '../modules/targetcli/dump.ts';
import { setLink } from './net.ts';
import { pkgVersion, type Recorder, until } from './record-kit.ts';
import type { VmSpec } from './topology.ts';

const diskId = (host: string, n: number): string => `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_${host}-d${n}`;
const LSBLK = sh`lsblk -J -b -o NAME,KNAME,PATH,SIZE,TYPE,FSTYPE,LABEL,UUID,PTTYPE,PARTLABEL,SERIAL,MOUNTPOINTS`;

export const T1 = 'iqn.2024-12.tp2.b3:data-chunk1';
export const T2 = 'iqn.2024-12.tp2.b3:data-chunk2';
export const TGT = 'iqn.2024-12.tp2.b3:tgt-t1';
export const CHUNK1 = 'iqn.2024-12.tp2.b3:chunk1';
export const CHUNK2 = 'iqn.2024-12.tp2.b3:chunk2';
/** Lab-only CHAP credentials (they exist in the fixtures and nowhere else). */
const CHAP = { user: 'chunk1', password: 'labsecret-chunk1', mutualUser: 'sto1', mutualPassword: 'labsecret-sto1x' };

function targetcli(lines: readonly string[]): Command {
  return cmd('targetcli').with({ stdin: `${lines.join('\n')}\n` });
}

/** chunk1: log out of everything, drop multipath maps and the mount, so sto1 can be reset. */
export async function resetInitiator(r: Recorder): Promise<void> {
  await r.must(
    sh`systemctl stop mnt-chunk1.mount 2>/dev/null; rm -f /etc/systemd/system/mnt-chunk1.mount; systemctl daemon-reload
if command -v iscsiadm >/dev/null; then iscsiadm -m node -U all >/dev/null 2>&1; iscsiadm -m node -o delete >/dev/null 2>&1; fi
if command -v multipath >/dev/null; then multipath -F >/dev/null 2>&1; fi; :`,
    'reset the initiator',
  );
}

/** sto1: no targets, no arrays, blank disks. */
export async function resetStorage(r: Recorder, disks: number): Promise<void> {
  const all = Array.from({ length: disks }, (_, i) => diskId(r.name, i + 1));
  await r.must(
    sh`if command -v targetcli >/dev/null; then targetcli clearconfig confirm=True >/dev/null; fi
for md in /dev/md/*; do [ -e "$md" ] && mdadm --stop "$md" >/dev/null 2>&1; done
mdadm --stop --scan >/dev/null 2>&1
for d in ${all}; do wipefs -a -q "$d"; mdadm --zero-superblock "$d" 2>/dev/null; done; sed -i '/^ARRAY /d' /etc/mdadm/mdadm.conf 2>/dev/null; :`,
    'reset the storage host',
  );
}

export async function recordMdadm(r: Recorder): Promise<void> {
  const d = (n: number) => diskId(r.name, n);
  const v = await r.version(sh`mdadm -V`);
  const blkid = await pkgVersion(r, 'util-linux');
  await r.record('mdadm/examine-blank.json', v, sh`mdadm --examine --export ${d(1)}`, [1]);
  await r.record('blkid/blank.json', blkid, sh`blkid -p -o export ${d(1)}`, [2]);
  await r.record('mdadm/mdstat-empty.json', v, sh`cat /proc/mdstat`);
  await r.record('mdadm/detail-missing.json', v, sh`mdadm --detail --export /dev/md/nosuch`, [1]);
  await r.must(sh`mdadm --create /dev/md/data1 --level=1 --raid-devices=2 --metadata=1.2 --name=data1 --run ${d(1)} ${d(2)}`, 'create data1');
  await r.record('mdadm/mdstat-resync.json', v, sh`cat /proc/mdstat`);
  await r.record('mdadm/detail-raid1-resync.json', v, sh`mdadm --detail /dev/md/data1`);
  await r.record('mdadm/detail-export-raid1.json', v, sh`mdadm --detail --export /dev/md/data1`);
  await r.must(sh`mdadm --create /dev/md/r5 --level=5 --raid-devices=3 --chunk=64 --metadata=1.2 --name=r5 --run ${d(3)} ${d(4)} ${d(5)}`, 'create r5');
  await r.record('mdadm/mdstat-raid5-recovery.json', v, sh`cat /proc/mdstat`);
  await r.record('mdadm/detail-raid5-recovery.json', v, sh`mdadm --detail /dev/md/r5`);
  await r.must(sh`mdadm --wait /dev/md/data1 /dev/md/r5; :`, 'wait for the resyncs');
  await r.record('mdadm/mdstat-clean.json', v, sh`cat /proc/mdstat`);
  await r.record('mdadm/detail-raid1-clean.json', v, sh`mdadm --detail /dev/md/data1`);
  await r.record('mdadm/detail-raid5-clean.json', v, sh`mdadm --detail /dev/md/r5`);
  await r.record('mdadm/detail-export-raid5.json', v, sh`mdadm --detail --export /dev/md/r5`);
  await r.record('mdadm/detail-brief.json', v, sh`mdadm --detail --brief /dev/md/data1 /dev/md/r5`);
  await r.record('mdadm/examine-export-member.json', v, sh`mdadm --examine --export ${d(1)}`);
  await r.record('mdadm/examine-member.json', v, sh`mdadm --examine ${d(1)}`);
  await r.record('blkid/raid-member.json', blkid, sh`blkid -p -o export ${d(1)}`);
  // A spare, then a failed member: the spare rebuilds, the failed disk keeps a stale superblock.
  await r.must(sh`mdadm /dev/md/data1 --add ${d(6)}`, 'add a spare');
  await r.record('mdadm/detail-raid1-spare.json', v, sh`mdadm --detail /dev/md/data1`);
  await r.record('mdadm/detail-export-raid1-spare.json', v, sh`mdadm --detail --export /dev/md/data1`);
  await r.must(sh`mdadm /dev/md/data1 --fail ${d(2)}`, 'fail a member');
  await r.record('mdadm/mdstat-rebuild.json', v, sh`cat /proc/mdstat`);
  await r.record('mdadm/detail-raid1-failed.json', v, sh`mdadm --detail /dev/md/data1`);
  await r.must(sh`mdadm /dev/md/data1 --remove ${d(2)} && { mdadm --wait /dev/md/data1; :; }`, 'remove the failed member');
  await r.record('mdadm/examine-export-removed.json', v, sh`mdadm --examine --export ${d(2)}`);
  await r.record('mdadm/detail-raid1-rebuilt.json', v, sh`mdadm --detail /dev/md/data1`);
  // A stopped array: its members still say what they belong to.
  await r.must(sh`mdadm --stop /dev/md/data1`, 'stop data1');
  await r.record('mdadm/examine-export-stopped.json', v, sh`mdadm --examine --export ${d(1)}`);
  await r.record('mdadm/mdstat-one-stopped.json', v, sh`cat /proc/mdstat`);
  await r.record('mdadm/assemble.json', v, sh`mdadm --assemble /dev/md/data1 ${d(1)} ${d(6)}`);
  // A degraded RAID5 (assembled from two of three members).
  await r.must(sh`mdadm --stop /dev/md/r5`, 'stop r5');
  await r.record('mdadm/assemble-degraded.json', v, sh`mdadm --assemble --run /dev/md/r5 ${d(3)} ${d(4)}`);
  await r.record('mdadm/detail-raid5-degraded.json', v, sh`mdadm --detail /dev/md/r5`);
  await r.record('mdadm/mdstat-degraded.json', v, sh`cat /proc/mdstat`);
  await r.must(sh`mdadm --stop /dev/md/r5 /dev/md/data1 && wipefs -a -q ${[d(1), d(2), d(3), d(4), d(5), d(6)]}`, 'clean up');
}

export async function recordFilesystems(r: Recorder): Promise<void> {
  const d = (n: number) => diskId(r.name, n);
  const blkid = await pkgVersion(r, 'util-linux');
  const parted = await pkgVersion(r, 'parted');
  await r.must(sh`mkfs.xfs -q -f -L keep ${d(3)} && mkfs.ext4 -q -F -L other ${d(4)}`, 'mkfs');
  await r.record('blkid/xfs.json', blkid, sh`blkid -p -o export ${d(3)}`);
  await r.record('blkid/ext4.json', blkid, sh`blkid -p -o export ${d(4)}`);
  await r.record('parted/blank.json', parted, sh`parted -m -s ${d(1)} unit B print`, [1]);
  await r.must(sh`parted -s -a optimal ${d(5)} mklabel gpt mkpart data 1MiB 50% mkpart '""' 50% 100% && udevadm settle`, 'GPT on d5');
  await r.record('parted/gpt-two.json', parted, sh`parted -m -s ${d(5)} unit B print`);
  await r.record('blkid/gpt.json', blkid, sh`blkid -p -o export ${d(5)}`);
  await r.record('blkid/empty-partition.json', blkid, sh`blkid -p -o export ${`${d(5)}-part1`}`, [0, 2]);
  await r.must(sh`parted -s ${d(6)} mklabel msdos mkpart primary 1MiB 100% && udevadm settle`, 'msdos on d6');
  await r.record('parted/msdos-one.json', parted, sh`parted -m -s ${d(6)} unit B print`);
  await r.record('parted/xfs-whole-disk.json', parted, sh`parted -m -s ${d(3)} unit B print`, [0, 1]);
  await r.record('lsblk/sto1-mixed.json', blkid, LSBLK);
  await r.record('blockdev/disk.json', blkid, sh`blockdev --getsize64 --getss --getioopt ${d(1)}`);
}

export async function recordTargets(r: Recorder): Promise<void> {
  const v = await r.version(sh`targetcli version 2>&1`);
  await r.must(sh`mdadm --create /dev/md/data1 --level=1 --raid-devices=2 --metadata=1.2 --name=data1 --run ${diskId(r.name, 1)} ${diskId(r.name, 2)} 2>/dev/null`, 'create data1');
  await r.record('targetcli/configfs-empty.json', v, configfsDumpCommand());
  const tpg1 = `/iscsi/${T1}/tpg1`;
  const tpg2 = `/iscsi/${T2}/tpg1`;
  await r.record('targetcli/batch-ok.json', v, targetcli([
    '/backstores/block create name=data1 dev=/dev/md/data1',
    '/backstores/fileio create name=f1 file_or_dev=/var/lib/f1.img size=64M write_back=false',
    `/iscsi create ${T1}`,
    `${tpg1}/portals delete 0.0.0.0 3260`,
    `${tpg1}/portals create 10.3.1.1 3260`,
    `${tpg1}/portals create 10.3.2.1 3260`,
    `${tpg1}/luns create /backstores/block/data1`,
    `${tpg1}/acls create ${CHUNK1}`,
    `${tpg1}/acls/${CHUNK1} set auth userid=${CHAP.user} password=${CHAP.password} mutual_userid=${CHAP.mutualUser} mutual_password=${CHAP.mutualPassword}`,
    `${tpg1} set attribute authentication=1 generate_node_acls=0 demo_mode_write_protect=1`,
    `/iscsi create ${T2}`,
    `${tpg2}/portals create 10.3.1.1 3260`,
    `${tpg2}/luns create /backstores/fileio/f1`,
    `${tpg2}/acls create ${CHUNK2} add_mapped_luns=false`,
    `${tpg2}/acls/${CHUNK2} create mapped_lun=0 tpg_lun_or_backstore=0 write_protect=1`,
    `${tpg2} set attribute authentication=0 generate_node_acls=0 demo_mode_write_protect=1`,
    '/iscsi set discovery_auth enable=1 userid=discover password=labsecret-disc',
    'saveconfig',
    'get global auto_add_default_portal auto_enable_tpgt auto_add_mapped_luns',
  ]));
  await r.record('targetcli/configfs-configured.json', v, configfsDumpCommand());
  await r.record('targetcli/saveconfig.json', v, sh`cat /etc/rtslib-fb-target/saveconfig.json`);
  await r.record('targetcli/prefs-base64.json', v, sh`base64 -w0 /root/.targetcli/prefs.bin`);
  await r.record('targetcli/batch-error.json', v, targetcli([
    `${tpg1}/luns create /backstores/block/nosuch`,
    `/iscsi create iqn.bad`,
    '/iscsi set discovery_auth enable=0',
  ]));
}

export async function recordInitiator(r: Recorder, sto1: Recorder, chunk1Vm: VmSpec): Promise<void> {
  const v = await pkgVersion(r, 'open-iscsi');
  const mp = await pkgVersion(r, 'multipath-tools');
  await resetInitiator(r);
  await r.must(sh`printf 'InitiatorName=%s\\n' ${CHUNK1} > /etc/iscsi/initiatorname.iscsi && systemctl restart iscsid`, 'set the initiator name');
  await r.record('iscsiadm/session-none.json', v, sh`iscsiadm -m session`, [21]);
  await r.record('iscsiadm/node-none.json', v, sh`iscsiadm -m node`, [21]);
  await r.record('iscsiadm/discovery-1.json', v, sh`iscsiadm -m discovery -t sendtargets -p 10.3.1.1:3260`);
  await r.record('iscsiadm/discovery-2.json', v, sh`iscsiadm -m discovery -t sendtargets -p 10.3.2.1:3260`);
  await r.record('iscsiadm/node-list.json', v, sh`iscsiadm -m node`);
  for (const portal of ['10.3.1.1:3260', '10.3.2.1:3260']) {
    const set = (name: string, value: string) => sh`iscsiadm -m node -T ${T1} -p ${portal} -o update -n ${name} -v ${value}`;
    for (const [n, val] of [['node.session.auth.authmethod', 'CHAP'], ['node.session.auth.username', CHAP.user], ['node.session.auth.password', CHAP.password],
      ['node.session.auth.username_in', CHAP.mutualUser], ['node.session.auth.password_in', CHAP.mutualPassword], ['node.startup', 'automatic']] as const) {
      await r.must(set(n, val), `set ${n}`);
    }
  }
  await r.record('iscsiadm/node-record.json', v, sh`iscsiadm -m node -T ${T1} -p 10.3.1.1:3260`);
  await r.record('iscsiadm/login.json', v, sh`iscsiadm -m node -T ${T1} -l`);
  // LIO's discovery only lists the targets whose ACLs name this initiator: add T2's record by hand.
  await r.must(sh`iscsiadm -m node -o new -T ${T2} -p 10.3.1.1:3260 >/dev/null`, 'add a node record for T2');
  await r.record('iscsiadm/login-denied.json', v, sh`iscsiadm -m node -T ${T2} -p 10.3.1.1:3260 -l`, [24]);
  // A record made with -o new has no TPGT in its name (the tree shows it); iscsiadm cannot always delete it.
  await r.record('iscsiadm/nodes-tree.json', v, sh`find /etc/iscsi/nodes -printf '%y %p\n' | sort`);
  await r.must(sh`iscsiadm -m node -T ${T2} -o delete 2>/dev/null || rm -rf ${`/etc/iscsi/nodes/${T2}`}`, 'delete the node record for T2');
  await r.record('iscsiadm/node-file.json', v, sh`cat ${`/etc/iscsi/nodes/${T1}/10.3.1.1,3260,1/default`}`);
  await r.record('iscsiadm/services.json', await pkgVersion(r, 'systemd'), sh`systemctl is-enabled iscsid.service iscsid.socket open-iscsi.service; systemctl is-active iscsid.service iscsid.socket open-iscsi.service`, [0, 1, 3]);
  await r.record('iscsiadm/session.json', v, sh`iscsiadm -m session`);
  await r.record('iscsiadm/session-P3.json', v, sh`iscsiadm -m session -P 3`);
  await sto1.record('targetcli/configfs-session.json', await sto1.version(sh`targetcli version 2>&1`), configfsDumpCommand());
  // dm-multipath over the two sessions.
  await r.must(sh`printf '%s\\n' 'defaults {' '    user_friendly_names yes' '    find_multipaths no' '}' > /etc/multipath.conf && systemctl restart multipathd && udevadm settle`, 'start multipathd');
  await until(r, sh`multipath -ll | grep -q 'status=active'`, 'a multipath map');
  await r.record('multipath/ll.json', mp, sh`multipath -ll`);
  await r.record('multipath/maps-json.json', mp, sh`multipathd show maps json`);
  await r.record('multipath/show-config-local.json', mp, sh`multipathd show config local`, [0, 1]);
  // The map's name depends on /etc/multipath/bindings (a WWID seen before keeps its old mpathX name).
  const map = `/dev/mapper/${(await r.must(sh`multipathd show maps raw format %n | head -1`, 'the map name')).trim()}`;
  await r.must(sh`parted -s -a optimal ${map} mklabel gpt mkpart chunk1data 1MiB 100% && udevadm settle && sleep 2 && udevadm settle`, 'GPT on the map');
  await r.record('parted/mpath-gpt.json', await pkgVersion(r, 'parted'), sh`parted -m -s ${map} unit B print`);
  await r.record('lsblk/chunk1-multipath.json', await pkgVersion(r, 'util-linux'), LSBLK);
  await r.record('blockdev/mpath.json', await pkgVersion(r, 'util-linux'), sh`blockdev --getsize64 --getss --getioopt ${map}`);
  await r.must(sh`P=$(ls ${`${map}-part1`} ${`${map}1`} 2>/dev/null | head -1) && mkfs.xfs -q -f -L chunk1data "$P"`, 'mkfs.xfs on the partition');
  await r.record('blkid/xfs-on-mpath.json', await pkgVersion(r, 'util-linux'), sh`blkid -p -o export /dev/disk/by-label/chunk1data`);
  // One path down: the map keeps the other.
  await setLink(chunk1Vm, 's2', false);
  try {
    await until(r, sh`multipath -ll | grep -q failed`, 'the path checker to fail a path', 90_000);
    await r.record('multipath/ll-one-path-failed.json', mp, sh`multipath -ll`);
    await r.record('multipath/maps-json-one-path-failed.json', mp, sh`multipathd show maps json`);
  } finally {
    await setLink(chunk1Vm, 's2', true);
  }
  await until(r, sh`! multipath -ll | grep -q failed`, 'the path to come back', 120_000);
  // A systemd mount unit.
  await r.must(sh`mkdir -p /mnt/chunk1 && printf '%s\\n' '[Unit]' 'Description=chunk1 data' '[Mount]' 'What=/dev/disk/by-label/chunk1data' 'Where=/mnt/chunk1' 'Type=xfs' 'Options=defaults,_netdev' '[Install]' 'WantedBy=remote-fs.target' > /etc/systemd/system/mnt-chunk1.mount && systemctl daemon-reload && systemctl start mnt-chunk1.mount`, 'mount unit');
  await r.record('service/mount-active.json', await pkgVersion(r, 'systemd'), showCommand('mnt-chunk1.mount'));
  await r.record('findmnt/mounted.json', await pkgVersion(r, 'util-linux'), sh`findmnt -J -o TARGET,SOURCE,FSTYPE,OPTIONS /mnt/chunk1`);
  await r.record('findmnt/not-mounted.json', await pkgVersion(r, 'util-linux'), sh`findmnt -J -o TARGET,SOURCE,FSTYPE,OPTIONS /mnt/nothing`, [1]);
}

export async function recordTgt(master: Recorder, chunk1: Recorder): Promise<void> {
  const v = await pkgVersion(master, 'tgt');
  const iv = await pkgVersion(chunk1, 'open-iscsi');
  await master.must(sh`truncate -s 64M /var/lib/tgt-t1.img && printf '%s\\n' ${[`<target ${TGT}>`, '    backing-store /var/lib/tgt-t1.img', `    initiator-name ${CHUNK1}`, '    incominguser tgtuser labsecret-tgt1', '</target>']} > /etc/tgt/conf.d/t1.conf && systemctl restart tgt && tgt-admin --update ALL -f && { ! systemctl -q is-active firewalld || firewall-cmd -q --add-port=3260/tcp; }`, 'configure tgt');
  await master.record('tgt/show-target.json', v, sh`tgtadm --lld iscsi --op show --mode target`);
  await master.record('tgt/dump.json', v, sh`tgt-admin --dump`);
  await chunk1.record('iscsiadm/discovery-tgt.json', iv, sh`iscsiadm -m discovery -t sendtargets -p 10.3.1.100:3260`);
  const set = (name: string, value: string) => sh`iscsiadm -m node -T ${TGT} -p 10.3.1.100:3260 -o update -n ${name} -v ${value}`;
  await chunk1.must(andAll([set('node.session.auth.authmethod', 'CHAP'), set('node.session.auth.username', 'tgtuser'), set('node.session.auth.password', 'wrong-secret-1')]), 'wrong CHAP');
  await chunk1.record('iscsiadm/login-chap-failed.json', iv, sh`iscsiadm -m node -T ${TGT} -p 10.3.1.100:3260 -l`, [24]);
  await chunk1.must(set('node.session.auth.password', 'labsecret-tgt1'), 'right CHAP');
  await chunk1.record('iscsiadm/login-tgt.json', iv, sh`iscsiadm -m node -T ${TGT} -p 10.3.1.100:3260 -l`);
  await master.record('tgt/show-target-session.json', v, sh`tgtadm --lld iscsi --op show --mode target`);
  await chunk1.must(sh`iscsiadm -m node -T ${TGT} -p 10.3.1.100:3260 -u && iscsiadm -m node -T ${TGT} -o delete`, 'log out of tgt');
}

function andAll(commands: readonly Command[]): Command {
  return commands.reduce((a, b) => sh`${a} && ${b}`);
}

export async function recordFirewalld(r: Recorder): Promise<void> {
  const v = await pkgVersion(r, 'firewalld');
  await r.must(sh`systemctl stop firewalld`, 'stop firewalld');
  await r.record('firewalld/state-not-running.json', v, sh`firewall-cmd --state`, [252]);
  await r.must(sh`systemctl start firewalld && firewall-cmd --permanent --remove-port=9419-9421/tcp >/dev/null 2>&1; firewall-cmd --reload`, 'start firewalld');
  await r.record('firewalld/state.json', v, sh`firewall-cmd --state`);
  await r.record('firewalld/default-zone.json', v, sh`firewall-cmd --get-default-zone`);
  await r.record('firewalld/active-zones.json', v, sh`firewall-cmd --get-active-zones`);
  await r.record('firewalld/list-all-default.json', v, sh`firewall-cmd --list-all`);
  await r.must(sh`firewall-cmd --permanent --add-port=9419-9421/tcp && firewall-cmd --permanent --add-service=iscsi-target && firewall-cmd --add-port=9425/tcp`, 'open ports');
  await r.record('firewalld/list-all-runtime-only.json', v, sh`firewall-cmd --list-all`);
  await r.record('firewalld/list-all-permanent.json', v, sh`firewall-cmd --permanent --list-all`);
  await r.must(sh`firewall-cmd --reload`, 'reload');
  await r.record('firewalld/list-all-ports.json', v, sh`firewall-cmd --list-all --zone=public`);
}

export { LSBLK };

/**
 * master: a MooseFS master with one chunkserver on itself (a directory as its disk), for mfscli's outputs. The
 * chunkserver refuses a master on a loopback address: mfsmaster is the storage address.
 */
export async function recordMoosefs(r: Recorder): Promise<void> {
  await r.install(['moosefs-master', 'moosefs-chunkserver', 'moosefs-cli']);
  const v = await pkgVersion(r, 'moosefs-cli');
  await r.must(
    sh`set -e
for f in mfsmaster.cfg mfsexports.cfg; do [ -e /etc/mfs/$f ] || zcat -f /usr/share/doc/moosefs-master/examples/$f* > /etc/mfs/$f; done
for f in mfschunkserver.cfg mfshdd.cfg; do [ -e /etc/mfs/$f ] || zcat -f /usr/share/doc/moosefs-chunkserver/examples/$f* > /etc/mfs/$f; done
[ -e /var/lib/mfs/metadata.mfs ] || cp /var/lib/mfs/metadata.mfs.empty /var/lib/mfs/metadata.mfs
sed -i '/ mfsmaster$/d' /etc/hosts && echo '10.3.1.100 mfsmaster' >> /etc/hosts
mkdir -p /var/lib/mfs-hdd && chown -R mfs:mfs /var/lib/mfs /var/lib/mfs-hdd
grep -q '^/var/lib/mfs-hdd' /etc/mfs/mfshdd.cfg || echo '/var/lib/mfs-hdd' >> /etc/mfs/mfshdd.cfg
grep -q '^HDD_LEAVE_SPACE_DEFAULT' /etc/mfs/mfschunkserver.cfg || echo 'HDD_LEAVE_SPACE_DEFAULT = 64MiB' >> /etc/mfs/mfschunkserver.cfg
systemctl restart moosefs-master && systemctl restart moosefs-chunkserver`,
    'start a MooseFS master and chunkserver',
  );
  await until(r, sh`mfscli -H mfsmaster -p -SCS | grep -q '^chunk servers'`, 'the chunkserver to register', 120_000);
  await until(r, sh`mfscli -H mfsmaster -p -SHD | grep -q '/var/lib/mfs-hdd'`, 'the chunkserver disk', 120_000);
  for (const section of ['SIN', 'SCS', 'SHD', 'SMB', 'SIG']) {
    await r.record(`mfscli/${section}-plain.json`, v, sh`mfscli -H mfsmaster -p ${`-${section}`}`);
  }
  await r.record('mfscli/no-master.json', v, sh`mfscli -H 127.0.0.1 -P 9 -p -SIN`, [0, 1, 2, 255]);
}
