/** SSH connections to the lab's VMs for a test file: opened on first use, reused, closed together. */
import type { SshConnection } from '../../lib/connection/ssh.ts';
import type { Lab } from '../../lab/lab.ts';
import { sshTo } from '../../lab/vm.ts';

/** A task's end on one host, as the lab tests collect it from the runner's host:end events. */
export interface Ended {
  host: string;
  task: string;
  status: string;
  changes: string[];
  message?: string;
}

export interface LabConnections {
  get(name: string): Promise<SshConnection>;
  /** Forget a VM's connection (it is rebooting): the next get() opens a new one. */
  drop(name: string): Promise<void>;
  closeAll(): Promise<void>;
}

export function labConnections(lab: () => Lab): LabConnections {
  const open = new Map<string, SshConnection>();
  return {
    async get(name) {
      let c = open.get(name);
      if (!c) {
        const rt = lab().vms.find((v) => v.spec.name === name);
        if (!rt) throw new Error(`no VM ${name} in the lab`);
        c = await sshTo(rt, lab().paths);
        open.set(name, c);
      }
      return c;
    },
    async drop(name) {
      await open.get(name)?.close();
      open.delete(name);
    },
    async closeAll() {
      await Promise.all([...open.values()].map((c) => c.close()));
      open.clear();
    },
  };
}
