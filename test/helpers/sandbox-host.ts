/**
 * A real OpenSSH server on loopback whose commands cannot harm this machine, for tests that send hostile
 * strings through every module: sshd's ForceCommand runs each command
 *   - as `nobody` (setpriv, no capabilities) when the tests run as root: no device, no /etc, no kernel;
 *   - with PATH = a directory where every program of /usr/bin, /usr/sbin, /bin and /sbin, and the storage tools
 *     this machine lacks, is a stub that records its arguments and exits 0, printing nothing (or the reply set
 *     for that program). Real are only: `timeout` (every command's wrapping), the shells, `touch` and `rm` (so
 *     that a string breaking out of its quoting as `$(touch FILE)` or `; rm -f FILE` really creates or removes
 *     that file), and the plain file and text tools gathers read with (stat, cat, find, awk, mv, ...).
 * Programs named by an absolute path (/bin/sh) are the real ones, run as nobody.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type TestSshd } from '../../lab/loopback/sshd.ts';

/** Storage and service tools the modules call that this machine may not have (stubbed all the same). */
const TOOLS = [
  'mdadm', 'targetcli', 'iscsiadm', 'multipath', 'multipathd', 'mkfs.xfs', 'mkfs.ext4', 'xfs_admin', 'xfs_growfs',
  'sgdisk', 'parted', 'partprobe', 'wipefs', 'blkid', 'lsblk', 'blockdev', 'udevadm', 'firewall-cmd', 'tgtadm',
  'tgt-admin', 'mfsmaster', 'mfschunkserver', 'mfsmetalogger', 'mfscgiserv', 'mfsmount', 'mfscli', 'systemctl',
  'dpkg-query', 'dpkg', 'apt-get', 'dnf', 'rpm', 'update-initramfs', 'dracut', 'modprobe', 'mount', 'umount',
  'findmnt', 'iscsi-iname', 'sudo', 'ip', 'sysctl',
];
/**
 * The real programs: `timeout` (every command's wrapping), `touch` and `rm` (what a breakout would run), and the
 * plain file and text tools gathers read with (as nobody they can only write where nobody may).
 */
const REAL = [
  'timeout', 'touch', 'rm', 'stat', 'cat', 'base64', 'readlink', 'realpath', 'ls', 'find', 'grep', 'head', 'tail',
  'wc', 'sort', 'tr', 'cut', 'od', 'sha256sum', 'basename', 'dirname', 'awk', 'mawk', 'sed', 'xargs', 'mktemp', 'mv',
  'chmod', 'mkdir', 'ln', 'cp', 'cmp', 'date', 'sleep', 'seq', 'expr', 'tee', 'printf', 'echo', 'true', 'false',
  'test', '[', 'env', 'uname', 'sh', 'dash',
];

export interface SandboxHost {
  readonly sshd: TestSshd;
  /** Writable by the sandbox user: where the markers of a breakout appear. */
  readonly trapDir: string;
  /** Every stub call so far: program name and its arguments, byte for byte. */
  calls(): { program: string; args: string[] }[];
  stop(): Promise<void>;
}

const REAL_FOUND = (name: string): boolean => ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].some((d) => existsSync(join(d, name)));

function realPath(name: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) if (existsSync(join(dir, name))) return join(dir, name);
  throw new Error(`the sandbox host needs ${name}, which is not on this machine`);
}

/** Parse the stub log: records of `program` then `LEN:BYTES` per argument, each record ended by a NUL. */
export function parseCalls(log: Buffer): { program: string; args: string[] }[] {
  const out: { program: string; args: string[] }[] = [];
  let at = 0;
  while (at < log.length) {
    const space = log.indexOf(0x20, at);
    const program = log.subarray(at, space).toString('latin1');
    at = space + 1;
    const args: string[] = [];
    while (log[at] !== 0) {
      const colon = log.indexOf(0x3a, at);
      const len = Number(log.subarray(at, colon).toString('latin1'));
      args.push(log.subarray(colon + 1, colon + 1 + len).toString('utf8'));
      at = colon + 1 + len;
    }
    at++;
    out.push({ program, args });
  }
  return out;
}

export interface SandboxOptions {
  /** What a stub prints, by program name (default: nothing); e.g. `{ id: '0\\n' }` so gathers see root. */
  readonly replies?: Readonly<Record<string, string>>;
}

export async function startSandboxHost(options: SandboxOptions = {}): Promise<SandboxHost> {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sanbook-sandbox-')));
  chmodSync(dir, 0o755);
  const stubs = join(dir, 'stubs');
  const trapDir = join(dir, 'trap');
  mkdirSync(stubs);
  const replies = join(dir, 'replies');
  mkdirSync(replies);
  for (const [name, text] of Object.entries(options.replies ?? {})) writeFileSync(join(replies, name), text, { mode: 0o644 });
  mkdirSync(trapDir, { mode: 0o1777 });
  chmodSync(trapDir, 0o1777);
  const logFile = join(trapDir, 'calls.log');
  writeFileSync(logFile, '');
  chmodSync(logFile, 0o666);
  // The stub: `NAME ` then LEN:ARG for each argument, then a NUL; one write per call (O_APPEND).
  const stub = join(dir, 'stub');
  writeFileSync(
    stub,
    `#!/bin/sh\nr="\${0##*/} "\nfor a in "$@"; do r="$r\${#a}:$a"; done\nprintf '%s\\0' "$r" >> ${logFile}\n` +
      `[ -f ${replies}/"\${0##*/}" ] && ${realPath('cat')} ${replies}/"\${0##*/}"\nexit 0\n`,
    { mode: 0o755 },
  );
  const names = new Set(TOOLS);
  for (const d of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) if (existsSync(d)) for (const n of readdirSync(d)) if (/^[\w.+-]+$/.test(n)) names.add(n);
  for (const n of names) if (!(REAL.includes(n) && REAL_FOUND(n))) symlinkSync(stub, join(stubs, n));
  for (const n of REAL) if (REAL_FOUND(n)) symlinkSync(realPath(n), join(stubs, n));
  const asRoot = process.getuid?.() === 0;
  const drop = asRoot ? `${realPath('setpriv')} --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all ` : '';
  const wrapper = join(dir, 'force-command');
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec ${drop}${realPath('env')} -i PATH=${stubs} HOME=${trapDir} LC_ALL=C /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n`,
    { mode: 0o755 },
  );
  if (asRoot) chownSync(trapDir, 65534, 65534);
  const sshd = await startSshd({ extraConfig: [`ForceCommand ${wrapper}`] }).catch((e: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  return {
    sshd,
    trapDir,
    calls: () => parseCalls(readFileSync(logFile)),
    stop: async () => {
      await sshd.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
