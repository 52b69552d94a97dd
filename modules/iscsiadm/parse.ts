/**
 * Pure parsers for the iscsiadm module, on what open-iscsi 2.1.8 prints (test/fixtures/iscsiadm):
 *
 *   iscsiadm -m node / -m discovery      "10.3.1.1:3260,1 iqn..." lines (exit 21: no records)
 *   node record files                    `key = value` lines after "# BEGIN RECORD 2.1.8" (idbm_print: in a
 *                                        file, secrets are in clear and empty values are left out; on stdout
 *                                        secrets are ******** and empty values <empty>)
 *   iscsiadm -m session -P 3             targets, portals, iface, states, attached disks (exit 21: none)
 *   /etc/iscsi/initiatorname.iscsi       InitiatorName=iqn...
 *
 * plus the facts the one gather round trip yields (its sections, see blockdev.ts's sanbook_run framing).
 */
import { Secret } from '../../lib/secret.ts';
import { parseLsblk, sectionOf, splitSections, type BlockNode, type Section } from '../blockdev.ts';
import { parseFileContent, type FileContentFacts } from '../copy.ts';

/** One node record as `iscsiadm -m node` (or a discovery) lists it. */
export interface NodeEntry {
  readonly target: string;
  /** ip:port ([ipv6]:port), the form every portal is compared in. */
  readonly portal: string;
  /** Target portal group tag (-1: a record made with -o new before any login told it). */
  readonly tpgt: number;
}

/** "10.3.1.1" -> "10.3.1.1:3260", "[fe80::1]" stays bracketed; a port given is kept. */
export function normalizePortal(portal: string): string {
  const p = portal.trim();
  if (p.startsWith('[')) return p.includes(']:') ? p : `${p}:3260`;
  return p.includes(':') ? p : `${p}:3260`;
}

/** Address and port as a record file or `-m session` has them ("fe80::1", "3260") -> the portal form. */
export function portalOf(address: string, port: string | number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** `iscsiadm -m node` or `-m discovery -t st` output: one record per "PORTAL,TPGT TARGET" line. */
export function parseNodeList(stdout: string): NodeEntry[] {
  const out: NodeEntry[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\S+),(-?\d+)\s+(\S+)/.exec(line.trim());
    if (m?.[1] && m[2] && m[3]) out.push({ portal: m[1], tpgt: Number(m[2]), target: m[3] });
  }
  return out;
}

/** Keys whose values are CHAP secrets (node and discovery records, iscsid.conf). */
export const isSecretKey = (key: string): boolean => /\.auth\.password(_in)?$/.test(key);
/** What iscsiadm prints in place of a secret that is set (a record shown on stdout). */
export const MASKED = '********';

export interface NodeRecord {
  readonly target: string;
  readonly portal: string;
  readonly tpgt: number | null;
  readonly iface: string;
  /** Every non-secret value ('' for <empty>); a key left out of a record file is empty too. */
  readonly values: ReadonlyMap<string, string>;
  /** Secret values; null when the record was printed with the secret masked (********). */
  readonly secrets: ReadonlyMap<string, Secret | null>;
}

/** A node record: a record file or `iscsiadm -m node -T T -p P`. Comments and the BEGIN/END lines are skipped. */
export function parseRecord(text: string): NodeRecord {
  const values = new Map<string, string>();
  const secrets = new Map<string, Secret | null>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (/^\s*(#|$)/.test(line)) continue;
    const eq = line.indexOf(' = ');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 3).trim();
    const empty = value === '<empty>' || value === '';
    if (isSecretKey(key)) {
      if (!empty) secrets.set(key, value === MASKED ? null : new Secret(value));
    } else values.set(key, empty ? '' : value);
  }
  const address = values.get('node.conn[0].address') ?? '';
  const tpgt = values.get('node.tpgt');
  return {
    target: values.get('node.name') ?? '',
    portal: portalOf(address, values.get('node.conn[0].port') ?? '3260'),
    tpgt: tpgt === undefined ? null : Number(tpgt),
    iface: values.get('iface.iscsi_ifacename') || 'default',
    values,
    secrets,
  };
}

export interface Session {
  readonly target: string;
  /** The record's portal (Persistent Portal), ip:port. */
  readonly portal: string;
  /** Where the session is connected now (a redirect may differ from the record). */
  readonly currentPortal: string;
  readonly sid: number;
  readonly iface: string;
  /** The initiator name the session logged in with. */
  readonly initiator: string;
  /** LOGGED_IN, FAILED, FREE (iSCSI Session State). */
  readonly state: string;
  readonly connectionState: string;
  /** Kernel names of the attached SCSI disks (sdb). */
  readonly disks: readonly string[];
}

const stripTpgt = (s: string): string => s.trim().replace(/,-?\d+$/, '');

/** `iscsiadm -m session -P 3`: a session per portal block under each "Target:" line. */
export function parseSessions(stdout: string): Session[] {
  const out: Session[] = [];
  let target = '';
  let cur: { -readonly [K in keyof Session]: Session[K] } | undefined;
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    const t = /^Target: (\S+)/.exec(line);
    if (t?.[1]) {
      target = t[1];
      cur = undefined;
      continue;
    }
    const colon = line.indexOf(': ');
    const key = colon > 0 ? line.slice(0, colon) : '';
    const value = colon > 0 ? line.slice(colon + 2).trim() : '';
    // A portal block starts at "Current Portal" (or at a "Persistent Portal" when the version prints no current one).
    if (key === 'Current Portal' || (key === 'Persistent Portal' && (!cur || cur.portal !== ''))) {
      cur = { target, portal: '', currentPortal: stripTpgt(value), sid: -1, iface: '', initiator: '', state: '', connectionState: '', disks: [] };
      out.push(cur);
    }
    if (!cur) continue;
    if (key === 'Persistent Portal') cur.portal = stripTpgt(value);
    else if (key === 'Iface Name') cur.iface = value;
    else if (key === 'Iface Initiatorname') cur.initiator = value;
    else if (key === 'SID') cur.sid = Number(value);
    else if (key === 'iSCSI Session State') cur.state = value;
    else if (key === 'iSCSI Connection State') cur.connectionState = value;
    const disk = /^Attached scsi disk (\S+)/.exec(line);
    if (disk?.[1]) cur.disks = [...cur.disks, disk[1]];
  }
  return out.map((s) => (s.portal === '' ? { ...s, portal: s.currentPortal } : s));
}

/** The InitiatorName of /etc/iscsi/initiatorname.iscsi (null: none yet, e.g. Debian's GenerateName=yes). */
export function parseInitiatorName(text: string): string | null {
  const m = /^[ \t]*InitiatorName[ \t]*=[ \t]*(\S+)[ \t]*\r?$/m.exec(text);
  return m?.[1] ?? null;
}

/** A systemd unit's state: is-enabled ('' when the unit does not exist) and is-active. */
export interface UnitState {
  readonly enabled: string;
  readonly active: string;
}

export interface IscsiadmFacts {
  readonly nameFile: FileContentFacts;
  readonly initiatorName: string | null;
  readonly conf: FileContentFacts;
  /** `iscsiadm -m node`. */
  readonly records: readonly NodeEntry[];
  /** The record files of the task's targets (parsed; secrets in clear, as Secrets). */
  readonly recordFiles: readonly NodeRecord[];
  readonly sessions: readonly Session[];
  /** `lsblk -J` of the host (null: lsblk failed, so nothing can be said of the disks' use). */
  readonly blockdevs: readonly BlockNode[] | null;
  /** iscsid.service, iscsid.socket and the boot login service, by unit name (empty without systemd). */
  readonly units: Readonly<Record<string, UnitState>>;
  /** open-iscsi.service (Debian) or iscsi.service: logs in the automatic records at boot. */
  readonly loginService: string;
  /** /etc/iscsi/nodes, or /var/lib/iscsi/nodes on Red Hat. */
  readonly nodesDir: string;
}

export interface GatherLayout {
  readonly namePath: string;
  readonly confPath: string;
  readonly nodesDir: string;
  readonly loginService: string;
}

function listing(s: Section, what: string, host: string): string {
  if (s.exitCode === 0) return s.stdout;
  if (s.exitCode === 21) return ''; // ISCSI_ERR_NO_OBJS_FOUND: no records, no sessions
  throw new Error(`${what} failed on ${host} (exit ${s.exitCode}): ${s.stderr.trim() || s.stdout.trim()}`);
}

/** The facts from the gather output (sections named as in the gather script of iscsiadm.ts). */
export function parseGather(stdout: string, layout: GatherLayout, host: string): IscsiadmFacts {
  const sections = splitSections(stdout);
  const get = (tag: string) => sectionOf(sections, tag, `iscsiadm gather on ${host}`);
  if (get('which').exitCode !== 0) {
    throw new Error(`iscsiadm is not installed on ${host}: install open-iscsi first (Debian: open-iscsi, Red Hat: iscsi-initiator-utils)`);
  }
  if (get('uid').stdout.trim() !== '0') throw new Error(`iscsiadm needs root on ${host} (the node records are root's): set become: true`);
  const file = (tag: string, path: string): FileContentFacts => {
    const s = get(tag);
    if (s.exitCode !== 0) throw new Error(`cannot read ${path} on ${host}: ${s.stderr.trim() || `exit ${s.exitCode}`}`);
    return parseFileContent(path, s.stdout);
  };
  const nameFile = file('name', layout.namePath);
  const lsblk = get('lsblk');
  const units: Record<string, UnitState> = {};
  for (const line of get('units').stdout.split('\n')) {
    const [unit = '', enabled = '', active = ''] = line.split('\t');
    if (unit !== '') units[unit] = { enabled: enabled === 'not-found' ? '' : enabled, active };
  }
  return {
    nameFile,
    initiatorName: nameFile.content ? parseInitiatorName(nameFile.content.toString('utf8')) : null,
    conf: file('conf', layout.confPath),
    records: parseNodeList(listing(get('nodes'), 'iscsiadm -m node', host)),
    recordFiles: sections.filter((s) => s.tag.startsWith('record ') && s.exitCode === 0).map((s) => parseRecord(s.stdout)),
    sessions: parseSessions(listing(get('session'), 'iscsiadm -m session -P 3', host)),
    blockdevs: lsblk.exitCode === 0 ? parseLsblk(lsblk.stdout) : null,
    units,
    loginService: layout.loginService,
    nodesDir: layout.nodesDir,
  };
}
