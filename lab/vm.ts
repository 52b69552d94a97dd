/**
 * One lab VM: its disks (a copy-on-write overlay of the base image, blank data disks), its identity passed by
 * QEMU's fw_cfg (hostname, addresses, SSH keys, apt source: the image stays generic), the QEMU process
 * (daemonized, serial console to a file, a monitor socket), and waiting for it over real SSH.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { connectSsh, type SshConnection } from '../lib/connection/ssh.ts';
import { sh } from '../lib/command.ts';
import { accelArgs, type Accel } from './accel.ts';
import { createTaps, plugTaps, tapName } from './net.ts';
import { netmask } from '../playbooks/iscsi-boot/vars.ts';
import { run } from './run.ts';
import { STORAGE_NETWORKS, macOf, storageAddresses, type VmSpec } from './topology.ts';

/** Where guests reach the local package repository (forwarded by QEMU to the host's loopback). */
export const REPO_GUEST_ADDRESS = '10.0.2.100';

export interface LabPaths {
  /** .lab/ of the project */
  readonly root: string;
  readonly clientKey: string;
  readonly knownHosts: string;
}

export interface VmRuntime {
  readonly spec: VmSpec;
  readonly dir: string;
  readonly sshPort: number;
  readonly pidFile: string;
  readonly consoleLog: string;
  readonly monitor: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 ...` */
  readonly hostKeyLine: string;
  /** Data disks as the guest names them, and by a stable id. */
  readonly dataDiskIds: readonly string[];
}

export function vmDir(paths: LabPaths, vm: VmSpec): string {
  return join(paths.root, 'vms', vm.name);
}

/** Disks, identity files and host key of a VM (made once; kept while the lab exists). */
export async function prepareVm(paths: LabPaths, vm: VmSpec, baseImage: string, sshPort: number): Promise<VmRuntime> {
  const dir = vmDir(paths, vm);
  await mkdir(dir, { recursive: true });
  const root = join(dir, 'root.qcow2');
  if (vm.diskless) await writeBootFiles(dir, vm);
  else if (!existsSync(root)) await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', baseImage, root]);
  for (let i = 1; i <= vm.dataDisks; i++) {
    const disk = join(dir, `data${i}.qcow2`);
    if (!existsSync(disk)) await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, `${vm.dataDiskMiB}M`]);
  }
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  if (!existsSync(hostKey)) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${vm.name}`, '-f', hostKey]);
  const network = [
    `${macOf(vm, 0)} dhcp`,
    ...STORAGE_NETWORKS.map((n, i) => `${macOf(vm, i + 1)} ${storageAddresses(vm)[i]}/${n.mask}`),
  ];
  await writeFile(join(dir, 'network'), `${network.join('\n')}\n`);
  return loadVm(paths, vm, sshPort);
}

/** The boot server of the lab's diskless VMs: sto1, on the first storage network (seed 002's "MyPXE" host). */
export const BOOT_SERVER = `${STORAGE_NETWORKS[0].prefix}.1`;
/** Where a boot server keeps each client's iPXE script: sanbook/52-54-00-5b-33-01.ipxe (the boot NIC's MAC). */
export const BOOT_SCRIPT_DIR = 'sanbook';

/**
 * What a site's DHCP server would hand a diskless machine, served by QEMU's built-in TFTP (slirp): an iPXE
 * script that gives the boot NIC (the first storage network's, net1) its address and chains to the client's
 * script on the boot server, which a playbook writes. And SeaBIOS's serial console (fw_cfg etc/sercon-port =
 * 0x3f8) so that the firmware's and iPXE's messages reach the console log.
 */
async function writeBootFiles(dir: string, vm: VmSpec): Promise<void> {
  const tftp = join(dir, 'tftp');
  await mkdir(tftp, { recursive: true });
  const [address] = storageAddresses(vm);
  const mask = STORAGE_NETWORKS[0].mask;
  await writeFile(
    join(tftp, 'boot.ipxe'),
    [
      '#!ipxe',
      `# ${vm.name}: the lab's "site DHCP" (lab/vm.ts). The boot NIC gets its address, then the boot server's script for its MAC.`,
      `set net1/ip ${address}`,
      `set net1/netmask ${netmask(mask)}`,
      'ifopen net1',
      `chain tftp://${BOOT_SERVER}/${BOOT_SCRIPT_DIR}/\${net1/mac:hexhyp}.ipxe || shell`,
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'sercon-port'), Buffer.from([0xf8, 0x03]));
}

/** A prepared VM's runtime description (reads its host key). */
export async function loadVm(paths: LabPaths, vm: VmSpec, sshPort: number): Promise<VmRuntime> {
  const dir = vmDir(paths, vm);
  const [type, blob] = (await readFile(join(dir, 'ssh_host_ed25519_key.pub'), 'utf8')).trim().split(/\s+/);
  const serial = (i: number): string => `${vm.name}-d${i}`;
  return {
    spec: vm,
    dir,
    sshPort,
    pidFile: join(dir, 'qemu.pid'),
    consoleLog: join(dir, 'console.log'),
    monitor: join(dir, 'monitor.sock'),
    hostKeyLine: `[127.0.0.1]:${sshPort} ${type} ${blob}`,
    dataDiskIds: Array.from({ length: vm.dataDisks }, (_, i) => `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_${serial(i + 1)}`),
  };
}

export function qemuArgs(rt: VmRuntime, accel: Accel, paths: LabPaths, repoPort: number): string[] {
  const vm = rt.spec;
  const args = [
    '-name', vm.name,
    ...accelArgs(accel),
    '-smp', '1',
    '-m', String(vm.memoryMiB),
    '-display', 'none',
    '-daemonize',
    '-pidfile', rt.pidFile,
    '-serial', `file:${rt.consoleLog}`,
    '-monitor', `unix:${rt.monitor},server=on,wait=off`,
  ];
  if (!vm.diskless) {
    args.push(
      '-device', 'virtio-scsi-pci,id=scsi0',
      // cache=unsafe: the guest's flushes (dpkg's fsyncs, journald) stay in the host's page cache. A lab VM's disks are
      // thrown away with it, and a reboot from inside keeps the same QEMU process, so nothing a test sees changes.
      '-drive', `file=${join(rt.dir, 'root.qcow2')},if=none,id=root,format=qcow2,cache=unsafe`,
      '-device', 'scsi-hd,drive=root,bus=scsi0.0,serial=sanbook-root,bootindex=0',
    );
  }
  for (let i = 1; i <= vm.dataDisks; i++) {
    args.push('-drive', `file=${join(rt.dir, `data${i}.qcow2`)},if=none,id=d${i},format=qcow2,cache=unsafe`);
    args.push('-device', `scsi-hd,drive=d${i},bus=scsi0.0,serial=${vm.name}-d${i}`);
  }
  // Management: SSH on the host's loopback only; the package repository reached through a forward; nothing else.
  const repo = `guestfwd=tcp:${REPO_GUEST_ADDRESS}:80-cmd:socat - TCP:127.0.0.1:${repoPort}`;
  // A diskless VM network-boots from its first NIC (iPXE's ROM; slirp's DHCP names the boot script, slirp's TFTP
  // serves it); the other NICs carry no ROM, so the firmware offers one boot device. PCI slots are fixed so that
  // iPXE's net0/net1/net2 and Linux's eth0/eth1/eth2 are the same NICs.
  const boot = vm.diskless ? `,tftp=${join(rt.dir, 'tftp')},bootfile=boot.ipxe` : '';
  args.push('-netdev', `user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:${rt.sshPort}-:22,${repo}${boot}`);
  // NIC0 keeps QEMU's own ROM for it (iPXE, from ipxe-qemu): naming the file (romfile=pxe-virtio.rom or even the
  // default efi-virtio.rom) left the firmware with no network boot device on this QEMU 7.2.
  const nic = (i: number) => (vm.diskless ? `,addr=0x${(3 + i).toString(16)},${i === 0 ? 'bootindex=0' : 'romfile='}` : '');
  args.push('-device', `virtio-net-pci,netdev=mgmt,mac=${macOf(vm, 0)}${nic(0)}`);
  STORAGE_NETWORKS.forEach((n, i) => {
    args.push('-netdev', `tap,id=${n.bridge},ifname=${tapName(vm, n.bridge)},script=no,downscript=no`);
    args.push('-device', `virtio-net-pci,netdev=${n.bridge},mac=${macOf(vm, i + 1)}${nic(i + 1)}`);
  });
  if (vm.diskless) args.push('-fw_cfg', `name=etc/sercon-port,file=${join(rt.dir, 'sercon-port')}`);
  const fw = (name: string, source: string): string[] => ['-fw_cfg', `name=opt/sanbook/${name},${source}`];
  args.push(
    ...fw('hostname', `string=${vm.name}`),
    ...fw('network', `file=${join(rt.dir, 'network')}`),
    ...fw('authorized_keys', `file=${paths.clientKey}.pub`),
    ...fw('ssh_host_ed25519_key', `file=${join(rt.dir, 'ssh_host_ed25519_key')}`),
    ...fw('apt_source', `string=deb [trusted=yes] http://${REPO_GUEST_ADDRESS}/ ./`),
  );
  return args;
}

export async function qemuPid(rt: VmRuntime): Promise<number | undefined> {
  const text = await readFile(rt.pidFile, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    return cmdline.includes(rt.pidFile) ? pid : undefined; // a recycled PID is not our QEMU
  } catch {
    return undefined;
  }
}

/** Start QEMU (daemonized: it returns once the VM exists), then plug its taps into the storage bridges. */
export async function startVm(rt: VmRuntime, accel: Accel, paths: LabPaths, repoPort: number): Promise<void> {
  await createTaps(rt.spec);
  await writeFile(rt.consoleLog, '');
  await run('qemu-system-x86_64', qemuArgs(rt, accel, paths, repoPort), { timeoutMs: 60_000 });
  await plugTaps(rt.spec);
}

export async function consoleTail(rt: VmRuntime, lines = 25): Promise<string> {
  const text = await readFile(rt.consoleLog, 'utf8').catch(() => '');
  // The serial console carries terminal escapes; keep the text.
  const clean = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  return clean.split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
}

export function sshTo(rt: VmRuntime, paths: LabPaths, connectTimeoutMs = 15_000): Promise<SshConnection> {
  return connectSsh({
    host: rt.spec.name,
    address: '127.0.0.1',
    port: rt.sshPort,
    user: 'root',
    privateKeyFile: paths.clientKey,
    agent: '',
    hostKeyChecking: 'strict',
    knownHostsFile: paths.knownHosts,
    connectTimeoutMs,
  });
}

/** Wait until the VM answers SSH as itself (its own host key, its own hostname); the error says what its console said. */
export async function waitForSsh(rt: VmRuntime, paths: LabPaths, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if ((await qemuPid(rt)) === undefined) {
      throw new Error(`${rt.spec.name}: QEMU is not running any more; its console said:\n${await consoleTail(rt)}`);
    }
    try {
      const conn = await sshTo(rt, paths, Math.min(15_000, Math.max(1_000, deadline - Date.now())));
      try {
        const r = await conn.exec(sh`hostname`);
        if (r.stdout.trim() === rt.spec.name) return;
        last = `it answers as "${r.stdout.trim()}"`;
      } finally {
        await conn.close();
      }
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 2_000));
  }
  throw new Error(
    `${rt.spec.name} did not answer SSH on 127.0.0.1:${rt.sshPort} within ${Math.round(timeoutMs / 1000)} s (${last}); its console said:\n${await consoleTail(rt)}`,
  );
}

/** Send a command to the QEMU monitor (system_reset, stop, cont, quit, ...). */
export function monitorCommand(rt: VmRuntime, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(rt.monitor);
    let out = '';
    sock.on('data', (d) => (out += d.toString()));
    sock.on('error', reject);
    sock.on('connect', () => {
      sock.write(`${command}\n`);
      setTimeout(() => sock.end(), 300);
    });
    sock.on('close', () => resolve(out));
  });
}

/** Stop a VM: ask QEMU to quit, then make sure the process is gone (by its PID). */
export async function stopVm(rt: VmRuntime): Promise<void> {
  const pid = await qemuPid(rt);
  if (pid === undefined) return;
  await monitorCommand(rt, 'quit').catch(() => undefined);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await qemuPid(rt)) !== undefined) await new Promise((r) => setTimeout(r, 100));
  if ((await qemuPid(rt)) !== undefined) process.kill(pid, 'SIGKILL');
}
