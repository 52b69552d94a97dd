/**
 * targetcli: LIO iSCSI targets (backstores, targets, portals, LUNs, ACLs with CHAP and mutual CHAP, discovery
 * auth), made to match the task exactly and persisted with saveconfig.
 *
 * gather is one round trip: the running state from configfs (never `targetcli ls`), the saved configuration,
 * targetcli's preferences (they decide whether a new target gets a default portal) and whether the boot-time
 * restore service is enabled. All of a task's changes go to ONE targetcli invocation (python start-up costs
 * seconds per run), ending with saveconfig. Drift is corrected: a CHAP secret changed by hand, a removed ACL,
 * a LUN on the wrong backstore. Removing what an initiator is logged in to is destructive (refused unless
 * force).
 */
import { sh } from '../lib/command.ts';
import { defineModule } from '../lib/module.ts';
import { chapSchema as chapRules, type ChapRules } from './chap.ts';
import { configfsDumpCommand } from './targetcli/dump.ts';
import { emptyState, parseConfigfs, parseSaveconfig, pickledPref } from './targetcli/model.ts';
import { planTargetcli, type TargetcliFacts, type TargetcliParams } from './targetcli/plan.ts';
import { lioWwid } from './targetcli/wwn.ts';

export type { TargetcliFacts, TargetcliParams } from './targetcli/plan.ts';
export { planTargetcli } from './targetcli/plan.ts';
export { lioWwid, unitSerial } from './targetcli/wwn.ts';

/** IQN as RFC 3720 has it, with the reversed domain that targetcli insists on (iqn.2024-12.tp2.b3:data-chunk1). */
export const IQN_PATTERN = '^iqn\\.[0-9]{4}-(0[1-9]|1[0-2])\\.[a-z0-9-]+(\\.[a-z0-9-]+)+(:[A-Za-z0-9.:_-]+)?$';
/** CHAP user names and secrets go into a targetcli command line: no blanks, no quotes, no '='. */
const CHAP_WORD = '^[A-Za-z0-9._~:@+!%^*,/-]+$';

const CHAP: ChapRules = { user: CHAP_WORD, secret: CHAP_WORD, note: 'it goes into a targetcli command: no blanks, quotes or =' };
const chapSchema = (what: string) => chapRules(what, CHAP);

const SAVE = { debian: { path: '/etc/rtslib-fb-target/saveconfig.json', service: 'rtslib-fb-targetctl' }, redhat: { path: '/etc/target/saveconfig.json', service: 'target' } };
const MARK = '@@sanbook-targetcli@@';
const MISSING = '@@sanbook-targetcli-missing@@';

/** Split the gather output into its parts (configfs dump, saved JSON, prefs base64, is-enabled). */
export function splitGather(stdout: string): { configfs: string; saved: string; prefs: string; enabled: string } {
  const parts = stdout.split(`${MARK}\n`);
  if (parts.length !== 4) throw new Error(`targetcli gather: expected 4 parts, got ${parts.length}`);
  const [configfs = '', saved = '', prefs = '', enabled = ''] = parts;
  return { configfs, saved, prefs: prefs.trim(), enabled: enabled.trim() };
}

/** What later tasks read: the targets with their portals and who is logged in, and the backstores (no secrets). */
export interface TargetcliOutput {
  readonly targets: readonly { readonly iqn: string; readonly portals: readonly string[]; readonly sessions: readonly string[] }[];
  readonly backstores: readonly { readonly name: string; readonly type: string; readonly path: string; readonly wwn: string | null; readonly wwid: string | null }[];
}

export const targetcli = defineModule<TargetcliParams, TargetcliFacts, TargetcliOutput>({
  name: 'targetcli',
  description: 'LIO iSCSI targets: backstores, targets, portals, LUNs, ACLs with CHAP, discovery auth; persisted with saveconfig.',
  examples: [
    {
      title: "Seed 000's first target: a RAID array exported on both storage networks to one initiator with CHAP",
      params: {
        backstores: [{ name: 'data-chunk1', path: '/dev/md/data-chunk1' }],
        targets: [
          {
            iqn: 'iqn.2024-12.tp2.b3:data-chunk1',
            portals: [{ ip: '10.3.1.1' }, { ip: '10.3.2.1' }],
            luns: [{ backstore: 'data-chunk1' }],
            acls: [{ initiator: 'iqn.2024-12.tp2.b3:chunk1', chap: { user: 'chunk1', password: 'from-the-vault-1' } }],
          },
        ],
      },
    },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      state: { enum: ['present', 'absent'], default: 'present', description: 'present: make the listed objects exactly so; absent: delete the listed targets and backstores (by name).' },
      backstores: {
        type: 'array',
        default: [],
        description: 'Storage objects to export. Others on the host are left alone.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'path'],
          properties: {
            name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'Backstore name (LUNs refer to it).' },
            type: { enum: ['block', 'fileio'], default: 'block', description: 'block: a block device (/dev/md/data1); fileio: a file.' },
            path: { type: 'string', pattern: '^/[^\\s=]*$', description: 'The device (block) or file (fileio).' },
            size: { type: 'string', pattern: '^[0-9]+[KMGTkmgt]?$', description: 'fileio: the size of the file to create (64M, 10G); an existing file keeps its size.' },
            writeBack: { type: 'boolean', description: 'fileio: write-back caching (default false: write-through).' },
            wwn: {
              type: 'string',
              pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
              description:
                "The unit serial number (a UUID; unitSerial('sto1/data-chunk1') derives one from a name). Initiators see the WWID lioWwid(wwn) (36001405 + its first 25 hex digits), so multipath aliases can be written before the LUN exists. Default: LIO picks a random one. A backstore with another serial is re-created.",
            },
          },
        },
      },
      targets: {
        type: 'array',
        default: [],
        description: 'iSCSI targets (TPG 1), each made exactly as listed: unlisted portals, LUNs and ACLs of a listed target are removed.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['iqn'],
          properties: {
            iqn: { type: 'string', pattern: IQN_PATTERN, description: 'Target IQN, iqn.YYYY-MM.reversed.domain:name.' },
            portals: {
              type: 'array',
              description: 'Addresses to listen on (default: 0.0.0.0:3260, every address; prefer the storage addresses).',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['ip'],
                properties: {
                  ip: { type: 'string', pattern: '^[0-9a-fA-F.:]+$', description: 'IPv4 or IPv6 address (0.0.0.0 for all).' },
                  port: { type: 'integer', minimum: 1, maximum: 65535, default: 3260, description: 'TCP port.' },
                },
              },
            },
            luns: {
              type: 'array',
              default: [],
              description: 'LUNs in order (LUN 0 first unless lun is given).',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['backstore'],
                properties: {
                  backstore: { type: 'string', description: 'Backstore name (from backstores, or one already on the host).' },
                  lun: { type: 'integer', minimum: 0, maximum: 255, description: 'LUN number (default: its position).' },
                },
              },
            },
            acls: {
              type: 'array',
              default: [],
              description: 'Initiators allowed in (node ACLs).',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['initiator'],
                properties: {
                  initiator: { type: 'string', pattern: IQN_PATTERN, description: 'Initiator IQN (its /etc/iscsi/initiatorname.iscsi).' },
                  mappedLuns: {
                    type: 'array',
                    description: 'LUNs this initiator sees (default: all of the target, read-write).',
                    items: {
                      type: 'object',
                      additionalProperties: false,
                      required: ['lun'],
                      properties: {
                        lun: { type: 'integer', minimum: 0, maximum: 255, description: 'LUN number the initiator sees.' },
                        tpgLun: { type: 'integer', minimum: 0, maximum: 255, description: 'Target LUN it maps to (default: the same number).' },
                        writeProtect: { type: 'boolean', default: false, description: 'Read-only for this initiator.' },
                      },
                    },
                  },
                  chap: chapSchema('CHAP the initiator must answer (node.session.auth.username/password on the initiator).'),
                  mutualChap: chapSchema('Mutual CHAP: what the target answers (username_in/password_in on the initiator).'),
                },
              },
            },
            authentication: { type: 'boolean', description: 'Require CHAP on this target (default: true when every ACL has chap).' },
            generateNodeAcls: { type: 'boolean', default: false, description: 'Demo mode: let any initiator in (keep false).' },
            demoModeWriteProtect: { type: 'boolean', default: true, description: 'Demo-mode initiators are read-only.' },
          },
        },
      },
      discoveryAuth: {
        type: 'object',
        additionalProperties: false,
        required: ['enabled'],
        description: 'CHAP for SendTargets discovery (left as it is when not given).',
        properties: {
          enabled: { type: 'boolean', description: 'Require CHAP to discover targets.' },
          chap: chapSchema('Discovery CHAP credentials.'),
          mutualChap: chapSchema('Mutual discovery CHAP credentials.'),
        },
      },
    },
  },
  async gather(conn, _params, ctx) {
    const where = ctx.facts.os.family === 'redhat' ? SAVE.redhat : SAVE.debian;
    // Without targetcli there is nothing to read yet (in check mode, before the package task has run: the task
    // is then not plannable yet). The dump runs in a subshell: where LIO's configfs is absent (installed, not
    // loaded) it exits early, and the parts after must still come.
    const r = await conn.exec(sh`command -v targetcli >/dev/null 2>&1 || { echo ${MISSING}; exit 0; }
(${configfsDumpCommand()})
echo ${MARK}; cat ${where.path} 2>/dev/null
echo ${MARK}; base64 -w0 "$HOME/.targetcli/prefs.bin" 2>/dev/null; echo
echo ${MARK}; systemctl is-enabled ${where.service} 2>/dev/null; :`);
    if (r.exitCode !== 0) throw new Error(`reading LIO's state failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    if (r.stdout.startsWith(MISSING)) throw new Error(`targetcli is not installed on ${ctx.host} (install the targetcli-fb package first)`);
    const parts = splitGather(r.stdout);
    return {
      running: parseConfigfs(parts.configfs),
      saved: parts.saved.trim() === '' ? emptyState(true) : parseSaveconfig(parts.saved),
      prefs: { autoAddDefaultPortal: pickledPref(parts.prefs, 'auto_add_default_portal', true), autoEnableTpgt: pickledPref(parts.prefs, 'auto_enable_tpgt', true) },
      service: { name: where.service, enabled: parts.enabled === 'enabled' },
      savePath: where.path,
    };
  },
  plan: planTargetcli,
  output(_params, facts) {
    return {
      targets: [...facts.running.targets].map(([iqn, tpgs]) => ({ iqn, portals: [...tpgs.values()].flatMap((t) => t.portals), sessions: [...tpgs.values()].flatMap((t) => [...[...t.acls].filter(([, a]) => a.session).map(([i]) => i), ...t.dynamicSessions]) })),
      backstores: [...facts.running.backstores.values()].map((b) => ({ name: b.name, type: b.plugin, path: b.dev, wwn: b.wwn ?? null, wwid: b.wwn ? lioWwid(b.wwn) : null })),
    };
  },
});
