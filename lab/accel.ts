/**
 * KVM where it works (a user's laptop), software emulation otherwise (here: /dev/kvm exists but is a
 * PVM-only backend on which a stock guest aborts with "failed to set MSR" or hangs, see LAB.md). The probe
 * boots SeaBIOS under KVM for a few seconds and looks for its banner on the debug port: only a KVM that
 * really runs guest code passes. SANBOOK_LAB_ACCEL=kvm|tcg forces the choice.
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

async function kvmRunsGuestCode(timeoutMs: number): Promise<boolean> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return false;
  }
  const dir = await mkdtemp(join(tmpdir(), 'sanbook-kvm-probe-'));
  const log = join(dir, 'debugcon.log');
  try {
    const child = spawn(
      'qemu-system-x86_64',
      ['-accel', 'kvm', '-cpu', 'host', '-m', '64', '-display', 'none', '-nodefaults', '-no-reboot', '-debugcon', `file:${log}`, '-global', 'isa-debugcon.iobase=0x402'],
      { stdio: 'ignore' },
    );
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + timeoutMs;
    let ok = false;
    while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
      const text = await readFile(log, 'utf8').catch(() => '');
      if (text.includes('SeaBIOS') && text.includes('Running on QEMU')) {
        ok = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    return ok;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function chooseAccel(): Promise<Accel> {
  const forced = process.env['SANBOOK_LAB_ACCEL'];
  if (forced === 'kvm' || forced === 'tcg') return forced;
  if (forced !== undefined && forced !== '' && forced !== 'auto') {
    throw new Error(`SANBOOK_LAB_ACCEL must be kvm, tcg or auto, not "${forced}"`);
  }
  return (await kvmRunsGuestCode(5_000)) ? 'kvm' : 'tcg';
}
