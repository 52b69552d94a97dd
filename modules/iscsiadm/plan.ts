/**
 * The iscsiadm module's plan, in the order it is applied: iscsid.conf, the initiator name (then iscsid is
 * restarted: it reads both at start), iscsid and the boot login service, the node records (created, then
 * their per-node settings), the logins, and last the targets that must go (logout, then delete).
 *
 * Node records are compared by reading their files (iscsiadm -m node -T -p masks the CHAP secrets); no
 * summary, display or diff ever holds a secret. Updating a record does not touch a live session: the session
 * keeps what it logged in with until it logs in again, and the summaries say so.
 */
import { cmd, type Command } from '../../lib/command.ts';
import { exec, type Change, type Step } from '../../lib/module.ts';
import type { Secret } from '../../lib/secret.ts';
import { findNode, type BlockNode } from '../blockdev.ts';
import { planSetting, readSetting, type SettingValue } from '../setting.ts';
import { discoverCommand, loginCommand, updateCommand } from './commands.ts';
import { normalizePortal, type IscsiadmFacts, type NodeRecord, type Session, type UnitState } from './parse.ts';

export interface ChapParams {
  user: string;
  password: Secret;
}

export interface TargetParams {
  iqn: string;
  portals?: string[];
  chap?: ChapParams;
  mutualChap?: ChapParams;
  startup?: 'automatic' | 'manual';
  state?: 'loggedin' | 'present' | 'absent';
}

export interface IscsiadmParams {
  initiatorName?: string;
  settings?: Record<string, string | number>;
  discovery?: { portals: string[]; chap?: ChapParams; mutualChap?: ChapParams };
  targets?: TargetParams[];
}

export const NAME_PATH = '/etc/iscsi/initiatorname.iscsi';
export const CONF_PATH = '/etc/iscsi/iscsid.conf';

/** One record the task wants: a target at one portal. */
interface Pair {
  readonly t: TargetParams;
  readonly portal: string;
}
const key = (target: string, portal: string): string => `${target} ${portal}`;
const has = (list: readonly { target: string; portal: string }[], target: string, portal: string): boolean =>
  list.some((r) => r.target === target && r.portal === portal);

/** The wanted records (state loggedin or present), each pair at most once in the task. */
function wantedPairs(p: IscsiadmParams): Pair[] {
  const seen = new Set<string>();
  const out: Pair[] = [];
  for (const t of p.targets ?? []) {
    const portals = (t.portals ?? []).map(normalizePortal);
    if (t.state === 'absent' && portals.length === 0 && (p.targets ?? []).some((o) => o !== t && o.iqn === t.iqn)) {
      throw new Error(`target ${t.iqn} is listed absent (every portal) and again: give the portals to remove`);
    }
    for (const portal of portals) {
      if (seen.has(key(t.iqn, portal))) throw new Error(`target ${t.iqn} at ${portal} is listed twice`);
      seen.add(key(t.iqn, portal));
      if (t.state !== 'absent') out.push({ t, portal });
    }
  }
  return out;
}

export function planIscsiadm(p: IscsiadmParams, f: IscsiadmFacts): Change[] {
  const pairs = wantedPairs(p);
  const initiator = p.initiatorName ?? f.initiatorName ?? '(none set)';
  const changes = [...planFiles(p, f), ...planServices(p, f), ...planRecords(p, f, pairs, initiator)];
  for (const { t, portal } of pairs) {
    if ((t.state ?? 'loggedin') !== 'loggedin' || f.sessions.some((s) => s.target === t.iqn && s.portal === portal)) continue;
    changes.push({ summary: `log in to ${t.iqn} at ${portal}`, steps: [exec(loginCommand({ target: t.iqn, portal, initiator }))] });
  }
  return [...changes, ...planAbsent(p, f)];
}

/** iscsid.conf (settings, discovery CHAP) and initiatorname.iscsi, then a restart of iscsid when it must re-read them. */
function planFiles(p: IscsiadmParams, f: IscsiadmFacts): Change[] {
  const out: Change[] = [];
  const settings: Record<string, SettingValue> = { ...(p.settings ?? {}) };
  const secrets: Record<string, Secret> = {};
  const d = p.discovery;
  if (d?.chap) {
    Object.assign(settings, { 'discovery.sendtargets.auth.authmethod': 'CHAP', 'discovery.sendtargets.auth.username': d.chap.user });
    secrets['discovery.sendtargets.auth.password'] = d.chap.password;
    settings['discovery.sendtargets.auth.username_in'] = d.mutualChap?.user ?? null;
    if (d.mutualChap) secrets['discovery.sendtargets.auth.password_in'] = d.mutualChap.password;
    else settings['discovery.sendtargets.auth.password_in'] = null;
  }
  let restart: string[] = [];
  if (Object.keys(settings).length > 0 || Object.keys(secrets).length > 0) {
    if (!f.conf.stat) throw new Error(`${CONF_PATH} does not exist: is open-iscsi installed?`);
    const conf = planSetting({ path: CONF_PATH, settings, secrets, ...(Object.keys(secrets).length > 0 ? { mode: '0600' } : {}) }, f.conf);
    out.push(...conf.map((c, i) => (i === 0 ? { ...c, summary: `${c.summary} (new node records take these values)` } : c)));
    const before = f.conf.content?.toString('latin1') ?? '';
    const format = { separator: ' = ', comment: '#' };
    restart = Object.entries(settings).filter(([k, v]) => k.startsWith('iscsid.') && readSetting(before, k, format) !== (v === null ? null : String(v).trim())).map(([k]) => k);
  }
  const name = p.initiatorName;
  if (name !== undefined && name !== f.initiatorName) {
    const [change, ...rest] = planSetting({ path: NAME_PATH, settings: { InitiatorName: name, GenerateName: null }, separator: '=', create: true }, f.nameFile);
    const old = f.sessions.filter((s) => s.initiator !== name);
    const note = old.length === 0 ? '' : `; ${old.length} session${old.length === 1 ? '' : 's'} logged in as ${[...new Set(old.map((s) => s.initiator))].join(', ')} keep${old.length === 1 ? 's' : ''} that name until ${old.length === 1 ? 'it logs' : 'they log'} in again`;
    if (change) out.push({ ...change, summary: `set the initiator name to ${name} (was ${f.initiatorName ?? 'none'})${note}` }, ...rest);
    restart = [...restart, 'the initiator name'];
  }
  if (restart.length > 0) out.push({ summary: `restart iscsid: it reads ${restart.join(', ')} at start`, steps: [exec(cmd('systemctl', 'restart', 'iscsid'))] });
  return out;
}

const ENABLED = /^(enabled|enabled-runtime|static|indirect|alias|generated|linked|linked-runtime)$/;
const enabled = (u: UnitState | undefined): boolean => u !== undefined && ENABLED.test(u.enabled);

/** iscsid enabled (its service or its socket) and running; the boot login service enabled for automatic records. */
function planServices(p: IscsiadmParams, f: IscsiadmFacts): Change[] {
  if (Object.keys(f.units).length === 0) return [];
  const out: Change[] = [];
  const svc = f.units['iscsid.service'];
  const sock = f.units['iscsid.socket'];
  if (svc?.enabled === 'masked') throw new Error('iscsid.service is masked: unmask it first (systemctl unmask iscsid)');
  if (!enabled(svc) && !enabled(sock)) {
    const unit = sock && sock.enabled !== '' ? 'iscsid.socket' : 'iscsid.service';
    out.push({ summary: `enable ${unit} (iscsid was ${svc?.enabled || 'not found'})`, steps: [exec(cmd('systemctl', 'enable', unit))] });
  }
  if (svc && svc.active !== 'active') out.push({ summary: `start iscsid (it was ${svc.active || 'not running'})`, steps: [exec(cmd('systemctl', 'start', 'iscsid'))] });
  const login = f.units[f.loginService];
  const automatic = (p.targets ?? []).some((t) => t.state !== 'absent' && (t.startup ?? 'automatic') === 'automatic');
  if (automatic && login && login.enabled !== '' && !enabled(login)) {
    if (login.enabled === 'masked') throw new Error(`${f.loginService} is masked: the automatic records would not log in at boot (unmask it)`);
    out.push({ summary: `enable ${f.loginService} (${login.enabled}): it logs in the automatic records at boot`, steps: [exec(cmd('systemctl', 'enable', f.loginService))] });
  }
  return out;
}

type Field = readonly [name: string, value: string | Secret, shown: string];

/** The record fields the task decides for a target: startup, CHAP (when given), node.* settings. */
function wantedFields(p: IscsiadmParams, t: TargetParams): Field[] {
  const fields: Field[] = [['node.startup', t.startup ?? 'automatic', `startup ${t.startup ?? 'automatic'}`]];
  if (t.chap) {
    const m = t.mutualChap;
    fields.push(
      ['node.session.auth.authmethod', 'CHAP', 'CHAP'],
      ['node.session.auth.username', t.chap.user, `CHAP user ${t.chap.user}`],
      ['node.session.auth.password', t.chap.password, 'CHAP secret'],
      ['node.session.auth.username_in', m?.user ?? '', m ? `mutual CHAP user ${m.user}` : 'no mutual CHAP user'],
      ['node.session.auth.password_in', m?.password ?? '', m ? 'mutual CHAP secret' : 'no mutual CHAP secret'],
    );
  }
  for (const [k, v] of Object.entries(p.settings ?? {})) if (k.startsWith('node.') && k !== 'node.startup') fields.push([k, String(v), `${k} = ${v}`]);
  return fields;
}

/** The fields of a record that differ from the wanted ones, each with its words (never a secret's value). */
function drift(fields: readonly Field[], files: readonly NodeRecord[]): { field: Field; words: string }[] {
  const out: { field: Field; words: string }[] = [];
  for (const field of fields) {
    const [name, want, shown] = field;
    for (const r of files) {
      if (typeof want !== 'string' || r.secrets.has(name)) {
        const have = r.secrets.get(name);
        if (have === null) throw new Error(`the record of ${r.target} at ${r.portal} shows ${name} masked: read from its file, it cannot be`);
        const wanted = typeof want === 'string' ? want : want.reveal();
        if ((have?.reveal() ?? '') === wanted) continue;
        out.push({ field, words: wanted === '' ? `${shown} (removed)` : have ? `${shown} changed` : `${shown} set` });
        break;
      }
      const have = r.values.get(name) ?? '';
      // iscsiadm matches option values exactly (automatic, CHAP, Yes): so does the comparison.
      if (have === want.trim()) continue;
      out.push({ field, words: `${shown} (was ${have || 'empty'})` });
      break;
    }
  }
  return out;
}

function planRecords(p: IscsiadmParams, f: IscsiadmFacts, pairs: readonly Pair[], initiator: string): Change[] {
  const out: Change[] = [];
  const missing = pairs.filter((x) => !has(f.records, x.t.iqn, x.portal));
  const discovery = p.discovery?.portals.map(normalizePortal) ?? [];
  // With discovery, the target tells the records (its real portal group tag, the portals it offers) and the
  // discovery CHAP is checked now rather than at the first login; without, `-o new` makes each record as told.
  if (missing.length > 0 && discovery.length > 0) {
    const gone = new Set((p.targets ?? []).filter((t) => t.state === 'absent').map((t) => t.iqn));
    out.push({
      summary: `discover the targets at ${discovery.join(', ')} (no node record yet for ${missing.map((x) => `${x.t.iqn} at ${x.portal}`).join(', ')}); records it adds that are not wanted are deleted`,
      steps: [exec(discoverCommand({ portals: discovery, wanted: pairs.map((x) => key(x.t.iqn, x.portal)), existing: f.records.filter((r) => !gone.has(r.target)).map((r) => key(r.target, r.portal)), initiator }))],
    });
  }
  for (const x of pairs) {
    const fields = wantedFields(p, x.t);
    const where = `${x.t.iqn} at ${x.portal}`;
    const session = f.sessions.some((s) => s.target === x.t.iqn && s.portal === x.portal);
    if (missing.includes(x)) {
      const create = discovery.length > 0 ? [] : [exec(cmd('iscsiadm', '-m', 'node', '-o', 'new', '-T', x.t.iqn, '-p', x.portal))];
      out.push({
        summary: `${discovery.length > 0 ? 'set up' : 'create'} the node record of ${where}: ${fields.filter((fl) => fl[1] !== '').map((fl) => fl[2]).join(', ')}`,
        steps: [...create, exec(updateCommand(x.t.iqn, x.portal, fields.map(([n, v]) => [n, v] as const)))],
      });
      continue;
    }
    const files = f.recordFiles.filter((r) => r.target === x.t.iqn && r.portal === x.portal);
    if (files.length === 0) throw new Error(`iscsiadm lists a node record of ${where} but its file is not under ${f.nodesDir}/${x.t.iqn}: cannot compare its settings`);
    const diff = drift(fields, files);
    if (diff.length === 0) continue;
    out.push({
      summary: `update the node record of ${where}: ${diff.map((d) => d.words).join('; ')}${session ? ' (the session keeps its login until it logs in again)' : ''}`,
      steps: [exec(updateCommand(x.t.iqn, x.portal, diff.map((d) => [d.field[0], d.field[1]] as const)))],
    });
  }
  return out;
}

/** What uses a disk and what is on it, in words: mounts anywhere below it, and its holders (dm, md, ...). */
export function diskUsers(nodes: readonly BlockNode[] | null, disk: string): string[] {
  if (nodes === null) return [`lsblk failed: cannot tell whether /dev/${disk} is in use`];
  const n = findNode(nodes, disk);
  if (!n) return [];
  const out = new Set<string>();
  const walk = (x: BlockNode, top: boolean): void => {
    for (const m of x.mountpoints) out.add(`mounted on ${m}${top ? '' : ` (${x.path})`}`);
    for (const c of x.children) {
      if (c.type !== 'part') out.add(`held by ${c.path} (${c.type})`);
      walk(c, false);
    }
  };
  walk(n, true);
  return [...out];
}

/** Targets to remove: log out of their sessions, then delete their records (every portal unless listed). */
function planAbsent(p: IscsiadmParams, f: IscsiadmFacts): Change[] {
  const out: Change[] = [];
  for (const t of (p.targets ?? []).filter((x) => x.state === 'absent')) {
    const listed = (t.portals ?? []).map(normalizePortal);
    const mine = (r: { target: string; portal: string }) => r.target === t.iqn && (listed.length === 0 || listed.includes(r.portal));
    const sessions: Session[] = f.sessions.filter(mine);
    const portals = [...new Set([...sessions.map((s) => s.portal), ...f.records.filter(mine).map((r) => r.portal)])];
    if (portals.length === 0) continue;
    const steps: Step[] = [];
    const used: string[] = [];
    for (const portal of portals) {
      const node = (...args: string[]): Command => cmd('iscsiadm', '-m', 'node', '-T', t.iqn, '-p', portal, ...args).with({ okCodes: [0, 21] });
      for (const s of sessions.filter((x) => x.portal === portal)) {
        used.push(...s.disks.flatMap((d) => diskUsers(f.blockdevs, d).map((u) => `/dev/${d} (${portal}) is ${u}`)));
      }
      if (sessions.some((s) => s.portal === portal)) steps.push(exec(node('--logout')));
      if (has(f.records, t.iqn, portal)) steps.push(exec(node('-o', 'delete')));
    }
    const logged = sessions.length > 0 ? `log out of ${t.iqn} at ${[...new Set(sessions.map((s) => s.portal))].join(', ')} (disks ${sessions.flatMap((s) => s.disks).join(', ') || 'none'}) and ` : '';
    out.push({
      summary: `${logged}delete the node records of ${t.iqn} at ${portals.join(', ')}`,
      steps,
      ...(used.length > 0 ? { destructive: `logging out takes away disks in use: ${used.join('; ')}` } : {}),
    });
  }
  return out;
}
