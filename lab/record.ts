/**
 * Record real tool output from the lab VMs as test fixtures: `npx tsx lab/record.ts` (the lab must be up).
 * Each fixture is `{ tool, host, command, exitCode, stdout, stderr }`, `tool` naming the version that printed
 * it. Parsers are tested on these, never on output typed by hand.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { sh, type Command } from '../lib/command.ts';
import type { SshConnection } from '../lib/connection/ssh.ts';
import { showCommand } from '../modules/service.ts';
import { openLab } from './lab.ts';
import { sshTo } from './vm.ts';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(projectRoot, 'test', 'fixtures');

async function record(conn: SshConnection, file: string, tool: string, command: Command): Promise<void> {
  const r = await conn.exec(command);
  const path = join(fixtures, file);
  await mkdir(dirname(path), { recursive: true });
  const fixture = { tool, host: conn.host, command: command.display, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  await writeFile(path, `${JSON.stringify(fixture, null, 2)}\n`);
  process.stdout.write(`${file}: exit ${r.exitCode}, ${r.stdout.length} bytes\n`);
}

const lab = await openLab(projectRoot);
const sto1 = lab.vms.find((v) => v.spec.name === 'sto1');
if (!sto1) throw new Error('the lab has no sto1');
const conn = await sshTo(sto1, lab.paths);
try {
  const systemd = (await conn.exec(sh`systemctl --version | head -1`)).stdout.trim();
  const util = (await conn.exec(sh`lsblk --version`)).stdout.trim();
  // systemctl show, exactly as the service module gathers: running, stopped, masked, missing units.
  await conn.exec(sh`systemctl mask --now e2scrub_reap.service >/dev/null 2>&1; :`);
  await record(conn, 'service/running-enabled.json', systemd, showCommand('ssh'));
  await record(conn, 'service/stopped-static.json', systemd, showCommand('systemd-fsck-root'));
  await record(conn, 'service/masked.json', systemd, showCommand('e2scrub_reap.service'));
  await record(conn, 'service/not-found.json', systemd, showCommand('nosuchunit.service'));
  await conn.exec(sh`systemctl unmask e2scrub_reap.service >/dev/null 2>&1; :`);
  await record(conn, 'lsblk/sto1-blank-disks.json', util, sh`lsblk -J -b -o NAME,KNAME,PATH,SIZE,TYPE,FSTYPE,LABEL,UUID,PTTYPE,SERIAL,MOUNTPOINTS`);
} finally {
  await conn.close();
}
