/**
 * What lab/record*.ts share: run a command on a lab VM and keep its output as a fixture
 * `{ tool, host, command, exitCode, stdout, stderr }` under test/fixtures/, `tool` naming the version that
 * printed it. Parsers are tested on these, never on output typed by hand.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh, type Command } from '../lib/command.ts';
import type { SshConnection } from '../lib/connection/ssh.ts';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures');

export interface Fixture {
  readonly tool: string;
  readonly host: string;
  readonly command: string;
  /** What the command read on its standard input (a targetcli batch), when it read anything. */
  readonly stdin?: string;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class Recorder {
  constructor(
    readonly conn: SshConnection,
    readonly name: string,
  ) {}

  /** Run a command that must succeed (a setup step); its output is returned, not kept. */
  async must(command: Command, what: string): Promise<string> {
    const r = await this.conn.exec(command);
    if (r.exitCode !== 0) {
      throw new Error(`${this.name}: ${what} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n')}`);
    }
    return r.stdout;
  }

  /** First line of a version command's output (stdout or stderr: mdadm prints its version on stderr). */
  async version(command: Command): Promise<string> {
    const r = await this.conn.exec(command);
    return `${r.stdout}\n${r.stderr}`.trim().split('\n')[0] ?? '';
  }

  /** Run a command and keep what it printed as test/fixtures/FILE. `exits` are the exit codes expected. */
  async record(file: string, tool: string, command: Command, exits: readonly number[] = [0]): Promise<Fixture> {
    const r = await this.conn.exec(command);
    if (!exits.includes(r.exitCode)) {
      throw new Error(`${this.name}: recording ${file}: exit ${r.exitCode}, expected ${exits.join(' or ')}: ${r.stderr.trim()}`);
    }
    const stdin = command.stdin === undefined ? {} : { stdin: command.stdin.toString('utf8') };
    const fixture: Fixture = { tool, host: this.name, command: command.display, ...stdin, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    const path = join(FIXTURES, file);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, `${JSON.stringify(fixture, null, 2)}\n`);
    process.stdout.write(`${this.name} ${file}: exit ${r.exitCode}, ${r.stdout.length} bytes\n`);
    return fixture;
  }

  /** Install packages from the lab's repository (a no-op when they are there). */
  async install(packages: readonly string[]): Promise<void> {
    await this.must(
      sh`if ! dpkg-query -W -f '\${Status}\\n' ${packages} 2>/dev/null | grep -qv '^install ok installed$' && [ "$(dpkg-query -W -f '\${Status}\\n' ${packages} 2>/dev/null | wc -l)" -eq ${packages.length} ]; then exit 0; fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${packages} >/dev/null`,
      `install ${packages.join(' ')}`,
    );
  }
}

/** "PACKAGE VERSION" of an installed Debian package: the `tool` of a fixture. */
export function pkgVersion(r: Recorder, pkg: string): Promise<string> {
  return r.version(sh`dpkg-query -W -f '\${Package} \${Version}\\n' ${pkg}`);
}

/** Wait until a command succeeds (exit 0), polling every second, or fail naming what was awaited. */
export async function until(rec: Recorder, command: Command, what: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await rec.conn.exec(command);
    if (r.exitCode === 0) return;
    if (Date.now() > end) throw new Error(`${rec.name}: timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
