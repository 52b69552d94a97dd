/**
 * KVM where it works (a user's laptop), software emulation otherwise (here: /dev/kvm exists but is a
 * PVM-only backend on which a stock guest aborts with "failed to set MSR" or hangs, see LAB.md). The probe
 * boots SeaBIOS under KVM for a few seconds and looks for its banner on the debug port, then boots the lab's
 * own Linux kernel under KVM with no root disk and waits for its panic ("VFS: Unable to mount root fs"): only
 * a KVM that runs Linux to the end of its start-up passes. SeaBIOS alone is not enough: on one machine of this
 * kind it ran, and then the kernel hung without a line on its console (image build, 2026-12-08), where software
 * emulation reaches the panic in about 2 s. Without a kernel to try, software emulation.
 * SANBOOK_LAB_ACCEL=kvm|tcg forces the choice.
 */
import { spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Accel = 'kvm' | 'tcg';

export function accelArgs(accel: Accel): string[] {
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi,tb-size=128', '-cpu', 'max'];
}

/**
 * Start a QEMU that writes to `log` (a file in a fresh temp dir, which `argsFor` names) and wait until the log
 * shows `seen`, QEMU exits, or timeoutMs; QEMU is killed if still running. True when the log showed it.
 */
async function qemuShows(argsFor: (log: string) => string[], seen: (text: string) => boolean, timeoutMs: number): Promise<boolean> {
  const dir = await mkdtemp(join(tmpdir(), 'sanbook-accel-probe-'));
  const log = join(dir, 'qemu.log');
  const shown = async (): Promise<boolean> => seen(await readFile(log, 'utf8').catch(() => ''));
  try {
    const child = spawn('qemu-system-x86_64', argsFor(log), { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + timeoutMs;
    let ok = false;
    while (!ok && Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
      ok = await shown();
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    // A QEMU that exits right after writing (a kernel's panic with panic=-1, -no-reboot): its last lines came with its exit.
    return ok || (await shown());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function kvmRunsGuestCode(timeoutMs: number): Promise<boolean> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return false;
  }
  return qemuShows(
    (log) => [...accelArgs('kvm'), '-m', '64', '-display', 'none', '-nodefaults', '-no-reboot', '-debugcon', `file:${log}`, '-global', 'isa-debugcon.iobase=0x402'],
    (text) => text.includes('SeaBIOS') && text.includes('Running on QEMU'),
    timeoutMs,
  );
}

/** Boot `kernel` with no disk: true when it gets to its panic over the missing root within timeoutMs. */
export function linuxBoots(accel: Accel, kernel: string, timeoutMs: number): Promise<boolean> {
  return qemuShows(
    (log) => [...accelArgs(accel), '-m', '256', '-smp', '1', '-display', 'none', '-nodefaults', '-no-reboot', '-serial', `file:${log}`,
      '-kernel', kernel, '-append', 'console=ttyS0 loglevel=4 panic=-1'],
    (text) => text.includes('Kernel panic - not syncing'),
    timeoutMs,
  );
}

/** KVM or software emulation, for VMs that boot `kernel` (the lab's own: without one, software emulation). */
export async function chooseAccel(kernel: string | undefined): Promise<Accel> {
  const forced = process.env['SANBOOK_LAB_ACCEL'];
  if (forced === 'kvm' || forced === 'tcg') return forced;
  if (forced !== undefined && forced !== '' && forced !== 'auto') {
    throw new Error(`SANBOOK_LAB_ACCEL must be kvm, tcg or auto, not "${forced}"`);
  }
  if (kernel === undefined || !(await kvmRunsGuestCode(5_000))) return 'tcg';
  return (await linuxBoots('kvm', kernel, 20_000)) ? 'kvm' : 'tcg';
}
