/**
 * The iscsiadm commands the plan runs that need more than one argv: the login and the discovery, each wrapped
 * in a script that turns iscsiadm's exit code into plain words on stderr (the runner puts a failed step's
 * stderr in the task's message), and the discovery's pruning of the records it added that are not wanted.
 *
 * Exit codes are iscsiadm(8)'s EXIT STATUS (open-iscsi usr/iscsi_err.h).
 */
import { cmd, Command, sh } from '../../lib/command.ts';
import type { Secret } from '../../lib/secret.ts';

export interface Where {
  /** Target IQN (absent for a discovery). */
  readonly target?: string;
  readonly portal: string;
  /** The initiator name the target sees. */
  readonly initiator: string;
}

/** What an iscsiadm exit code means for a login (or a discovery), in words. */
export function explain(code: number, w: Where): string {
  const what = w.target === undefined ? `discovery at ${w.portal}` : `the login to ${w.target} at ${w.portal}`;
  switch (code) {
    case 24:
      return w.target === undefined
        ? `the target at ${w.portal} refused discovery to this initiator (IQN ${w.initiator}): the discovery CHAP user/secret are missing or differ from the target's`
        : `the target ${w.target} refused this initiator (IQN ${w.initiator}) at ${w.portal}: its IQN is not in the target's ACL, or the CHAP user/secret differ`;
    case 8:
      return `${what} timed out: nothing answers at ${w.portal} (wrong address or port, a firewall, or the target does not listen there)`;
    case 4:
      return `${what} could not connect to ${w.portal} (connection refused or no route: is the target listening on this address? a firewall?)`;
    case 19:
      return `${what} was rejected for good (a non-retryable login error)${w.target === undefined ? '' : ': the target name is wrong, or the target is not served on this portal'}`;
    case 5:
      return `${what} failed (a generic iSCSI login failure): the target's log says why`;
    case 11:
      return `${what} failed: an iSCSI PDU timed out (the target at ${w.portal} stopped answering)`;
    case 12:
      return `${what} failed: the iSCSI TCP transport is not loaded in the kernel (modprobe iscsi_tcp)`;
    case 13:
      return `${what} failed: permission denied (iscsiadm must run as root: become: true)`;
    case 18:
    case 20:
      return `${what} failed: iscsiadm could not talk to iscsid, the iSCSI daemon (systemctl status iscsid)`;
    case 21:
      return `${what} failed: there is no node record for it`;
    case 29:
      return `${what} failed for now (iscsiadm says a retry may work)`;
    default:
      return `${what} failed: iscsiadm exited ${code}`;
  }
}

const KNOWN = [4, 5, 8, 11, 12, 13, 18, 19, 20, 21, 24, 29];

/** `case $rc in N) msg='...' ;; ... esac`: the message of each known exit code, every text quoted. */
function messageCase(w: Where): Command {
  const arms = KNOWN.reduce((script, code) => sh`${script}  ${code}) msg=${explain(code, w)} ;;\n`, sh``);
  return sh`case $rc in\n${arms}  *) msg="iscsiadm exited $rc" ;;\nesac`;
}

/**
 * `iscsiadm -m node -T T -p P --login`: exit 15 (already logged in) is success; any failure prints the plain
 * words first, then what iscsiadm said, and keeps iscsiadm's exit code.
 */
export function loginCommand(w: Required<Where>): Command {
  const login = cmd('iscsiadm', '-m', 'node', '-T', w.target, '-p', w.portal, '--login');
  const script = sh`out=$(${login} 2>&1); rc=$?
case $rc in 0|15) exit 0 ;; esac
${messageCase(w)}
printf '%s\\n%s\\n' "$msg" "$out" >&2
exit "$rc"`;
  return new Command(script.script, login.display, { okCodes: [0, 15] });
}

/** `-o update` of a node record: one iscsiadm call, one -n/-v pair per field (secrets masked in the display). */
export function updateCommand(target: string, portal: string, fields: readonly (readonly [string, string | Secret])[]): Command {
  return cmd('iscsiadm', '-m', 'node', '-T', target, '-p', portal, '-o', 'update', ...fields.flatMap(([n, v]) => ['-n', n, '-v', v]));
}

export interface DiscoverOptions {
  /** Discovery portals, ip:port. */
  readonly portals: readonly string[];
  /** "TARGET PORTAL" of every record the task wants (they are kept, and must exist afterwards). */
  readonly wanted: readonly string[];
  /** "TARGET PORTAL" of the records that were there before (never deleted). */
  readonly existing: readonly string[];
  readonly initiator: string;
}

/**
 * SendTargets discovery at each portal with `-o new`, which only adds the records that are missing (plain
 * `-m discovery` also rewrites existing records from iscsid.conf, losing their CHAP settings, and deletes the
 * ones no longer offered, even in use). A portal that fails is reported but the others still count.
 *
 * What a discovery returns is only known once it ran: a target bound to 0.0.0.0 offers every address of its
 * host (the management one too), and every target of the host is offered. So each portal's answer is pruned
 * right away: a record it offered that is neither wanted nor was there before is deleted. Then every wanted
 * record must exist, or the step fails naming what is missing.
 */
export function discoverCommand(o: DiscoverOptions): Command {
  const runs = o.portals.map((d) => {
    const discover = cmd('iscsiadm', '-m', 'discovery', '-t', 'sendtargets', '-p', d, '-o', 'new');
    return sh`out=$(${discover} 2>&1); rc=$?
if [ "$rc" -eq 0 ]; then prune ${d} || exit 1; else
${messageCase({ portal: d, initiator: o.initiator })}
errs="$errs
  $msg"
fi
`;
  });
  const script = sh`keep() { k=$1; shift; for w in "$@"; do [ "$w" = "$k" ] && return 0; done; return 1; }
prune() {
  printf '%s\\n' "$out" | while read -r portal target rest; do
    case $portal in *:*,*) ;; *) continue ;; esac
    case $target in iqn.*|eui.*|naa.*) ;; *) continue ;; esac
    p=\${portal%,*}
    if keep "$target $p" ${o.wanted} || keep "$target $p" ${o.existing}; then continue; fi
    if ! iscsiadm -m node -T "$target" -p "$p" -o delete >/dev/null 2>&1; then echo "could not delete the record of $target at $p" >&2; exit 1; fi
    echo "deleted the record of $target at $p (offered by $1, not wanted)"
  done
}
errs=
${runs.reduce((all, r) => sh`${all}${r}`, sh``)}missing=
for w in ${o.wanted}; do
  iscsiadm -m node -T "\${w% *}" -p "\${w#* }" >/dev/null 2>&1 || missing="$missing
  \${w% *} at \${w#* }"
done
if [ -n "$missing" ]; then printf 'after discovery at %s there is still no node record for:%s%s\\n' ${o.portals.join(', ')} "$missing" "$errs" >&2; exit 1; fi
if [ -n "$errs" ]; then printf 'some discoveries failed, but every wanted record is there:%s\\n' "$errs"; fi
exit 0`;
  return new Command(script.script, `iscsiadm -m discovery -t sendtargets -o new -p ${o.portals.join(' -p ')} (then delete what is not wanted)`);
}
