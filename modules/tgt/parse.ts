/**
 * Pure parsers for the tgt module: `tgtadm --lld iscsi --op show --mode target` (tgt 1.0.85's layout, as
 * usr/target.c prints it), the conf file this module writes, `tgtadm --op show --mode portal`, and the
 * marker-separated output of the one gather round trip.
 */
import { Secret } from '../../lib/secret.ts';

export interface TgtLun {
  readonly lun: number;
  /** disk, controller (LUN 0), cd/dvd, ... */
  readonly type: string;
  /** What tgtadm prints as "Size: N MB" (its own rounding, close to decimal megabytes). */
  readonly sizeMB: number;
  /** Backing store type: rdwr, null (LUN 0), aio, ... */
  readonly backingType: string;
  /** Backing store path, null for "None" (LUN 0). */
  readonly path: string | null;
  readonly online: boolean;
  readonly readonly: boolean;
}

export interface TgtConnection {
  readonly cid: number;
  /** The initiator's address as tgtd saw it ("IP Address: 10.3.1.101"). */
  readonly address: string;
}

/** An I_T nexus: an initiator logged in (an iSCSI session). */
export interface TgtSession {
  readonly nexus: number;
  readonly initiator: string;
  readonly alias: string | null;
  readonly connections: readonly TgtConnection[];
}

export interface TgtTarget {
  readonly tid: number;
  readonly iqn: string;
  readonly driver: string;
  /** ready or offline */
  readonly state: string;
  readonly sessions: readonly TgtSession[];
  /** Every LUN, LUN 0 (the controller) included. */
  readonly luns: readonly TgtLun[];
  /** Incoming CHAP accounts bound to the target (user names; tgtd never shows passwords). */
  readonly accounts: readonly string[];
  /** The outgoing (mutual CHAP) account, if any. */
  readonly outgoingAccount: string | null;
  /** ACL information: address ACLs (ALL, 10.3.1.101, 0.0.0.0/32) first, then initiator names. */
  readonly acls: readonly string[];
}

type Section = 'system' | 'nexus' | 'lun' | 'account' | 'acl' | null;

const SECTIONS: Record<string, Section> = {
  'System information:': 'system',
  'I_T nexus information:': 'nexus',
  'LUN information:': 'lun',
  'Account information:': 'account',
  'ACL information:': 'acl',
};

interface MutableSession {
  nexus: number;
  initiator: string;
  alias: string | null;
  connections: TgtConnection[];
}

interface MutableTarget {
  tid: number;
  iqn: string;
  driver: string;
  state: string;
  sessions: MutableSession[];
  luns: Record<string, string>[];
  accounts: string[];
  outgoingAccount: string | null;
  acls: string[];
}

function toLun(kv: Record<string, string>): TgtLun {
  const size = /^(\d+) MB/.exec(kv['Size'] ?? '');
  const path = kv['Backing store path'] ?? 'None';
  return {
    lun: Number(kv['LUN']),
    type: kv['Type'] ?? '',
    sizeMB: size?.[1] !== undefined ? Number(size[1]) : 0,
    backingType: kv['Backing store type'] ?? '',
    path: path === 'None' ? null : path,
    online: kv['Online'] === 'Yes',
    readonly: kv['Readonly'] === 'Yes',
  };
}

/** Parse `tgtadm --lld iscsi --op show --mode target`: every target with its sessions, LUNs, accounts and ACLs. */
export function parseShowTarget(stdout: string): TgtTarget[] {
  const targets: MutableTarget[] = [];
  let cur: MutableTarget | undefined;
  let section: Section = null;
  for (const raw of stdout.split('\n')) {
    const head = /^Target (\d+): (.+)$/.exec(raw);
    if (head?.[1] !== undefined && head[2] !== undefined) {
      cur = { tid: Number(head[1]), iqn: head[2].trim(), driver: '', state: '', sessions: [], luns: [], accounts: [], outgoingAccount: null, acls: [] };
      targets.push(cur);
      section = null;
      continue;
    }
    const line = raw.trim();
    if (!cur || line === '') continue;
    // A section header is indented once (4 spaces); values below it are indented deeper.
    const indent = raw.length - raw.trimStart().length;
    if (indent <= 4 && Object.hasOwn(SECTIONS, line)) {
      section = SECTIONS[line] ?? null;
      continue;
    }
    const colon = line.indexOf(': ');
    const key = colon > 0 ? line.slice(0, colon) : line.replace(/:$/, '');
    const value = colon > 0 ? line.slice(colon + 2) : '';
    switch (section) {
      case 'system':
        if (key === 'Driver') cur.driver = value;
        if (key === 'State') cur.state = value;
        break;
      case 'nexus': {
        const last = cur.sessions[cur.sessions.length - 1];
        if (key === 'I_T nexus') cur.sessions.push({ nexus: Number(value), initiator: '', alias: null, connections: [] });
        else if (key === 'Initiator' && last) {
          const m = /^(\S+)(?: alias: (.*))?$/.exec(value);
          last.initiator = m?.[1] ?? value;
          last.alias = m?.[2] === undefined || m[2] === 'none' ? null : m[2];
        } else if (key === 'Connection' && last) last.connections.push({ cid: Number(value), address: '' });
        else if (key === 'IP Address' && last) {
          const conn = last.connections.pop();
          if (conn) last.connections.push({ ...conn, address: value });
        }
        break;
      }
      case 'lun':
        if (key === 'LUN') cur.luns.push({ LUN: value });
        else {
          const lun = cur.luns[cur.luns.length - 1];
          // "Size: 67 MB, Block size: 512" holds two values on one line.
          if (lun) for (const part of line.split(', ')) {
            const i = part.indexOf(':');
            if (i > 0) lun[part.slice(0, i)] = part.slice(i + 1).trim();
          }
        }
        break;
      case 'account': {
        const out = /^(.+) \(outgoing\)$/.exec(line);
        if (out?.[1] !== undefined) cur.outgoingAccount = out[1];
        else cur.accounts.push(line);
        break;
      }
      case 'acl':
        cur.acls.push(line);
        break;
      default:
        break;
    }
  }
  return targets.map((t) => ({ ...t, luns: t.luns.map(toLun) }));
}

/** A target as this module's conf file declares it (passwords are Secrets: registered, so masked everywhere). */
export interface ConfTarget {
  readonly iqn: string;
  readonly incoming: ReadonlyMap<string, Secret>;
  readonly outgoing: { readonly user: string; readonly password: Secret } | null;
}

const USER_LINE = /^(\s*(incoming|outgoing)user\s+)(\S+)(\s+)(\S+)(.*)$/;

/** The targets and CHAP accounts of a tgt conf file (the subset this module writes). */
export function parseConf(text: string): ConfTarget[] {
  const out: { iqn: string; incoming: Map<string, Secret>; outgoing: ConfTarget['outgoing'] }[] = [];
  for (const line of text.split('\n')) {
    const open = /^\s*<target\s+([^>\s]+)\s*>\s*$/.exec(line);
    if (open?.[1] !== undefined) {
      out.push({ iqn: open[1], incoming: new Map(), outgoing: null });
      continue;
    }
    const cur = out[out.length - 1];
    const m = USER_LINE.exec(line);
    if (!cur || m?.[2] === undefined || m[3] === undefined || m[5] === undefined) continue;
    if (m[2] === 'incoming') cur.incoming.set(m[3], new Secret(m[5]));
    else cur.outgoing = { user: m[3], password: new Secret(m[5]) };
  }
  return out;
}

/** The conf text with every CHAP password shown as *** (for the "before" side of a diff). */
export function maskConf(text: string): string {
  return text
    .split('\n')
    .map((line) => line.replace(USER_LINE, (_all, lead: string, _dir: string, user: string, gap: string, _pw: string, rest: string) => `${lead}${user}${gap}***${rest}`))
    .join('\n');
}

/** Parse `tgtadm --lld iscsi --op show --mode portal` ("Portal: [::]:3260,1" per line) into "[::]:3260" forms. */
export function parsePortals(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => /^Portal: (.+),\d+$/.exec(l.trim())?.[1])
    .filter((p): p is string => p !== undefined);
}

export const MARK = '@@sanbook-tgt@@';

/** Split the gather output into its named parts ("@@sanbook-tgt@@ NAME" lines start each part). */
export function splitGather(stdout: string, expected: readonly string[]): Record<string, string> {
  const parts: Record<string, string> = {};
  let name: string | undefined;
  let body: string[] = [];
  const flush = () => {
    if (name !== undefined) parts[name] = body.join('\n');
  };
  for (const line of stdout.split('\n')) {
    const m = line.startsWith(`${MARK} `) ? /^\S+ ([a-z]+)$/.exec(line) : null;
    if (m?.[1] !== undefined) {
      flush();
      name = m[1];
      body = [];
    } else if (name !== undefined) body.push(line);
  }
  flush();
  const missing = expected.filter((e) => !(e in parts));
  if (missing.length > 0) throw new Error(`tgt gather: the output lacks its part(s) ${missing.join(', ')}`);
  return parts;
}
