/**
 * The lab's machines: the network of seed 000 (sto1, sto2 with blank disks; chunk1..3; a MooseFS master),
 * with the seed's addresses on its two storage networks, or a smaller set for fast iterations.
 */
export interface VmSpec {
  readonly name: string;
  readonly memoryMiB: number;
  /** Blank data disks (sdb, sdc, ...), each dataDiskMiB. */
  readonly dataDisks: number;
  readonly dataDiskMiB: number;
  /** Last octet on both storage networks (10.3.1.X and 10.3.2.X). */
  readonly octet: number;
  readonly groups: readonly string[];
  /**
   * No disk at all: the VM boots from the network (iPXE in its first NIC's ROM, QEMU's built-in DHCP and TFTP
   * hand it the lab's boot script) and finds its root on an iSCSI target. `lab up` prepares it but does not
   * start it; `lab start NAME` does, once a playbook has built what it boots from.
   */
  readonly diskless?: boolean;
}

/** The two storage networks of seed 000: one bridge each, inside the lab's network namespace. */
export const STORAGE_NETWORKS = [
  { bridge: 's1', prefix: '10.3.1', mask: 24 },
  { bridge: 's2', prefix: '10.3.2', mask: 24 },
] as const;

const sto = (n: number): VmSpec => ({ name: `sto${n}`, memoryMiB: 512, dataDisks: 10, dataDiskMiB: 512, octet: n, groups: ['storage'] });
const chunk = (n: number): VmSpec => ({ name: `chunk${n}`, memoryMiB: 512, dataDisks: 0, dataDiskMiB: 0, octet: 100 + n, groups: ['chunks'] });
// 1.5 GiB: mfsmaster holds ~500 MiB and the MooseFS client mount (mfsmount) on the same VM ~270 MiB; with 1 GiB
// the san playbook's re-run found the master (no swap) thrashing (19 MiB available, mfscli timed out).
const master: VmSpec = { name: 'master', memoryMiB: 1536, dataDisks: 0, dataDiskMiB: 0, octet: 100, groups: ['master'] };

// The diskless client of seed 002: 768 MiB (the initramfs unpacks into RAM; a 1 GiB root over iSCSI).
const diskless = (n: number): VmSpec => ({ name: `dl${n}`, memoryMiB: 768, dataDisks: 0, dataDiskMiB: 0, octet: 50 + n, groups: ['diskless'], diskless: true });

export const TOPOLOGIES: Readonly<Record<string, readonly VmSpec[]>> = {
  /** Seed 000: six machines. */
  full: [sto(1), sto(2), chunk(1), chunk(2), chunk(3), master],
  /** Both storage hosts, one chunk host (it reaches a target on each, over both networks) and the master. */
  small: [sto(1), sto(2), chunk(1), master],
  /** Seed 002: a storage host that builds and exports a root volume, and a diskless client that boots from it. */
  boot: [sto(1), diskless(1)],
};

export function topology(name: string): readonly VmSpec[] {
  const t = TOPOLOGIES[name];
  if (!t) throw new Error(`unknown lab topology "${name}": choose ${Object.keys(TOPOLOGIES).join(' or ')}`);
  return t;
}

/** Deterministic MAC per VM and NIC: 52:54:00 (QEMU) : 5b (sanbook) : VM octet : NIC index. */
export function macOf(vm: VmSpec, nic: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return `52:54:00:5b:${hex(vm.octet)}:${hex(nic)}`;
}

export function storageAddresses(vm: VmSpec): string[] {
  return STORAGE_NETWORKS.map((n) => `${n.prefix}.${vm.octet}`);
}
