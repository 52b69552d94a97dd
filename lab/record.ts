/**
 * Record real tool output from the lab VMs as test fixtures (test/fixtures/), for the parser tests:
 *   npx tsx lab/record.ts [PHASE...]        the lab must be up (npm run lab -- up); default: every phase
 * Phases: basic (systemctl show, lsblk), mdadm, fs (blkid, parted), targetcli, initiator (iscsiadm, multipath,
 * a mount unit), tgt, firewalld, moosefs (mfscli), lvm (pvs/vgs/lvs: lab/record-lvm.ts); san (seed 000's finished network, after playbooks/san.ts on the
 * full lab: lab/record-san.ts); boot (dl1's root volume, after playbooks/iscsi-boot.ts on the boot lab: lab/record-boot.ts). Each fixture names the tool version that printed it (see lab/record-kit.ts).
 */
import { sh } from '../lib/command.ts';
import { showCommand } from '../modules/service.ts';
import { openLab } from './lab.ts';
import { Recorder } from './record-kit.ts';
import { LSBLK, recordFilesystems, recordFirewalld, recordInitiator, recordMdadm, recordMoosefs, recordTargets, recordTgt, resetInitiator, resetStorage } from './record-storage.ts';
import { recordBoot } from './record-boot.ts';
import { recordLvm } from './record-lvm.ts';
import { recordSan } from './record-san.ts';
import { storageAddresses } from './topology.ts';
import { sshTo } from './vm.ts';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const PHASES = ['basic', 'mdadm', 'fs', 'targetcli', 'initiator', 'tgt', 'firewalld', 'moosefs', 'lvm', 'san', 'boot'] as const;
type Phase = (typeof PHASES)[number];

const asked = process.argv.slice(2);
for (const a of asked) {
  if (!(PHASES as readonly string[]).includes(a)) {
    process.stderr.write(`error: unknown phase "${a}": choose from ${PHASES.join(', ')}\n`);
    process.exit(1);
  }
}
// san and boot need another lab state (a playbook's work) than the others (blank hosts): only when asked.
const phases = new Set<Phase>(asked.length > 0 ? (asked as Phase[]) : PHASES.filter((p) => p !== 'san' && p !== 'boot'));

const lab = await openLab(join(dirname(fileURLToPath(import.meta.url)), '..'));
const vm = (name: string) => {
  const v = lab.vms.find((x) => x.spec.name === name);
  if (!v) throw new Error(`the lab has no ${name}: the recording needs sto1, chunk1 and master (the small topology has them)`);
  return v;
};
// Only the hosts and packages the asked phases need (another job may be using the others; the boot lab has no chunk1).
const needs = (...ps: Phase[]) => ps.some((p) => phases.has(p));
const opened = new Map<string, Promise<Recorder>>();
/** The recorder of a host, connected the first time a phase asks for it. */
const on = (name: string): Promise<Recorder> => {
  let r = opened.get(name);
  if (!r) {
    r = sshTo(vm(name), lab.paths).then((conn) => new Recorder(conn, name));
    opened.set(name, r);
  }
  return r;
};
try {
  await Promise.all([
    needs('mdadm', 'fs', 'targetcli', 'initiator') ? on('sto1').then((r) => r.install(['mdadm', 'targetcli-fb', 'parted', 'xfsprogs'])) : undefined,
    needs('targetcli', 'initiator', 'tgt') ? on('chunk1').then((r) => r.install(['open-iscsi', 'multipath-tools', 'kpartx', 'parted', 'xfsprogs'])) : undefined,
    needs('tgt', 'firewalld') ? on('master').then((r) => r.install(['tgt', 'firewalld'])) : undefined,
  ]);
  if (phases.has('basic')) {
    const sto1 = await on('sto1');
    const systemd = await sto1.version(sh`systemctl --version`);
    await sto1.must(sh`systemctl mask --now e2scrub_reap.service >/dev/null 2>&1; :`, 'mask a unit');
    await sto1.record('service/running-enabled.json', systemd, showCommand('ssh'));
    await sto1.record('service/stopped-static.json', systemd, showCommand('systemd-fsck-root'));
    await sto1.record('service/masked.json', systemd, showCommand('e2scrub_reap.service'));
    await sto1.record('service/not-found.json', systemd, showCommand('nosuchunit.service'));
    await sto1.must(sh`systemctl unmask e2scrub_reap.service >/dev/null 2>&1; :`, 'unmask');
  }
  const disks = vm('sto1').spec.dataDisks;
  if (phases.has('mdadm') || phases.has('fs') || phases.has('targetcli')) {
    const sto1 = await on('sto1');
    await resetInitiator(await on('chunk1'));
    await resetStorage(sto1, disks);
    if (phases.has('basic')) await sto1.record('lsblk/sto1-blank-disks.json', await sto1.version(sh`lsblk --version`), LSBLK);
  }
  if (phases.has('mdadm')) await recordMdadm(await on('sto1'));
  if (phases.has('fs')) await recordFilesystems(await on('sto1'));
  if (phases.has('targetcli')) {
    await (await on('chunk1')).record('targetcli/configfs-absent.json', 'sanbook configfs dump (no target_core_mod loaded)', (await import('../modules/targetcli/dump.ts')).configfsDumpCommand());
    await recordTargets(await on('sto1'));
  }
  if (phases.has('initiator')) await recordInitiator(await on('chunk1'), await on('sto1'), vm('chunk1').spec);
  if (phases.has('tgt')) await recordTgt(await on('master'), await on('chunk1'));
  if (phases.has('firewalld')) await recordFirewalld(await on('master'));
  if (phases.has('moosefs')) await recordMoosefs(await on('master'));
  if (phases.has('lvm')) await recordLvm(await on('sto1'));
  if (phases.has('boot')) await recordBoot(await on('sto1'), lab.vms.some((v) => v.spec.name === 'dl1') ? await on('dl1').catch(() => undefined) : undefined);
  if (phases.has('san')) await recordSan(await on('chunk1'), await on('master'), storageAddresses(vm('master').spec)[0] ?? '');
} finally {
  await Promise.all([...opened.values()].map(async (r) => (await r.catch(() => undefined))?.conn.close()));
}
