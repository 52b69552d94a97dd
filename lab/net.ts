/**
 * The lab's networks. The two storage networks are bridges inside a network namespace of the lab's own, with
 * no address, no route and no forwarding: guest traffic on them never leaves that namespace. Each VM has one
 * tap per storage network: QEMU attaches it in the host namespace, then it is moved into the lab's namespace
 * and enslaved to its bridge (an attached tap keeps working when moved). Management goes through QEMU's user
 * networking (restrict=on) with SSH forwarded on 127.0.0.1 only.
 */
import { run, tryRun } from './run.ts';
import { STORAGE_NETWORKS, type VmSpec } from './topology.ts';

export const NETNS = 'sanbook-lab';

export function tapName(vm: VmSpec, bridge: string): string {
  const name = `sbk-${vm.name}-${bridge}`;
  if (name.length > 15) throw new Error(`interface name ${name} is longer than 15 characters`);
  return name;
}

export async function netnsExists(): Promise<boolean> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').some((l) => l.split(' ')[0] === NETNS);
}

/** The namespace with its bridges (idempotent). */
export async function ensureNetwork(): Promise<void> {
  if (!(await netnsExists())) await run('ip', ['netns', 'add', NETNS]);
  await run('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up']);
  for (const net of STORAGE_NETWORKS) {
    if (!(await tryRun('ip', ['-n', NETNS, 'link', 'show', net.bridge]))) {
      await run('ip', ['-n', NETNS, 'link', 'add', net.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    }
    await run('ip', ['-n', NETNS, 'link', 'set', net.bridge, 'up']);
  }
}

/** Fresh taps for a VM in the host namespace, for QEMU to attach (stale ones from a crash are removed). */
export async function createTaps(vm: VmSpec): Promise<string[]> {
  const names: string[] = [];
  for (const net of STORAGE_NETWORKS) {
    const tap = tapName(vm, net.bridge);
    await tryRun('ip', ['link', 'del', tap]);
    await tryRun('ip', ['-n', NETNS, 'link', 'del', tap]);
    await run('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    names.push(tap);
  }
  return names;
}

/** Move a running VM's taps into the lab namespace and plug them into their bridges. */
export async function plugTaps(vm: VmSpec): Promise<void> {
  for (const net of STORAGE_NETWORKS) {
    const tap = tapName(vm, net.bridge);
    if (await tryRun('ip', ['link', 'show', tap])) await run('ip', ['link', 'set', tap, 'netns', NETNS]);
    await run('ip', ['-n', NETNS, 'link', 'set', tap, 'master', net.bridge, 'up']);
  }
}

/** Cut or restore one storage link of a VM (the failover test pulls a cable this way). */
export async function setLink(vm: VmSpec, bridge: string, up: boolean): Promise<void> {
  await run('ip', ['-n', NETNS, 'link', 'set', tapName(vm, bridge), up ? 'up' : 'down']);
}

/** Remove the namespace (its bridges and taps go with it) and any tap left in the host namespace. */
export async function destroyNetwork(vms: readonly VmSpec[]): Promise<void> {
  for (const vm of vms) for (const net of STORAGE_NETWORKS) await tryRun('ip', ['link', 'del', tapName(vm, net.bridge)]);
  if (await netnsExists()) await run('ip', ['netns', 'del', NETNS]);
}
