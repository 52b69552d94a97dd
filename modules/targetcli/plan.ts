/**
 * targetcli's plan: compare the wanted LIO objects with the running state (configfs) and the saved one, and
 * produce the changes, all applied by ONE targetcli invocation (a batch on its standard input) that ends with
 * saveconfig. Secrets only ever appear in that batch (stdin), never in a command line or a display.
 */
import { Command, sh } from '../../lib/command.ts';
import type { Change, Step } from '../../lib/module.ts';
import { exec } from '../../lib/module.ts';
import { Secret } from '../../lib/secret.ts';
import { backstoreKey, configKey, type LioState, type NodeAcl, type Tpg } from './model.ts';

export interface BackstoreParams {
  name: string;
  type?: 'block' | 'fileio';
  /** block: the device; fileio: the file. */
  path: string;
  /** fileio: size of a file to create ('64M', '10G'); an existing file keeps its size. */
  size?: string;
  writeBack?: boolean;
  /** The unit serial (VPD page 0x80), a UUID; the LUN's WWID follows from it (lioWwid). Default: LIO picks one. */
  wwn?: string;
}

export interface ChapParams {
  user: string;
  password: Secret;
}

export interface AclParams {
  initiator: string;
  /** Mapped LUNs; default: every LUN of the target, read-write, at the same number. */
  mappedLuns?: { lun: number; tpgLun?: number; writeProtect?: boolean }[];
  chap?: ChapParams;
  mutualChap?: ChapParams;
}

export interface TargetParams {
  iqn: string;
  portals?: { ip: string; port?: number }[];
  luns?: { backstore: string; lun?: number }[];
  acls?: AclParams[];
  authentication?: boolean;
  generateNodeAcls?: boolean;
  demoModeWriteProtect?: boolean;
}

export interface TargetcliParams {
  backstores?: BackstoreParams[];
  targets?: TargetParams[];
  discoveryAuth?: { enabled: boolean; chap?: ChapParams; mutualChap?: ChapParams };
  state?: 'present' | 'absent';
}

export interface TargetcliFacts {
  readonly running: LioState;
  readonly saved: LioState;
  /** targetcli's global preferences that change what a batch does. */
  readonly prefs: { readonly autoAddDefaultPortal: boolean; readonly autoEnableTpgt: boolean };
  /** The service that restores the saved configuration at boot, and whether it is enabled. */
  readonly service: { readonly name: string; readonly enabled: boolean };
  readonly savePath: string;
}

/** One line of the batch: the real text (secrets revealed) and the shown text (secrets masked). */
interface Line {
  readonly text: string;
  readonly shown: string;
}

function line(...parts: (string | Secret)[]): Line {
  return {
    text: parts.map((p) => (p instanceof Secret ? p.reveal() : p)).join(''),
    shown: parts.map((p) => (p instanceof Secret ? '***' : p)).join(''),
  };
}

interface Planned {
  summary: string;
  lines: Line[];
  destructive?: string;
}

const TPG = 1;
const DEFAULT_PORTAL = '0.0.0.0:3260';
const portalKey = (p: { ip: string; port?: number }): string => `${p.ip.includes(':') ? `[${p.ip}]` : p.ip}:${p.port ?? 3260}`;
const splitPortal = (k: string): [string, string] => {
  const i = k.lastIndexOf(':');
  return [k.slice(0, i).replace(/^\[(.*)\]$/, '$1'), k.slice(i + 1)];
};

/** Who is logged in to a TPG (ACL sessions and generated-ACL sessions). */
function sessionsOf(tpg: Tpg | undefined): string[] {
  if (!tpg) return [];
  return [...[...tpg.acls].filter(([, a]) => a.session).map(([ini]) => ini), ...tpg.dynamicSessions];
}

function loggedIn(what: string, who: readonly string[]): string | undefined {
  return who.length > 0 ? `${what}: ${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} logged in` : undefined;
}

export function planTargetcli(p: TargetcliParams, f: TargetcliFacts): Change[] {
  const planned = p.state === 'absent' ? planAbsent(p, f.running) : planPresent(p, f);
  const changes: Change[] = planned.map((x) => ({ summary: x.summary, steps: [], ...(x.destructive ? { destructive: x.destructive } : {}) }));
  const lines = planned.flatMap((x) => x.lines);
  const unsaved = lines.length === 0 && f.running.loaded && configKey(f.running) !== configKey(f.saved);
  if (lines.length > 0 || unsaved) {
    if (unsaved) changes.push({ summary: `save the running configuration to ${f.savePath} (it differs from the saved one)`, steps: [] });
    const steps: Step[] = [exec(batchCommand([...lines, line('saveconfig')]))];
    const last = changes.pop();
    if (last) changes.push({ ...last, steps });
  }
  if (!f.service.enabled) changes.push({ summary: `enable ${f.service.name} (restores the targets at boot)`, steps: [exec(sh`systemctl enable ${f.service.name}`)] });
  return changes;
}

/**
 * The one targetcli invocation: the batch on stdin (a secret: it may hold CHAP passwords). targetcli goes on
 * after a failed command and exits 0, but writes the failure on stderr: any stderr line but the first-run
 * preferences warning fails the step. Its stdout (which echoes passwords) is discarded.
 */
export function batchCommand(lines: readonly Line[]): Command {
  const script = sh`err=$(targetcli 2>&1 >/dev/null | grep -v '^Warning: Could not load preferences file')
if [ -n "$err" ]; then printf 'targetcli: %s\\n' "$err" >&2; exit 1; fi`;
  const shown = `targetcli <<EOF\n${lines.map((l) => l.shown).join('\n')}\nEOF`;
  return new Command(script.script, shown, { stdin: new Secret(`${lines.map((l) => l.text).join('\n')}\n`) });
}

function planAbsent(p: TargetcliParams, s: LioState): Planned[] {
  const out: Planned[] = [];
  for (const t of p.targets ?? []) {
    const tpgs = s.targets.get(t.iqn);
    if (!tpgs) continue;
    const who = [...tpgs.values()].flatMap(sessionsOf);
    const d = loggedIn(`deleting target ${t.iqn} cuts its initiators off`, who);
    out.push({ summary: `delete target ${t.iqn}`, lines: [line(`/iscsi delete ${t.iqn}`)], ...(d ? { destructive: d } : {}) });
  }
  for (const b of p.backstores ?? []) {
    const key = backstoreKey(b.type ?? 'block', b.name);
    if (!s.backstores.has(key)) continue;
    const who = usersOf(s, key, new Set((p.targets ?? []).map((t) => t.iqn)));
    const d = loggedIn(`deleting backstore ${key} removes a LUN in use`, who);
    out.push({ summary: `delete backstore ${key}`, lines: [line(`/backstores/${key.replace('/', ' delete ')}`)], ...(d ? { destructive: d } : {}) });
  }
  return out;
}

/** Initiators logged in to a TPG that exports the backstore (targets being deleted anyway are skipped). */
function usersOf(s: LioState, key: string, skip: ReadonlySet<string>): string[] {
  const who: string[] = [];
  for (const [iqn, tpgs] of s.targets) {
    if (skip.has(iqn)) continue;
    for (const tpg of tpgs.values()) if ([...tpg.luns.values()].includes(key)) who.push(...sessionsOf(tpg));
  }
  return who;
}

function sizeBytes(size: string): number {
  const m = /^(\d+)([KMGT]?)B?$/i.exec(size.trim());
  if (!m?.[1]) throw new Error(`size "${size}": use a number with K, M, G or T`);
  return Number(m[1]) * 1024 ** 'BKMGT'.indexOf((m[2] || 'B').toUpperCase());
}

function planPresent(p: TargetcliParams, f: TargetcliFacts): Planned[] {
  const s = f.running;
  const deletes: Planned[] = [];
  const creates: Planned[] = [];
  const wanted = new Map((p.backstores ?? []).map((b) => [backstoreKey(b.type ?? 'block', b.name), b]));
  const byName = new Map((p.backstores ?? []).map((b) => [b.name, backstoreKey(b.type ?? 'block', b.name)]));
  const replaced = new Set<string>();

  for (const [key, b] of wanted) {
    const have = s.backstores.get(key);
    const type = b.type ?? 'block';
    const wwn = b.wwn ? ` wwn=${b.wwn}` : '';
    const create = type === 'block'
      ? line(`/backstores/block create name=${b.name} dev=${b.path}${wwn}`)
      : line(`/backstores/fileio create name=${b.name} file_or_dev=${b.path}${b.size ? ` size=${b.size}` : ''} write_back=${b.writeBack ?? false}${wwn}`);
    if (!have) {
      creates.push({ summary: `create backstore ${key} on ${b.path}`, lines: [create] });
      continue;
    }
    const why = have.dev !== b.path ? `it uses ${have.dev}, not ${b.path}`
      : type === 'fileio' && b.writeBack !== undefined && have.writeBack !== b.writeBack ? `write_back is ${String(have.writeBack)}`
      : type === 'fileio' && b.size !== undefined && have.size !== undefined && have.size !== sizeBytes(b.size) ? `its size is ${have.size} bytes`
      : b.wwn !== undefined && have.wwn !== undefined && have.wwn.toLowerCase() !== b.wwn.toLowerCase() ? `its unit serial is ${have.wwn}, not ${b.wwn}: initiators would see another WWID`
      : undefined;
    if (why) {
      replaced.add(key);
      const who = usersOf(s, key, new Set());
      const d = loggedIn(`re-creating backstore ${key} under its LUNs`, who);
      deletes.push({ summary: `re-create backstore ${key} (${why})`, lines: [line(`/backstores/${type} delete ${b.name}`)], ...(d ? { destructive: d } : {}) });
      creates.push({ summary: `create backstore ${key} on ${b.path}`, lines: [create] });
    }
  }

  const da = p.discoveryAuth;
  if (da) {
    const want = { enabled: da.enabled, userid: da.chap?.user ?? '', password: da.chap?.password.reveal() ?? '', mutualUserid: da.mutualChap?.user ?? '', mutualPassword: da.mutualChap?.password.reveal() ?? '' };
    const h = s.discoveryAuth;
    if (want.enabled !== h.enabled || (want.enabled && (want.userid !== h.userid || want.password !== h.password || want.mutualUserid !== h.mutualUserid || want.mutualPassword !== h.mutualPassword))) {
      creates.push({
        summary: want.enabled ? `require CHAP for discovery${h.enabled ? ' (credentials changed)' : ''}` : 'stop requiring CHAP for discovery',
        lines: [want.enabled ? line(...discoveryLine(da)) : line('/iscsi set discovery_auth enable=0')],
      });
    }
  }

  // New targets first (their default portal depends on the portals bound at that moment), then portal
  // deletions everywhere, then everything that binds or maps.
  const newTargets = (p.targets ?? []).filter((t) => !s.targets.has(t.iqn));
  const defaultPortal = f.prefs.autoAddDefaultPortal && ![...s.targets.values()].some((tpgs) => [...tpgs.values()].some((t) => t.portals.some((x) => x !== DEFAULT_PORTAL && x.endsWith(':3260'))));
  const targetCreates: Planned[] = [];
  const portalDeletes: Planned[] = [];
  const rest: Planned[] = [];
  for (const t of p.targets ?? []) {
    const base = `/iscsi/${t.iqn}/tpg${TPG}`;
    const fresh = newTargets.includes(t);
    const tpg: Tpg | undefined = s.targets.get(t.iqn)?.get(TPG);
    if (fresh) {
      targetCreates.push({ summary: `create target ${t.iqn}`, lines: [line(`/iscsi create ${t.iqn}`)] });
    } else if (!tpg) {
      rest.push({ summary: `create TPG ${TPG} of ${t.iqn}`, lines: [line(`/iscsi/${t.iqn} create ${TPG}`)] });
    }
    const portals = fresh ? (defaultPortal ? [DEFAULT_PORTAL] : []) : (tpg?.portals ?? []);
    if (fresh && !f.prefs.autoEnableTpgt) rest.push({ summary: `enable ${t.iqn} TPG ${TPG}`, lines: [line(`${base} enable`)] });
    if (!fresh && tpg && !tpg.enabled) rest.push({ summary: `enable ${t.iqn} TPG ${TPG} (it was disabled)`, lines: [line(`${base} enable`)] });
    const wantPortals = (t.portals ?? [{ ip: '0.0.0.0', port: 3260 }]).map(portalKey);
    for (const k of portals.filter((x) => !wantPortals.includes(x))) {
      const [ip, port] = splitPortal(k);
      portalDeletes.push({ summary: `${t.iqn}: remove portal ${k}${fresh ? ' (targetcli adds it by default)' : ''}`, lines: [line(`${base}/portals delete ${ip} ${port}`)] });
    }
    for (const k of wantPortals.filter((x) => !portals.includes(x))) {
      const [ip, port] = splitPortal(k);
      rest.push({ summary: `${t.iqn}: listen on ${k}`, lines: [line(`${base}/portals create ${ip} ${port}`)] });
    }
    rest.push(...planTpg(t, base, fresh ? undefined : tpg, wanted, byName, s, replaced));
  }
  return [...deletes, ...creates, ...targetCreates, ...portalDeletes, ...rest];
}

function discoveryLine(da: NonNullable<TargetcliParams['discoveryAuth']>): (string | Secret)[] {
  const parts: (string | Secret)[] = ['/iscsi set discovery_auth enable=1'];
  if (da.chap) parts.push(` userid=${da.chap.user} password=`, da.chap.password);
  if (da.mutualChap) parts.push(` mutual_userid=${da.mutualChap.user} mutual_password=`, da.mutualChap.password);
  return parts;
}

function planTpg(t: TargetParams, base: string, tpg: Tpg | undefined, wanted: ReadonlyMap<string, BackstoreParams>, byName: ReadonlyMap<string, string>, s: LioState, replaced: ReadonlySet<string>): Planned[] {
  const out: Planned[] = [];
  const who = sessionsOf(tpg);
  // Attributes. Authentication defaults to "every ACL has CHAP".
  const acls = t.acls ?? [];
  const auth = t.authentication ?? (acls.length > 0 && acls.every((a) => a.chap !== undefined));
  const attrs: Record<string, number> = { authentication: auth ? 1 : 0, generate_node_acls: t.generateNodeAcls ? 1 : 0, demo_mode_write_protect: t.demoModeWriteProtect === false ? 0 : 1 };
  const differing = Object.entries(attrs).filter(([k, v]) => tpg?.attributes[k] !== v);
  if (differing.length > 0) {
    out.push({ summary: `${t.iqn}: set ${differing.map(([k, v]) => `${k}=${v}`).join(' ')}`, lines: [line(`${base} set attribute ${differing.map(([k, v]) => `${k}=${v}`).join(' ')}`)] });
  }
  // LUNs: number -> backstore key.
  const luns = new Map<number, string>();
  (t.luns ?? []).forEach((l, i) => {
    const key = byName.get(l.backstore) ?? [...s.backstores.keys()].find((k) => k.endsWith(`/${l.backstore}`));
    if (!key) throw new Error(`target ${t.iqn}: LUN backstore "${l.backstore}" is neither in backstores nor on the host`);
    luns.set(l.lun ?? i, key);
  });
  // A LUN deleted in this batch (its backstore re-created, or itself re-pointed) takes its mapped LUNs along.
  const gone = new Set<number>();
  for (const [n, key] of tpg?.luns ?? []) {
    const want = luns.get(n);
    if (replaced.has(key)) gone.add(n);
    if (want === key) continue;
    gone.add(n);
    const d = loggedIn(`${t.iqn}: LUN ${n} ${want ? `points at ${key}, not ${want}` : 'is not wanted'}; changing it under`, who);
    out.push({ summary: `${t.iqn}: remove LUN ${n} (${key}${want ? `, wanted ${want}` : ''})`, lines: [line(`${base}/luns delete lun=${n}`)], ...(d ? { destructive: d } : {}) });
  }
  for (const [n, key] of luns) {
    if (tpg?.luns.get(n) === key && !gone.has(n)) continue;
    if (!wanted.has(key) && !s.backstores.has(key)) throw new Error(`target ${t.iqn}: backstore ${key} does not exist`);
    out.push({ summary: `${t.iqn}: LUN ${n} -> ${key}`, lines: [line(`${base}/luns create /backstores/${key} lun=${n} add_mapped_luns=false`)] });
  }
  // ACLs.
  const wantAcls = new Set(acls.map((a) => a.initiator));
  for (const [ini, a] of tpg?.acls ?? []) {
    if (wantAcls.has(ini)) continue;
    const d = a.session ? `${t.iqn}: removing the ACL of ${ini} cuts it off: it is logged in` : undefined;
    out.push({ summary: `${t.iqn}: remove ACL ${ini}`, lines: [line(`${base}/acls delete ${ini}`)], ...(d ? { destructive: d } : {}) });
  }
  for (const a of acls) out.push(...planAcl(t, base, a, tpg?.acls.get(a.initiator), luns, gone));
  return out;
}

function planAcl(t: TargetParams, base: string, a: AclParams, have: NodeAcl | undefined, luns: ReadonlyMap<number, string>, gone: ReadonlySet<number>): Planned[] {
  const out: Planned[] = [];
  const path = `${base}/acls/${a.initiator}`;
  if (!have) out.push({ summary: `${t.iqn}: allow ${a.initiator}`, lines: [line(`${base}/acls create ${a.initiator} add_mapped_luns=false`)] });
  const mapped: { lun: number; tpgLun?: number; writeProtect?: boolean }[] = a.mappedLuns ?? [...luns.keys()].map((n) => ({ lun: n }));
  const wantMapped = new Map(mapped.map((m) => [m.lun, { tpgLun: m.tpgLun ?? m.lun, writeProtect: m.writeProtect ?? false }]));
  for (const want of wantMapped.values()) {
    if (!luns.has(want.tpgLun)) throw new Error(`target ${t.iqn}: ACL ${a.initiator} maps LUN ${want.tpgLun}, which the target does not have`);
  }
  for (const [m, ml] of have?.mappedLuns ?? []) {
    const want = wantMapped.get(m);
    if (gone.has(ml.tpgLun)) continue; // goes away with its LUN
    if (want && want.tpgLun === ml.tpgLun && want.writeProtect === ml.writeProtect) continue;
    const d = have?.session ? `${t.iqn}: ${a.initiator} is logged in and uses mapped LUN ${m}` : undefined;
    out.push({ summary: `${t.iqn}: ${a.initiator}: remove mapped LUN ${m}`, lines: [line(`${path} delete ${m}`)], ...(d ? { destructive: d } : {}) });
  }
  for (const [m, want] of wantMapped) {
    const h = have?.mappedLuns.get(m);
    if (h && !gone.has(h.tpgLun) && h.tpgLun === want.tpgLun && h.writeProtect === want.writeProtect) continue;
    out.push({
      summary: `${t.iqn}: ${a.initiator}: map LUN ${want.tpgLun} as ${m}${want.writeProtect ? ' (read-only)' : ''}`,
      lines: [line(`${path} create mapped_lun=${m} tpg_lun_or_backstore=${want.tpgLun} write_protect=${want.writeProtect ? 1 : 0}`)],
    });
  }
  const chap = { userid: a.chap?.user ?? '', password: a.chap?.password.reveal() ?? '', mutualUserid: a.mutualChap?.user ?? '', mutualPassword: a.mutualChap?.password.reveal() ?? '' };
  const h = have ?? { userid: '', password: '', mutualUserid: '', mutualPassword: '' };
  const what = [
    chap.userid !== h.userid ? 'user' : '',
    chap.password !== h.password ? 'password' : '',
    chap.mutualUserid !== h.mutualUserid ? 'mutual user' : '',
    chap.mutualPassword !== h.mutualPassword ? 'mutual password' : '',
  ].filter((x) => x !== '');
  if (what.length > 0) {
    // targetcli's parser reads `key=` followed by a blank as taking the NEXT word as its value: an empty value
    // must be written `key=""` (configfs then says NULL).
    const v = (x: string | Secret | undefined): string | Secret => (x === undefined || x === '' ? '""' : x);
    const parts: (string | Secret)[] = [
      `${path} set auth userid=`, v(a.chap?.user), ' password=', v(a.chap?.password),
      ' mutual_userid=', v(a.mutualChap?.user), ' mutual_password=', v(a.mutualChap?.password),
    ];
    out.push({ summary: `${t.iqn}: ${a.initiator}: ${a.chap ? `set CHAP (${have ? `${what.join(', ')} changed` : 'new'})` : 'remove CHAP'}`, lines: [line(...parts)] });
  }
  return out;
}
