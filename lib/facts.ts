/**
 * Host facts every module may need (which package manager, is systemd running, who am I), gathered once
 * per host per run in a single round trip.
 */
import { sh } from './command.ts';
import type { Connection } from './connection/types.ts';

export type OsFamily = 'debian' | 'redhat' | 'arch' | 'suse' | 'alpine' | 'other';
export type PackageManager = 'apt' | 'dnf' | 'yum' | 'pacman' | 'zypper' | 'apk' | null;

export interface HostFacts {
  os: {
    /** ID from /etc/os-release (debian, ubuntu, rocky, ...) */
    id: string;
    /** ID_LIKE words plus ID */
    like: readonly string[];
    versionId: string;
    prettyName: string;
    family: OsFamily;
  };
  kernel: string;
  arch: string;
  uid: number;
  user: string;
  hostname: string;
  packageManager: PackageManager;
  /** systemd is PID 1 (systemctl start/enable work) */
  systemd: boolean;
}

const SEP = '@@sanbook-facts@@';

/**
 * One round trip, and as few programs as the host allows: every program started costs a host a few
 * milliseconds of CPU (most of what this read costs), so the files are read by the shell's own `read`, and the
 * kernel's release, architecture and host name come from /proc/sys/kernel (`arch` since Linux 6.1; uname
 * otherwise). Only `id` runs (the user's name needs the host's user database); its `uid=N(name)` is cut by
 * the shell. The output is the same lines the earlier `cat; uname -r; uname -m; id -u; id -un; hostname`
 * printed, except that a user without a name gets an empty line (id -un printed nothing, shifting the
 * host name into the user's place).
 */
export const hostFactsCommand = sh`{ while IFS= read -r l || [ -n "$l" ]; do printf '%s\\n' "$l"; done < /etc/os-release; } 2>/dev/null; echo ${SEP}
{ read -r k < /proc/sys/kernel/osrelease && echo "$k"; } 2>/dev/null || uname -r
{ read -r a < /proc/sys/kernel/arch && echo "$a"; } 2>/dev/null || uname -m
i=$(id); u=\${i#uid=}; echo "\${u%%[!0-9]*}"; case $u in *'('*) u=\${u#*'('}; echo "\${u%%')'*}";; *) echo;; esac
{ read -r h < /proc/sys/kernel/hostname && echo "$h"; } 2>/dev/null || hostname
echo ${SEP}; for p in apt-get dnf yum pacman zypper apk; do command -v "$p" >/dev/null 2>&1 && echo "$p"; done; echo ${SEP}; [ -d /run/systemd/system ] && echo systemd; :`;

/** Parse /etc/os-release (KEY=value, values optionally quoted). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m || m[1] === undefined || m[2] === undefined) continue;
    let v = m[2];
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) {
      v = v.slice(1, -1).replace(/\\(["'$`\\])/g, '$1');
    }
    out[m[1]] = v;
  }
  return out;
}

function familyOf(ids: readonly string[]): OsFamily {
  const has = (...names: string[]) => names.some((n) => ids.includes(n));
  if (has('debian', 'ubuntu')) return 'debian';
  if (has('rhel', 'fedora', 'centos', 'rocky', 'almalinux')) return 'redhat';
  if (has('arch')) return 'arch';
  if (has('suse', 'opensuse')) return 'suse';
  if (has('alpine')) return 'alpine';
  return 'other';
}

export function parseHostFacts(stdout: string): HostFacts {
  const [osText = '', sysText = '', pmText = '', initText = ''] = stdout.split(`${SEP}\n`);
  const os = parseOsRelease(osText);
  const [kernel = '', arch = '', uid = '-1', user = '', hostname = ''] = sysText.split('\n').map((s) => s.trim());
  const id = os['ID'] ?? 'unknown';
  const like = [id, ...(os['ID_LIKE'] ?? '').split(/\s+/).filter(Boolean)];
  const managers = pmText.split('\n').map((s) => s.trim());
  const pm: PackageManager = managers.includes('apt-get')
    ? 'apt'
    : managers.includes('dnf')
      ? 'dnf'
      : managers.includes('yum')
        ? 'yum'
        : managers.includes('pacman')
          ? 'pacman'
          : managers.includes('zypper')
            ? 'zypper'
            : managers.includes('apk')
              ? 'apk'
              : null;
  return {
    os: {
      id,
      like,
      versionId: os['VERSION_ID'] ?? '',
      prettyName: os['PRETTY_NAME'] ?? id,
      family: familyOf(like),
    },
    kernel,
    arch,
    uid: Number.parseInt(uid, 10),
    user,
    hostname,
    packageManager: pm,
    systemd: initText.trim() === 'systemd',
  };
}

export async function gatherHostFacts(conn: Connection): Promise<HostFacts> {
  const r = await conn.exec(hostFactsCommand);
  return parseHostFacts(r.stdout);
}
