/**
 * One real OpenSSH server on loopback for a whole test file, and one connection to it: started before the
 * file's tests, closed and stopped after them (test/connection: batch, probe).
 */
import type { TestFn } from 'ava';
import { connectSsh, type SshConnection } from '../../lib/connection/ssh.ts';
import { startSshd, type TestSshd } from '../../lab/loopback/sshd.ts';

export interface SharedSshd {
  /** The connection (set once the file's `before` hook has run). */
  readonly ssh: SshConnection;
  readonly sshd: TestSshd;
}

export function sharedSshd(test: TestFn): SharedSshd {
  let sshd: TestSshd | undefined;
  let ssh: SshConnection | undefined;
  test.before(async () => {
    sshd = await startSshd();
    ssh = await connectSsh(sshd.sshOptions());
  });
  test.after.always(async () => {
    await ssh?.close();
    await sshd?.stop();
  });
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the shared ${what} is used before the before hook ran`);
    return value;
  };
  return {
    get ssh() {
      return started(ssh, 'SSH connection');
    },
    get sshd() {
      return started(sshd, 'sshd');
    },
  };
}
