/**
 * LIO's state as one model, read from the running kernel (the configfs dump of dump.ts) or from the saved
 * configuration (saveconfig.json), so that the two can be compared and planned against. Pure parsers.
 */

export type Plugin = 'block' | 'fileio' | 'pscsi' | 'ramdisk' | 'user';

export interface Backstore {
  readonly plugin: Plugin;
  readonly name: string;
  /** The block device or file (udev_path in configfs, `dev` in saveconfig.json). */
  readonly dev: string;
  /** fileio: size in bytes when known. */
  readonly size?: number;
  readonly writeBack?: boolean;
  readonly wwn?: string;
}

export interface MappedLun {
  readonly tpgLun: number;
  readonly writeProtect: boolean;
}

export interface NodeAcl {
  readonly mappedLuns: ReadonlyMap<number, MappedLun>;
  readonly userid: string;
  readonly password: string;
  readonly mutualUserid: string;
  readonly mutualPassword: string;
  /** An initiator is logged in with this ACL now (configfs only). */
  readonly session: boolean;
}

export interface Tpg {
  readonly enabled: boolean;
  readonly attributes: Readonly<Record<string, number>>;
  /** 'ip:port', IPv6 as '[addr]:port'. */
  readonly portals: readonly string[];
  /** LUN index -> backstore key ('block/data1'). */
  readonly luns: ReadonlyMap<number, string>;
  readonly acls: ReadonlyMap<string, NodeAcl>;
  /** Initiators logged in through generated (dynamic) ACLs. */
  readonly dynamicSessions: readonly string[];
}

export interface LioState {
  /** False when the target core is not loaded (nothing configured since boot). */
  readonly loaded: boolean;
  /** Key: 'plugin/name'. */
  readonly backstores: ReadonlyMap<string, Backstore>;
  /** Key: target IQN; value: TPG tag -> TPG. */
  readonly targets: ReadonlyMap<string, ReadonlyMap<number, Tpg>>;
  readonly discoveryAuth: { readonly enabled: boolean; readonly userid: string; readonly password: string; readonly mutualUserid: string; readonly mutualPassword: string };
}

export const backstoreKey = (plugin: string, name: string): string => `${plugin}/${name}`;

const HBA_PLUGINS: Readonly<Record<string, Plugin>> = { iblock: 'block', fileio: 'fileio', pscsi: 'pscsi', rd_mcp: 'ramdisk', user: 'user' };

/** configfs stores "NULL" for an unset discovery credential and an empty line for an unset ACL one. */
const cred = (v: string | undefined): string => (v === undefined || v === 'NULL' ? '' : v);

interface MutableTpg {
  enabled: boolean;
  attributes: Record<string, number>;
  portals: string[];
  luns: Map<number, string>;
  acls: Map<string, { mappedLuns: Map<number, MappedLun>; files: Map<string, string>; lunFiles: Map<number, string> }>;
  dynamicSessions: string[];
}

/** Parse the output of configfsDumpCommand() (see dump.ts for its format). */
export function parseConfigfs(stdout: string): LioState {
  const lines = stdout.split('\n').filter((l) => l !== '');
  if (lines.length === 1 && lines[0] === 'ABSENT') return emptyState(false);
  const files = new Map<string, string[]>();
  const links = new Map<string, string>();
  const dirs: string[] = [];
  for (const line of lines) {
    const [kind, path, ...rest] = line.split('\t');
    if (path === undefined) throw new Error(`configfs dump: malformed line "${line}"`);
    if (kind === 'D') dirs.push(path);
    else if (kind === 'L') links.set(path, rest.join('\t'));
    else if (kind === 'F') files.set(path, [...(files.get(path) ?? []), rest.join('\t')]);
    else throw new Error(`configfs dump: malformed line "${line}"`);
  }
  const file = (p: string): string | undefined => files.get(p)?.join('\n');

  const backstores = new Map<string, Backstore>();
  for (const d of dirs) {
    const m = /^core\/([a-z_]+)_\d+\/([^/]+)$/.exec(d);
    if (!m || m[1] === undefined || m[2] === undefined) continue;
    const plugin = HBA_PLUGINS[m[1]];
    if (!plugin) continue;
    const info = file(`${d}/info`) ?? '';
    const size = /\bSize: (\d+)/.exec(info);
    const wce = file(`${d}/attrib/emulate_write_cache`);
    const wwn = /Number: (\S+)/.exec(file(`${d}/wwn/vpd_unit_serial`) ?? '');
    backstores.set(backstoreKey(plugin, m[2]), {
      plugin,
      name: m[2],
      dev: file(`${d}/udev_path`) ?? '',
      ...(plugin === 'fileio' && size?.[1] ? { size: Number(size[1]) } : {}),
      ...(wce !== undefined ? { writeBack: wce.trim() === '1' } : {}),
      ...(wwn?.[1] ? { wwn: wwn[1] } : {}),
    });
  }
  const soOf = (link: string): string | undefined => {
    const m = /core\/([a-z_]+)_\d+\/([^/]+)$/.exec(link);
    const plugin = m?.[1] ? HBA_PLUGINS[m[1]] : undefined;
    return plugin && m?.[2] ? backstoreKey(plugin, m[2]) : undefined;
  };

  const targets = new Map<string, Map<number, MutableTpg>>();
  const tpgOf = (iqn: string, tag: number): MutableTpg => {
    let t = targets.get(iqn);
    if (!t) targets.set(iqn, (t = new Map()));
    let tpg = t.get(tag);
    if (!tpg) t.set(tag, (tpg = { enabled: false, attributes: {}, portals: [], luns: new Map(), acls: new Map(), dynamicSessions: [] }));
    return tpg;
  };
  for (const d of dirs) {
    const target = /^iscsi\/(iqn\.[^/]+|naa\.[^/]+|eui\.[^/]+)$/.exec(d);
    if (target?.[1]) {
      if (!targets.has(target[1])) targets.set(target[1], new Map());
      continue;
    }
    const m = /^iscsi\/([^/]+)\/tpgt_(\d+)(?:\/(np|acls)\/([^/]+))?$/.exec(d);
    if (!m || m[1] === undefined || m[2] === undefined) continue;
    const base = `iscsi/${m[1]}/tpgt_${m[2]}`;
    const tpg = tpgOf(m[1], Number(m[2]));
    if (m[3] === 'np' && m[4]) tpg.portals.push(m[4]);
    else if (m[3] === 'acls' && m[4]) tpg.acls.set(m[4], { mappedLuns: new Map(), files: new Map(), lunFiles: new Map() });
    else {
      tpg.enabled = file(`${base}/enable`)?.trim() === '1';
      for (const a of ['authentication', 'generate_node_acls', 'demo_mode_write_protect', 'cache_dynamic_acls']) {
        const v = file(`${base}/attrib/${a}`);
        if (v !== undefined) tpg.attributes[a] = Number(v.trim());
      }
      tpg.dynamicSessions = (file(`${base}/dynamic_sessions`) ?? '').split('\n').map((s) => s.trim()).filter((s) => s !== '');
    }
  }
  for (const [path, link] of links) {
    const lun = /^iscsi\/([^/]+)\/tpgt_(\d+)\/lun\/lun_(\d+)\/[^/]+$/.exec(path);
    if (lun?.[1] && lun[2] && lun[3]) {
      const so = soOf(link);
      if (so) tpgOf(lun[1], Number(lun[2])).luns.set(Number(lun[3]), so);
      continue;
    }
    const mapped = /^iscsi\/([^/]+)\/tpgt_(\d+)\/acls\/([^/]+)\/lun_(\d+)\/[^/]+$/.exec(path);
    const tpgLun = /\/lun\/lun_(\d+)$/.exec(link);
    if (mapped?.[1] && mapped[2] && mapped[3] && mapped[4] && tpgLun?.[1]) {
      const acl = tpgOf(mapped[1], Number(mapped[2])).acls.get(mapped[3]);
      const wp = file(`iscsi/${mapped[1]}/tpgt_${mapped[2]}/acls/${mapped[3]}/lun_${mapped[4]}/write_protect`);
      acl?.mappedLuns.set(Number(mapped[4]), { tpgLun: Number(tpgLun[1]), writeProtect: wp?.trim() === '1' });
    }
  }
  const out = new Map<string, Map<number, Tpg>>();
  for (const [iqn, tpgs] of targets) {
    const m = new Map<number, Tpg>();
    for (const [tag, t] of tpgs) {
      const base = `iscsi/${iqn}/tpgt_${tag}/acls`;
      const acls = new Map<string, NodeAcl>();
      for (const [ini, a] of t.acls) {
        const f = (n: string) => file(`${base}/${ini}/auth/${n}`);
        acls.set(ini, {
          mappedLuns: a.mappedLuns,
          userid: cred(f('userid')),
          password: cred(f('password')),
          mutualUserid: cred(f('userid_mutual')),
          mutualPassword: cred(f('password_mutual')),
          session: !/^No active iSCSI Session/.test(file(`${base}/${ini}/info`) ?? 'No active iSCSI Session'),
        });
      }
      m.set(tag, { enabled: t.enabled, attributes: t.attributes, portals: [...t.portals].sort(), luns: t.luns, acls, dynamicSessions: t.dynamicSessions });
    }
    out.set(iqn, m);
  }
  const da = (n: string) => cred(file(`iscsi/discovery_auth/${n}`)?.trim());
  return {
    loaded: true,
    backstores,
    targets: out,
    discoveryAuth: {
      enabled: da('enforce_discovery_auth') === '1',
      userid: da('userid'),
      password: da('password'),
      mutualUserid: da('userid_mutual'),
      mutualPassword: da('password_mutual'),
    },
  };
}

export function emptyState(loaded: boolean): LioState {
  return { loaded, backstores: new Map(), targets: new Map(), discoveryAuth: { enabled: false, userid: '', password: '', mutualUserid: '', mutualPassword: '' } };
}

// ---------------------------------------------------------------------------------------------------------
// saveconfig.json (the parsing boundary: unknown JSON in, the model out)

const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

/** Parse /etc/rtslib-fb-target/saveconfig.json (or /etc/target/saveconfig.json); '' means nothing saved. */
export function parseSaveconfig(text: string): LioState {
  if (text.trim() === '') return emptyState(true);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`saveconfig.json is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const root = obj(json);
  const backstores = new Map<string, Backstore>();
  for (const raw of arr(root.storage_objects)) {
    const so = obj(raw);
    const plugin = str(so.plugin) as Plugin;
    backstores.set(backstoreKey(plugin, str(so.name)), {
      plugin,
      name: str(so.name),
      dev: str(so.dev),
      ...(plugin === 'fileio' && so.size !== undefined ? { size: num(so.size) } : {}),
      ...(typeof so.write_back === 'boolean' ? { writeBack: so.write_back } : {}),
      ...(typeof so.wwn === 'string' ? { wwn: so.wwn } : {}),
    });
  }
  const targets = new Map<string, Map<number, Tpg>>();
  for (const rawT of arr(root.targets)) {
    const t = obj(rawT);
    if (str(t.fabric) !== 'iscsi') continue;
    const tpgs = new Map<number, Tpg>();
    for (const rawTpg of arr(t.tpgs)) {
      const tpg = obj(rawTpg);
      const attrs = obj(tpg.attributes);
      const attributes: Record<string, number> = {};
      for (const a of ['authentication', 'generate_node_acls', 'demo_mode_write_protect', 'cache_dynamic_acls']) if (attrs[a] !== undefined) attributes[a] = num(attrs[a]);
      const luns = new Map<number, string>();
      for (const rawL of arr(tpg.luns)) {
        const l = obj(rawL);
        const m = /^\/backstores\/([^/]+)\/(.+)$/.exec(str(l.storage_object));
        if (m?.[1] && m[2]) luns.set(num(l.index), backstoreKey(m[1], m[2]));
      }
      const acls = new Map<string, NodeAcl>();
      for (const rawA of arr(tpg.node_acls)) {
        const a = obj(rawA);
        const mappedLuns = new Map<number, MappedLun>();
        for (const rawM of arr(a.mapped_luns)) {
          const ml = obj(rawM);
          mappedLuns.set(num(ml.index), { tpgLun: num(ml.tpg_lun), writeProtect: ml.write_protect === true });
        }
        acls.set(str(a.node_wwn), {
          mappedLuns,
          userid: str(a.chap_userid),
          password: str(a.chap_password),
          mutualUserid: str(a.chap_mutual_userid),
          mutualPassword: str(a.chap_mutual_password),
          session: false,
        });
      }
      const portals = arr(tpg.portals).map((rawP) => {
        const p = obj(rawP);
        const ip = str(p.ip_address);
        return `${ip.includes(':') && !ip.startsWith('[') ? `[${ip}]` : ip}:${num(p.port)}`;
      });
      tpgs.set(num(tpg.tag), { enabled: tpg.enable === true || tpg.enable === 1, attributes, portals: portals.sort(), luns, acls, dynamicSessions: [] });
    }
    targets.set(str(t.wwn), tpgs);
  }
  // Discovery auth lives in the iscsi fabric module's entry: discovery_enable_auth, discovery_userid, ...
  const fabric = obj(arr(root.fabric_modules).map(obj).find((m) => str(m.name) === 'iscsi'));
  return {
    loaded: true,
    backstores,
    targets,
    discoveryAuth: {
      enabled: fabric.discovery_enable_auth === true,
      userid: cred(str(fabric.discovery_userid)),
      password: cred(str(fabric.discovery_password)),
      mutualUserid: cred(str(fabric.discovery_mutual_userid)),
      mutualPassword: cred(str(fabric.discovery_mutual_password)),
    },
  };
}

/** The configuration part of a state as a canonical string (sessions and WWNs left out): equal strings, same config. */
export function configKey(s: LioState): string {
  const sorted = <V>(m: ReadonlyMap<string | number, V>) => [...m.entries()].sort(([a], [b]) => String(a).localeCompare(String(b)));
  return JSON.stringify({
    backstores: sorted(s.backstores).map(([k, b]) => [k, b.dev, b.size ?? null, b.writeBack ?? null]),
    targets: sorted(s.targets).map(([iqn, tpgs]) => [
      iqn,
      sorted(tpgs).map(([tag, t]) => [
        tag,
        t.enabled,
        sorted(new Map(Object.entries(t.attributes))),
        t.portals,
        sorted(t.luns),
        sorted(t.acls).map(([ini, a]) => [ini, a.userid, a.password, a.mutualUserid, a.mutualPassword, sorted(a.mappedLuns).map(([i, m]) => [i, m.tpgLun, m.writeProtect])]),
      ]),
    ]),
    discovery: s.discoveryAuth,
  });
}

/**
 * A boolean preference of targetcli's ~/.targetcli/prefs.bin (a Python pickle of a dict of simple values),
 * given as base64. The key's string is followed by an optional memo opcode and NEWTRUE (0x88) or NEWFALSE (0x89).
 */
export function pickledPref(base64: string, key: string, fallback: boolean): boolean {
  const bytes = Buffer.from(base64.trim(), 'base64');
  const needle = Buffer.from(key, 'utf8');
  let at = bytes.indexOf(needle);
  while (at >= 0) {
    let i = at + needle.length;
    if (bytes[i] === 0x71) i += 2; // BINPUT n
    else if (bytes[i] === 0x72) i += 5; // LONG_BINPUT nnnn
    else if (bytes[i] === 0x94) i += 1; // MEMOIZE (protocol 4)
    if (bytes[i] === 0x88) return true;
    if (bytes[i] === 0x89) return false;
    at = bytes.indexOf(needle, at + 1);
  }
  return fallback;
}
