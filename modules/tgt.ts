/**
 * tgt: iSCSI targets of the Linux SCSI target framework (package tgt, tgtd + tgt-admin), one conf file per
 * task in /etc/tgt/conf.d, applied to the running tgtd with `tgt-admin --update IQN` (see tgt/plan.ts for
 * what tgt-admin does and the traps the plan avoids: ALL bound by default, LUN order, in-use targets,
 * global CHAP accounts).
 *
 * gather is one round trip: the conf file (mode and base64 text), `tgtadm --op show --mode target`, the tgt
 * service's state, what each backing store is, and when ipv6Portal is given the systemd drop-in and tgtd's
 * portals. Nothing is changed on the host.
 */
import { Command, raw, sh } from '../lib/command.ts';
import { defineModule } from '../lib/module.ts';
import { chapSchema as chapRules, type ChapRules } from './chap.ts';
import { IQN_PATTERN } from './targetcli.ts';
import { MARK, parsePortals, parseShowTarget, splitGather } from './tgt/parse.ts';
import { planTgt } from './tgt/plan.ts';
import { confPath, DROP_IN, type TgtFacts, type TgtParams } from './tgt/wanted.ts';

export { planTgt, tgtAdmin, deleteAccount, dropSessions, addressAdmits } from './tgt/plan.ts';
export { parseShowTarget, parseConf, parsePortals, maskConf, splitGather, type TgtTarget, type TgtLun, type TgtSession } from './tgt/parse.ts';
export { wantedTargets, renderConf, confPath, DROP_IN, DROP_IN_TEXT, NO_PEER, type TgtParams, type TgtFacts, type TgtTargetParams, type ChapUser } from './tgt/wanted.ts';

/** CHAP words reach a shell inside tgt-admin (system() with one string) and Config::General: no blanks, quotes, #, $, globs. */
const CHAP_USER = '^[A-Za-z0-9._:@-]+$';
const CHAP_SECRET = '^[A-Za-z0-9._:@+%,/=-]+$';
const STORE_PATH = '^/[A-Za-z0-9._+:@,=/-]+$';
const ADDRESS = '^([0-9]{1,3}(\\.[0-9]{1,3}){3}(/([0-9]|[12][0-9]|3[0-2]))?|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*(/[0-9]{1,3})?)$';

const CHAP: ChapRules = { user: CHAP_USER, secret: CHAP_SECRET, note: 'a tgtd account: one password per user name on the host; it reaches a shell inside tgt-admin, so no blanks, quotes, #, $ or globs; the conf file is mode 0600' };
const chapSchema = (what: string) => chapRules(what, CHAP);

/** One round trip; every part starts with a "@@sanbook-tgt@@ NAME" line. */
export function gatherScript(p: TgtParams): Command {
  const conf = confPath(p.name);
  const stores = p.state === 'absent' ? [] : [...new Set((p.targets ?? []).flatMap((t) => t.backingStores ?? []))];
  const loop = stores.length === 0 ? raw(':') : sh`for p in ${stores}; do
  if [ -b "$p" ]; then echo "block $p"; elif [ -d "$p" ]; then echo "directory $p"; elif [ -e "$p" ]; then echo "file $p"; else echo "missing $p"; fi
done`;
  const portal = p.ipv6Portal === undefined ? raw(':') : sh`echo "$m dropin"
if [ -f ${DROP_IN} ]; then echo present; base64 -w0 -- ${DROP_IN}; echo; fi
echo "$m portals"
tgtadm --lld iscsi --op show --mode portal 2>/dev/null; :`;
  return sh`m=${MARK}
if ! command -v tgtadm >/dev/null 2>&1 || ! command -v tgt-admin >/dev/null 2>&1; then echo "$m missing"; exit 0; fi
echo "$m conf"
if [ -f ${conf} ]; then stat -c %a -- ${conf} && base64 -w0 -- ${conf} && echo || exit 1; fi
echo "$m show"
out=$(tgtadm --lld iscsi --op show --mode target 2>&1); echo "$?"; printf '%s\\n' "$out"
echo "$m active"
systemctl is-active tgt 2>/dev/null; :
echo "$m enabled"
systemctl is-enabled tgt 2>/dev/null; :
${portal}
echo "$m stores"
${loop}`;
}

/** The facts from the gather output. */
export function parseGather(stdout: string, p: TgtParams): TgtFacts {
  if (stdout.split('\n').includes(`${MARK} missing`)) throw new Error('tgt is not installed (no tgtadm/tgt-admin): install the tgt package first');
  const parts = splitGather(stdout, ['conf', 'show', 'active', 'enabled', 'stores', ...(p.ipv6Portal === undefined ? [] : ['dropin', 'portals'])]);
  const [mode = '', b64 = ''] = (parts['conf'] ?? '').split('\n');
  const show = parts['show'] ?? '';
  const nl = show.indexOf('\n');
  const rc = show.slice(0, nl < 0 ? undefined : nl).trim();
  const body = nl < 0 ? '' : show.slice(nl + 1);
  const stores: Record<string, string> = {};
  for (const line of (parts['stores'] ?? '').split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0) stores[line.slice(sp + 1)] = line.slice(0, sp);
  }
  const dropin = (parts['dropin'] ?? '').split('\n');
  return {
    conf: mode.trim() === '' ? null : { mode: mode.trim(), text: Buffer.from(b64.trim(), 'base64').toString('utf8') },
    running: rc === '0',
    error: rc === '0' ? '' : body.trim() || `tgtadm exited ${rc}`,
    targets: rc === '0' ? parseShowTarget(body) : [],
    service: { active: (parts['active'] ?? '').trim(), enabled: (parts['enabled'] ?? '').trim() },
    ...(p.ipv6Portal === undefined
      ? {}
      : { dropIn: dropin[0] === 'present' ? Buffer.from((dropin[1] ?? '').trim(), 'base64').toString('utf8') : null, portals: parsePortals(parts['portals'] ?? '') }),
    stores,
  };
}

/** What later tasks read: the task's targets as tgtd runs them (no secrets: account names only). */
export interface TgtOutput {
  readonly targets: readonly {
    readonly iqn: string;
    readonly tid: number;
    readonly luns: readonly { readonly lun: number; readonly path: string; readonly sizeMB: number }[];
    readonly acls: readonly string[];
    readonly accounts: readonly string[];
    readonly outgoingAccount: string | null;
    readonly sessions: readonly { readonly initiator: string; readonly address: string }[];
  }[];
}

export const tgt = defineModule<TgtParams, TgtFacts, TgtOutput>({
  name: 'tgt',
  description: 'iSCSI targets of tgt (tgtd): one conf file in /etc/tgt/conf.d, applied live with tgt-admin --update; ACLs without the ALL trap, CHAP, the tgt service.',
  examples: [
    {
      title: 'A tgt target for one initiator, by name, with CHAP (seeds 001 and 004)',
      params: {
        name: 'data1',
        targets: [
          {
            iqn: 'iqn.2024-12.tp2.b3:tgt-data1',
            backingStores: ['/dev/md/data1'],
            initiatorNames: ['iqn.2024-12.tp2.b3:chunk1'],
            incomingUsers: [{ user: 'chunk1', password: 'from-the-vault-1' }],
          },
        ],
      },
    },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$', maxLength: 100, description: 'The conf file this task owns: /etc/tgt/conf.d/NAME.conf (NAME without .conf).' },
      state: {
        enum: ['present', 'absent'],
        default: 'present',
        description: 'present: the file holds exactly these targets and tgtd runs them (targets dropped from the file are deleted); absent: the file is removed and its targets (and the listed ones) deleted.',
      },
      targets: {
        type: 'array',
        default: [],
        description: 'The targets of the file. A target an initiator is logged in to has its sessions dropped before it is rebuilt (they log in again); a change of its LUNs or CHAP accounts, or an ACL that shuts a logged-in initiator out, is destructive.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['iqn'],
          properties: {
            iqn: { type: 'string', pattern: IQN_PATTERN, description: 'Target IQN, iqn.YYYY-MM.reversed.domain:name.' },
            backingStores: {
              type: 'array',
              default: [],
              uniqueItems: true,
              items: { type: 'string', pattern: STORE_PATH },
              description: 'Block devices or files, exported as LUN 1, 2, ... in this order (LUN 0 is the controller tgt adds). Required when present.',
            },
            initiatorNames: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: IQN_PATTERN }, description: 'Initiator IQNs allowed in (initiator-name).' },
            initiatorAddresses: {
              type: 'array',
              uniqueItems: true,
              items: { type: 'string', pattern: ADDRESS },
              description:
                'Initiator addresses or CIDRs allowed in (initiator-address). tgtd admits an initiator matching an address OR a name. Names without addresses get initiator-address 0.0.0.0/32, an address no peer has: otherwise tgt-admin binds ALL and any initiator gets in.',
            },
            incomingUsers: { type: 'array', items: chapSchema('A CHAP account the initiators log in with (incominguser).'), description: 'CHAP accounts (incominguser): when given, initiators must answer CHAP.' },
            outgoingUser: chapSchema('Mutual CHAP: the account the target answers with (outgoinguser; username_in/password_in on the initiator).'),
            allowAll: {
              type: 'boolean',
              description:
                'Allow every initiator (initiator-address ALL). Required to give neither initiatorNames nor initiatorAddresses, because tgt-admin then binds ALL anyway: say it on purpose. Names and addresses then admit nobody extra.',
            },
          },
        },
      },
      ipv6Portal: {
        type: 'boolean',
        description:
          'tgtd listens on 0.0.0.0:3260 and [::]:3260 by default. false: a systemd drop-in removes the [::]:3260 portal after tgt starts (as seed 001 did) and it is removed live now; true: the drop-in is removed and [::]:3260 added live if missing. Not given: left as it is.',
      },
    },
  },
  async gather(conn, params, ctx) {
    if (!ctx.facts.systemd) throw new Error(`tgt: systemd is not running on ${ctx.host} (the module enables and starts tgt.service)`);
    const r = await conn.exec(gatherScript(params));
    if (r.exitCode !== 0) throw new Error(`reading tgt's state failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseGather(r.stdout, params);
  },
  plan: planTgt,
  output(params, facts) {
    const iqns = new Set((params.targets ?? []).map((t) => t.iqn));
    return {
      targets: facts.targets
        .filter((t) => iqns.has(t.iqn))
        .map((t) => ({
          iqn: t.iqn,
          tid: t.tid,
          luns: t.luns.filter((l) => l.lun !== 0).map((l) => ({ lun: l.lun, path: l.path ?? '', sizeMB: l.sizeMB })),
          acls: [...t.acls],
          accounts: [...t.accounts],
          outgoingAccount: t.outgoingAccount,
          sessions: t.sessions.flatMap((s) => (s.connections.length > 0 ? s.connections : [{ address: '' }]).map((c) => ({ initiator: s.initiator, address: c.address }))),
        })),
    };
  },
});
