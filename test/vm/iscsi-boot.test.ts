/**
 * Seed 002 on the lab (`npm run test:lab:boot`, topology boot: sto1 and the diskless dl1): playbooks/iscsi-boot.ts
 * builds dl1's root volume on sto1 (LVM, debootstrap, kernel and initramfs to TFTP, an iPXE entry, a LIO target with
 * CHAP); dl1, a VM with no disk at all, network-boots through iPXE, reaches SSH, and its root filesystem is the
 * iSCSI volume; a re-run changes nothing. A wrong CHAP secret on the target makes the boot fail with the
 * refusal on the console; the playbook puts the secret back and dl1 boots. Then iPXE's sanboot: only the boot
 * entry changes, and dl1 boots from the volume's own GRUB with the target found in the iBFT.
 */
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { sh } from '../../lib/command.ts';
import { loadInventory, type Inventory } from '../../lib/inventory.ts';
import { labDown, labUp, openLab, startLabVm, stopLabVm, type Lab } from '../../lab/lab.ts';
import { consoleTail } from '../../lab/vm.ts';
import { iscsiBoot, rootUuid } from '../../playbooks/iscsi-boot.ts';
import { changedTasks, failedTasks, labConnections, runBook } from './connections.ts';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLIENT = 'dl1';
const SERVER = 'sto1';
const TARGET = 'iqn.2024-12.tp2.b3:boot-dl1';
const INITIATOR = 'iqn.2024-12.tp2.b3:dl1';
let lab: Lab;
let inventory: Inventory;
const conns = labConnections(() => lab);

const vm = (name: string) => {
  const rt = lab.vms.find((v) => v.spec.name === name);
  if (!rt) throw new Error(`no ${name} in the lab`);
  return rt;
};

/** Wait until dl1's console says one of `patterns` (or QEMU stops); returns what it said. */
async function consoleSays(patterns: readonly RegExp[], timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = (await readFile(vm(CLIENT).consoleLog, 'utf8').catch(() => '')).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
    if (patterns.some((p) => p.test(text))) return text;
    if (Date.now() > deadline) throw new Error(`dl1's console did not say ${patterns.join(' or ')} in ${timeoutMs / 1000} s; it said:\n${await consoleTail(vm(CLIENT), 40)}`);
    await new Promise((r) => setTimeout(r, 3_000));
  }
}

/** What dl1 runs from: the root's source and UUID, the disk's transport, and the iSCSI session's target. */
async function rootOfClient(): Promise<{ source: string; uuid: string; tran: string; target: string }> {
  await conns.drop(CLIENT);
  const out = await conns.out(CLIENT, sh`findmnt -n -o SOURCE,UUID /; lsblk -n -d -o TRAN "$(lsblk -n -d -o PKNAME "$(findmnt -n -o SOURCE /)" | sed 's|^|/dev/|')"; cat /sys/class/iscsi_session/session*/targetname`);
  const [root = '', tran = '', target = ''] = out.trim().split('\n');
  const [source = '', uuid = ''] = root.trim().split(/\s+/);
  return { source, uuid, tran: tran.trim(), target: target.trim() };
}

test.before(async (t) => {
  const log = (l: string) => t.log(l);
  const current = await openLab(projectRoot).catch(() => undefined);
  if (current && current.state.topology !== 'boot') await labDown({ projectRoot, log });
  lab = await labUp({ projectRoot, topology: 'boot', log });
  inventory = await loadInventory(lab.inventoryFile);
});

test.after.always(async () => {
  await conns.closeAll();
});

/** What the build makes on sto1, in a line each: the LVs, the module's state, the TFTP tree, the targets. */
const serverState = () =>
  conns.out(SERVER, sh`lvs --noheadings -o lv_name,lv_size 2>/dev/null; ls -R /var/lib/sanbook /srv/tftp 2>/dev/null; ls /sys/kernel/config/target/iscsi 2>/dev/null; :`);

test.serial('check mode plans the build and touches nothing', async (t) => {
  const before = await serverState();
  const r = await runBook(iscsiBoot.build(inventory), inventory, { check: true });
  t.log(`check mode: exit ${r.exitCode}, ${r.seconds} s, ${changedTasks(r.ended).length} tasks to change: ${changedTasks(r.ended).map((e) => e.task).join(', ')}`);
  t.is(r.exitCode, 0, failedTasks(r.ended));
  t.true(changedTasks(r.ended).length > 0);
  t.is(await serverState(), before);
});

test.serial('first run builds the volume, the boot entry and the target; a re-run changes nothing', async (t) => {
  const first = await runBook(iscsiBoot.build(inventory), inventory);
  t.log(`first run: exit ${first.exitCode}, ${first.seconds} s`);
  for (const e of first.ended) t.log(`  ${e.host} ${e.task}: ${e.status}${e.message ? ` (${e.message})` : ''}`);
  t.is(first.exitCode, 0, failedTasks(first.ended));
  const again = await runBook(iscsiBoot.build(inventory), inventory);
  t.log(`re-run: exit ${again.exitCode}, ${again.seconds} s`);
  t.is(again.exitCode, 0, failedTasks(again.ended));
  t.deepEqual(changedTasks(again.ended), []);
  // The boot entry holds the CHAP secret: tftpd's alone.
  t.is((await conns.out(SERVER, sh`stat -c '%a %U' /srv/tftp/sanbook/52-54-00-5b-33-01.ipxe`)).trim(), '400 tftp');
});

test.serial('dl1, with no disk, boots from the iSCSI volume (classic ISCSI_* parameters) and reaches SSH', async (t) => {
  await stopLabVm(lab, CLIENT);
  const ms = await startLabVm(lab, CLIENT, { timeoutMs: 20 * 60_000 });
  t.log(`dl1 up in ${Math.round(ms / 1000)} s`);
  const root = await rootOfClient();
  t.log(JSON.stringify(root));
  t.like(root, { uuid: rootUuid(SERVER, CLIENT), tran: 'iscsi', target: TARGET });
  t.regex(root.source, /^\/dev\/sd[a-z]1$/);
  const verify = await runBook(iscsiBoot.build(inventory), inventory, { tags: ['verify'] });
  t.is(verify.exitCode, 0, failedTasks(verify.ended));
  t.true(verify.ended.some((e) => e.host === CLIENT && e.status === 'ok'));
  const again = await runBook(iscsiBoot.build(inventory), inventory);
  t.deepEqual(changedTasks(again.ended), [], 'a re-run with the client up changes nothing');
});

test.serial('a wrong CHAP secret on the target: the boot fails with the refusal; the playbook puts it back and dl1 boots', async (t) => {
  await stopLabVm(lab, CLIENT);
  await conns.out(SERVER, sh`targetcli /iscsi/${TARGET}/tpg1/acls/${INITIATOR} set auth password=not-the-secret-1 >/dev/null`);
  await writeFile(vm(CLIENT).consoleLog, '');
  await startLabVm(lab, CLIENT, { wait: false });
  // open-iscsi 2.1.8's iscsistart: "Login failed to authenticate with target IQN", "session 1 login rejected:
  // Initiator failed authentication with target".
  const said = await consoleSays([/login rejected|Login failed|authoriz(ation|e) failure/i], 15 * 60_000);
  t.regex(said, /Login failed to authenticate with target iqn\.2024-12\.tp2\.b3:boot-dl1/, 'the initiator says the target refused it');
  t.regex(said, /login rejected: Initiator failed authentication with target/);
  const targetLog = await conns.out(SERVER, sh`dmesg | grep -i -E 'login|chap|auth' | tail -5`);
  t.log(`sto1: ${targetLog.trim()}`);
  t.regex(targetLog, /iSCSI Login negotiation failed|CHAP|authentication/i);
  const fix = await runBook(iscsiBoot.build(inventory), inventory);
  t.is(fix.exitCode, 0, failedTasks(fix.ended));
  t.deepEqual(changedTasks(fix.ended).map((e) => e.task), ['root volumes exported, one target per client']);
  // panic=60: the initramfs reboots a minute after it gives up, and tries again with the secret now right.
  const ms = await startLabVm(lab, CLIENT, { timeoutMs: 20 * 60_000 });
  t.log(`dl1 up ${Math.round(ms / 1000)} s after the fix`);
  t.like(await rootOfClient(), { tran: 'iscsi', target: TARGET });
});

test.serial('sanboot: only the boot entry changes; dl1 boots from the volume\'s GRUB with the target in the iBFT', async (t) => {
  const text = await readFile(lab.inventoryFile, 'utf8');
  const sanboot = join(lab.paths.root, 'lab-sanboot.yaml'); // .lab/: removed with the lab
  await writeFile(sanboot, text.replace(`          iscsi_boot:\n            server: ${SERVER}\n`, `          iscsi_boot:\n            server: ${SERVER}\n            mode: sanboot\n`));
  const inv = await loadInventory(sanboot);
  const r = await runBook(iscsiBoot.build(inv), inv);
  t.is(r.exitCode, 0, failedTasks(r.ended));
  t.deepEqual(changedTasks(r.ended).map((e) => e.task), [`boot entry of ${CLIENT}`]);
  await stopLabVm(lab, CLIENT);
  await writeFile(vm(CLIENT).consoleLog, '');
  const ms = await startLabVm(lab, CLIENT, { timeoutMs: 20 * 60_000 });
  t.log(`dl1 up by sanboot in ${Math.round(ms / 1000)} s`);
  t.like(await rootOfClient(), { uuid: rootUuid(SERVER, CLIENT), tran: 'iscsi', target: TARGET });
  t.is((await conns.out(CLIENT, sh`cat /sys/firmware/ibft/target0/target-name`)).trim(), TARGET);
  t.notRegex(await conns.out(CLIENT, sh`cat /proc/cmdline`), /ISCSI_PASSWORD/, 'no secret on the command line in sanboot mode');
  // The boot NIC keeps its address under networkd (session 9 saw it flushed ~30 s in, then the root's I/O time out),
  // iscsid runs, the root is writable: the verify play says so, and a re-run changes nothing.
  t.regex(await conns.out(CLIENT, sh`ip -4 -o addr show dev eth1`), /inet 10\.3\.1\.51\/24/);
  const verify = await runBook(iscsiBoot.build(inv), inv, { tags: ['verify'] });
  t.is(verify.exitCode, 0, failedTasks(verify.ended));
  t.deepEqual(changedTasks((await runBook(iscsiBoot.build(inv), inv)).ended), []);
});
