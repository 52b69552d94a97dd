/**
 * iscsiadm: an open-iscsi initiator. Its name (/etc/iscsi/initiatorname.iscsi), iscsid.conf settings and
 * discovery CHAP, iscsid and the boot login service, and for each target the node records of its portals
 * (startup, CHAP, mutual CHAP) and the sessions: logged in, record only, or logged out and deleted.
 *
 * gather is one round trip (sections framed by blockdev.ts's sanbook_run: each keeps its exit code and
 * stderr): whether iscsiadm exists, the two files, `iscsiadm -m node`, the record files of the task's targets
 * (iscsiadm -m node -T -p masks the CHAP secrets; the files hold them), `iscsiadm -m session -P 3`, `lsblk -J`
 * (what uses the sessions' disks) and the systemd units. It changes nothing: a discovery writes records, so it
 * is a planned change (see iscsiadm/plan.ts and iscsiadm/commands.ts).
 */
import { cmd, raw, sh, type Command } from '../lib/command.ts';
import type { OsFamily } from '../lib/facts.ts';
import { defineModule } from '../lib/module.ts';
import { chapSchema as chapRules, type ChapRules } from './chap.ts';
import { SECTION_FUNCTION } from './blockdev.ts';
import { readFileCommand } from './copy.ts';
import { parseGather, type GatherLayout, type IscsiadmFacts } from './iscsiadm/parse.ts';
import { CONF_PATH, NAME_PATH, planIscsiadm, type IscsiadmParams } from './iscsiadm/plan.ts';
import { IQN_PATTERN } from './targetcli.ts';

export { planIscsiadm, diskUsers, type IscsiadmParams, type TargetParams as IscsiadmTargetParams } from './iscsiadm/plan.ts';
export { parseGather as parseIscsiadmGather, parseNodeList, parseRecord, parseSessions, parseInitiatorName, type IscsiadmFacts } from './iscsiadm/parse.ts';
export { explain as explainIscsiadmError, loginCommand, discoverCommand } from './iscsiadm/commands.ts';

/** Where the files and the record database are, and which unit logs in the automatic records at boot. */
export function layoutOf(family: OsFamily): GatherLayout {
  return {
    namePath: NAME_PATH,
    confPath: CONF_PATH,
    // Red Hat builds open-iscsi with its database in /var/lib/iscsi; upstream and Debian keep it in /etc/iscsi.
    nodesDir: family === 'redhat' ? '/var/lib/iscsi/nodes' : '/etc/iscsi/nodes',
    loginService: family === 'debian' ? 'open-iscsi.service' : 'iscsi.service',
  };
}

/** The one gather script: every part is a `sanbook_run TAG ...` section (blockdev.ts's splitSections reads them). */
export function gatherScript(p: IscsiadmParams, layout: GatherLayout, systemd: boolean): Command {
  const iqns = [...new Set((p.targets ?? []).map((t) => t.iqn))];
  const units = ['iscsid.service', 'iscsid.socket', layout.loginService];
  const unitScript = systemd
    ? sh`for u in ${units}; do printf '%s\\t%s\\t%s\\n' "$u" "$(systemctl is-enabled "$u" 2>/dev/null)" "$(systemctl is-active "$u" 2>/dev/null)"; done`
    : sh`:`;
  const records = iqns.length === 0 ? raw(':') : sh`for t in ${iqns}; do
  [ -d ${layout.nodesDir}/"$t" ] || continue
  find ${layout.nodesDir}/"$t" -type f | while IFS= read -r f; do sanbook_run "record $f" cat -- "$f"; done
done`;
  const lsblk = sh`lsblk -J -o NAME,KNAME,PATH,TYPE,MOUNTPOINTS 2>/dev/null || lsblk -J -o NAME,KNAME,TYPE,MOUNTPOINT`;
  return sh`${SECTION_FUNCTION}
sanbook_run which sh -c 'command -v iscsiadm'
sanbook_run uid id -u
sanbook_run name sh -c ${readFileCommand(layout.namePath).script}
sanbook_run conf sh -c ${readFileCommand(layout.confPath).script}
sanbook_run nodes ${cmd('iscsiadm', '-m', 'node')}
sanbook_run session ${cmd('iscsiadm', '-m', 'session', '-P', '3')}
sanbook_run lsblk sh -c ${lsblk.script}
sanbook_run units sh -c ${unitScript.script}
${records}
:`;
}

/** What later tasks read: the initiator, its sessions and its records (no secrets). */
export interface IscsiadmOutput {
  readonly initiatorName: string | null;
  readonly sessions: readonly { readonly target: string; readonly portal: string; readonly state: string; readonly disks: readonly string[] }[];
  /** Every node record; startup is known for the task's targets (null for others). */
  readonly records: readonly { readonly target: string; readonly portal: string; readonly startup: string | null }[];
}

const PORTAL = '^([0-9]{1,3}(\\.[0-9]{1,3}){3}|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?$';
const portals = (what: string) => ({ type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: PORTAL }, description: what });
const CHAP: ChapRules = { user: '^\\S+$', secret: '^\\S+$', note: "no blanks; it is on iscsiadm's command line, so briefly visible in the host's process list" };
const chapSchema = (what: string) => chapRules(what, CHAP);


export const iscsiadm = defineModule<IscsiadmParams, IscsiadmFacts, IscsiadmOutput>({
  name: 'iscsiadm',
  description:
    "open-iscsi initiator: initiator name, iscsid.conf, discovery (with CHAP), node records (startup, CHAP, mutual CHAP, compared from their files), logins and logouts; iscsiadm's exit codes become plain words.",
  examples: [
    {
      title: "Seed 000's chunk1: its IQN, failing I/O at once for multipath, one target on both storage networks with CHAP",
      params: {
        initiatorName: 'iqn.2024-12.tp2.b3:chunk1',
        settings: { 'node.session.timeo.replacement_timeout': 0, 'node.conn[0].timeo.login_timeout': 15, 'node.conn[0].timeo.noop_out_interval': 5 },
        discovery: { portals: ['10.3.1.1:3260', '10.3.2.1:3260'] },
        targets: [
          {
            iqn: 'iqn.2024-12.tp2.b3:data-chunk1',
            portals: ['10.3.1.1:3260', '10.3.2.1:3260'],
            chap: { user: 'chunk1', password: 'from-the-vault-1' },
          },
        ],
      },
    },
    {
      title: 'Log out of a target and forget it (refused while its disks are mounted or held, unless force)',
      params: { targets: [{ iqn: 'iqn.2024-12.tp2.b3:data-chunk2', state: 'absent' }] },
    },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      initiatorName: {
        type: 'string',
        pattern: IQN_PATTERN,
        description:
          "This host's IQN, written to /etc/iscsi/initiatorname.iscsi (the name the targets' ACLs list); iscsid is restarted to take it. Sessions already logged in keep the old name until they log in again. Not given: left as it is.",
      },
      settings: {
        type: 'object',
        // No CHAP keys here (they are secrets: discovery.chap, targets[].chap).
        propertyNames: { pattern: '^(?!.*\\.auth\\.)[a-z][A-Za-z0-9_.\\[\\]]*$' },
        additionalProperties: { type: ['string', 'number'], pattern: '^[^\\n\\r]*$' },
        description:
          'iscsid.conf key -> value (node.session.timeo.replacement_timeout, node.startup, iscsid.*). New node records take the node.* values; the task also applies node.* values to its targets\' records (the sessions take them at their next login). CHAP goes in discovery.chap and targets[].chap, not here.',
      },
      discovery: {
        type: 'object',
        additionalProperties: false,
        required: ['portals'],
        dependencies: { mutualChap: ['chap'] },
        description:
          'SendTargets discovery: when a wanted record is missing, each portal is asked (-o new: existing records are left as they are) and the records it offers that are not wanted are deleted again. Without it, missing records are made with iscsiadm -m node -o new.',
        properties: {
          portals: portals('Discovery portals, ip:port (port 3260 when left out).'),
          chap: chapSchema('Discovery CHAP (discovery.sendtargets.auth.* in iscsid.conf, mode 0600). Not given: left as it is.'),
          mutualChap: chapSchema('Mutual discovery CHAP: what the target answers with.'),
        },
      },
      targets: {
        type: 'array',
        default: [],
        description: "The task's targets. Records and sessions of other targets, and of portals not listed, are left alone.",
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['iqn'],
          dependencies: { mutualChap: ['chap'] },
          if: { properties: { state: { const: 'absent' } }, required: ['state'] },
          else: { properties: { portals: true }, required: ['portals'] },
          properties: {
            iqn: { type: 'string', pattern: IQN_PATTERN, description: 'Target IQN.' },
            portals: portals('Portals of the target to have a record of (and a session on, when loggedin), ip:port. absent: the portals to remove (default: all).'),
            chap: chapSchema('CHAP this initiator answers with (node.session.auth.username/password of its records). Not given: the records\' CHAP settings are left as they are.'),
            mutualChap: chapSchema('Mutual CHAP: what the target must answer (username_in/password_in). Left out with chap given: cleared.'),
            startup: { enum: ['automatic', 'manual'], default: 'automatic', description: 'node.startup: automatic records are logged in at boot (the task enables open-iscsi.service / iscsi.service for them).' },
            state: {
              enum: ['loggedin', 'present', 'absent'],
              default: 'loggedin',
              description:
                'loggedin: records and a session on each portal; present: records only (a session is left as it is); absent: logged out and records deleted (destructive when a disk of the session is mounted or held, e.g. by multipath).',
            },
          },
        },
      },
    },
  },
  async gather(conn, params, ctx) {
    const layout = layoutOf(ctx.facts.os.family);
    const r = await conn.exec(gatherScript(params, layout, ctx.facts.systemd));
    if (r.exitCode !== 0) throw new Error(`reading the iSCSI initiator's state failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseGather(r.stdout, layout, ctx.host);
  },
  plan: planIscsiadm,
  output(_params, f) {
    return {
      initiatorName: f.initiatorName,
      sessions: f.sessions.map((s) => ({ target: s.target, portal: s.portal, state: s.state, disks: [...s.disks] })),
      records: f.records.map((r) => ({
        target: r.target,
        portal: r.portal,
        startup: f.recordFiles.find((x) => x.target === r.target && x.portal === r.portal)?.values.get('node.startup') ?? null,
      })),
    };
  },
});
