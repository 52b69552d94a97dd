/**
 * The VM lab (npm run test:lab): brings the lab up (SANBOOK_LAB_TOPOLOGY=full by default, or small) and
 * checks, over SSH, each VM's disks, its addresses on both storage networks, the kernel features the storage
 * modules need, the isolation of the lab, package installation from the lab's repository through the engine,
 * and a reboot from the VM's own boot loader, kernel and initramfs.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { sh } from '../../lib/command.ts';
import { loadInventory } from '../../lib/inventory.ts';
import { play, playbook } from '../../lib/playbook.ts';
import { runPlaybook } from '../../lib/runner.ts';
import { labUp, rebootVm, type Lab } from '../../lab/lab.ts';
import { storageAddresses } from '../../lab/topology.ts';
import { pkg, setting } from '../../modules/index.ts';
import { labConnections } from './connections.ts';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// CI and quick runs: sto1 + sto2 + chunk1 + master; SANBOOK_LAB_TOPOLOGY=full for the six VMs of seed 000.
const topologyName = process.env['SANBOOK_LAB_TOPOLOGY'] ?? 'small';
let lab: Lab;
const conns = labConnections(() => lab);
const conn = (name: string) => conns.get(name);

test.before(async (t) => {
  const started = Date.now();
  lab = await labUp({ projectRoot, topology: topologyName, log: (l) => t.log(l) });
  t.log(`lab up in ${Math.round((Date.now() - started) / 1000)} s`);
});

test.after.always(async () => {
  await conns.closeAll();
});

test('up on a running lab is a no-op', async (t) => {
  const started = Date.now();
  const again = await labUp({ projectRoot, topology: topologyName });
  t.deepEqual(again.state, lab.state);
  t.true(Date.now() - started < 60_000, `took ${Date.now() - started} ms`);
});

test('every VM has its disks and its addresses on both storage networks', async (t) => {
  for (const rt of lab.vms) {
    const c = await conn(rt.spec.name);
    const lsblk = JSON.parse((await c.exec(sh`lsblk -J -b -d -o NAME,SIZE,TYPE,SERIAL`)).stdout) as {
      blockdevices: { name: string; size: number; type: string; serial: string | null }[];
    };
    const data = lsblk.blockdevices.filter((d) => d.serial?.startsWith(`${rt.spec.name}-d`));
    t.is(data.length, rt.spec.dataDisks, `${rt.spec.name}: data disks`);
    for (const d of data) t.is(d.size, rt.spec.dataDiskMiB * 1024 * 1024);
    // The kernel's sdX order changes from boot to boot (the SCSI scan is asynchronous): disks are known by serial.
    t.deepEqual(data.map((d) => d.serial).sort(), Array.from({ length: rt.spec.dataDisks }, (_, i) => `${rt.spec.name}-d${i + 1}`).sort());
    if (rt.dataDiskIds.length > 0) {
      const ids = await c.exec(sh`readlink -e ${rt.dataDiskIds}`);
      t.is(ids.exitCode, 0, `${rt.spec.name}: ${ids.stderr}`);
    }
    const addrs = JSON.parse((await c.exec(sh`ip -j -4 addr show`)).stdout) as { addr_info: { local: string }[] }[];
    const mine = addrs.flatMap((i) => i.addr_info.map((a) => a.local));
    for (const a of storageAddresses(rt.spec)) t.true(mine.includes(a), `${rt.spec.name} lacks ${a}: ${mine.join(', ')}`);
  }
});

test('the storage networks carry traffic between VMs, on both paths', async (t) => {
  const [a, b] = lab.vms;
  if (!a || !b) return t.fail('the lab needs two VMs');
  const c = await conn(a.spec.name);
  for (const address of storageAddresses(b.spec)) {
    const r = await c.exec(sh`ping -c 2 -W 3 ${address}`);
    t.is(r.exitCode, 0, `${a.spec.name} -> ${address}: ${r.stdout}${r.stderr}`);
  }
});

test('the lab is isolated: no lab address on this machine, guests reach nothing but the repository', async (t) => {
  const hostAddrs = execFileSync('ip', ['-o', '-4', 'addr', 'show']).toString();
  t.notRegex(hostAddrs, /\b10\.3\.[12]\./, 'a storage network address on the host');
  const c = await conn(lab.vms[0]?.spec.name ?? '');
  // QEMU user networking with restrict=on: the host side (10.0.2.2) is not reachable from the guest.
  const r = await c.exec(sh`timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.2.2/22' 2>&1; echo "exit=$?"`);
  t.notRegex(r.stdout, /exit=0/);
  const repo = await c.exec(sh`timeout 10 bash -c 'exec 3<>/dev/tcp/10.0.2.100/80 && printf "HEAD /Packages HTTP/1.0\r\n\r\n" >&3 && head -1 <&3'`);
  t.regex(repo.stdout, /^HTTP\/1\.[01] 200/);
});

test('the kernel has what the storage modules need', async (t) => {
  for (const rt of lab.vms) {
    const c = await conn(rt.spec.name);
    const r = await c.exec(sh`for m in target_core_mod iscsi_target_mod iscsi_tcp dm_multipath raid1 xfs; do modprobe -n -v "$m" >/dev/null || echo "missing $m"; done`);
    t.is(r.stdout, '', `${rt.spec.name}: ${r.stdout}${r.stderr}`);
  }
});

const tools = playbook({
  name: 'lab storage tools',
  plays: [
    play({
      name: 'storage hosts',
      hosts: 'storage',
      tasks: [pkg.task('RAID and target tools', { name: ['mdadm', 'targetcli-fb'], updateCache: true })],
    }),
    play({
      name: 'initiators',
      hosts: 'chunks',
      tasks: [
        pkg.task('initiator tools', { name: ['open-iscsi', 'multipath-tools', 'xfsprogs'], updateCache: true }),
        setting.task('replacement timeout', {
          path: '/etc/iscsi/iscsid.conf',
          settings: { 'node.session.timeo.replacement_timeout': 15, 'node.startup': 'automatic' },
        }),
      ],
    }),
  ],
});

test('the engine installs the storage tools from the lab repository, then re-runs with 0 changed', async (t) => {
  const inventory = await loadInventory(lab.inventoryFile);
  const check = await runPlaybook(tools, { inventory, check: true });
  t.is(check.exitCode, 0);
  const first = await runPlaybook(tools, { inventory });
  t.is(first.exitCode, 0, JSON.stringify(first.recap));
  const second = await runPlaybook(tools, { inventory });
  t.is(second.exitCode, 0);
  for (const [host, r] of Object.entries(second.recap)) t.is(r.changed, 0, `${host} changed on the second run`);
  for (const rt of lab.vms) {
    const c = await conn(rt.spec.name);
    const want = rt.spec.groups.includes('storage') ? 'mdadm targetcli' : rt.spec.groups.includes('chunks') ? 'iscsiadm multipath mkfs.xfs' : '';
    if (want === '') continue;
    const r = await c.exec(sh`for t in ${want.split(' ')}; do command -v "$t" >/dev/null || echo "missing $t"; done`);
    t.is(r.stdout, '', rt.spec.name);
  }
});

test('a VM reboots from its own boot loader, kernel and initramfs', async (t) => {
  const rt = lab.vms.find((v) => v.spec.groups.includes('chunks')) ?? lab.vms[0];
  if (!rt) return t.fail('no VM');
  const c = await conn(rt.spec.name);
  const cmdline = (await c.exec(sh`cat /proc/cmdline`)).stdout;
  t.regex(cmdline, /BOOT_IMAGE=\/boot\/vmlinuz-/, 'booted by GRUB from its own disk');
  await conns.drop(rt.spec.name);
  const ms = await rebootVm(lab, rt.spec.name);
  t.log(`${rt.spec.name} rebooted in ${Math.round(ms / 1000)} s`);
  const after = await conn(rt.spec.name);
  t.is((await after.exec(sh`hostname`)).stdout.trim(), rt.spec.name);
});
