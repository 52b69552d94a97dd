/**
 * What the repository module writes, computed from its params alone (pure): the deb822 .sources file, the
 * yum .repo file, the paths, and the OpenPGP key in the form its path wants.
 *
 * Key forms. apt reads a Signed-By keyring by its extension: `.asc` is an ASCII-armored key (apt >= 1.4),
 * anything else (`.gpg`) a binary one; gpgv rejects an armored key in a `.gpg` file. rpm/dnf want an armored
 * key. An armored key given as content is written as NAME.asc as it is, so no gpg is needed on the host and
 * diffs show its text; a `.gpg` path gets it dearmored here (base64 of the packets, CRC-24 checked). A key
 * given as a URL is unknown until it is downloaded, so its default path is NAME.gpg (what the MooseFS
 * instructions use): the host's download step dearmors an armored download with sed and base64.
 */
export type RepoKind = 'apt' | 'yum';
/** asc: armored for apt; gpg: binary for apt; rpm: armored for rpm/dnf. */
export type KeyForm = 'asc' | 'gpg' | 'rpm';

export interface RepositoryKey {
  /** Where to download the key from, on the host (curl or wget). */
  url?: string;
  /** The key itself: ASCII-armored text, or a binary key in base64. */
  content?: string;
  /** Where the key is written. */
  path?: string;
  /** Download the key again (url only) and replace the file when it differs. */
  refresh?: boolean;
}

export interface AptSource {
  types?: ('deb' | 'deb-src')[];
  uris: string[];
  suites: string[];
  components?: string[];
  architectures?: string[];
  enabled?: boolean;
  key?: RepositoryKey;
}

export interface YumRepo {
  name?: string;
  baseurl?: string[];
  mirrorlist?: string;
  metalink?: string;
  enabled?: boolean;
  gpgcheck?: boolean;
  gpgkey?: RepositoryKey;
}

export interface RepositoryParams {
  name: string;
  state?: 'present' | 'absent';
  apt?: AptSource;
  yum?: YumRepo;
  updateCache?: boolean;
}

export const APT_SOURCES_DIR = '/etc/apt/sources.list.d';
export const APT_KEYRINGS = '/etc/apt/keyrings';
export const YUM_REPOS_DIR = '/etc/yum.repos.d';
export const RPM_KEYS_DIR = '/etc/pki/rpm-gpg';

const BEGIN = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const END = '-----END PGP PUBLIC KEY BLOCK-----';
/** First byte of a binary public key: packet tag 6, old format (3 length types) or new format. */
const KEY_PACKET_TAGS = [0x98, 0x99, 0x9a, 0xc6];

export interface KeyPlacement {
  readonly path: string;
  readonly form: KeyForm;
  readonly spec: RepositoryKey;
}

export interface Layout {
  readonly kind: RepoKind;
  /** The .sources or .repo file. */
  readonly source: string;
  /** The key to put in place (state present, a key given). */
  readonly key: KeyPlacement | null;
  /** Key files removed with the repository (state absent). */
  readonly removeKeys: readonly string[];
}

export function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

/** A line starts an armored public key block (what the host's download step greps for). */
export function isArmored(text: string | Uint8Array): boolean {
  const s = typeof text === 'string' ? text : Buffer.from(text).toString('latin1');
  return /^-----BEGIN PGP PUBLIC KEY BLOCK-----/m.test(s);
}

export function isBinaryKey(bytes: Uint8Array): boolean {
  return bytes.length > 0 && KEY_PACKET_TAGS.includes(bytes[0] ?? 0);
}

/** A key given as content: the armored text as bytes, or the binary key decoded from base64. */
export function contentBytes(content: string, what: string): Buffer {
  if (isArmored(content)) return Buffer.from(content, 'utf8');
  const compact = content.replace(/\s+/g, '');
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(compact) ? Buffer.from(compact, 'base64') : Buffer.alloc(0);
  if (!isBinaryKey(bytes)) throw new Error(`${what} is neither an ASCII-armored public key (${BEGIN}) nor a binary one in base64`);
  return bytes;
}

/** OpenPGP's CRC-24 (RFC 4880 6.1), as the armor checksum carries it. */
export function crc24(bytes: Uint8Array): number {
  let crc = 0xb704ce;
  for (const b of bytes) {
    crc ^= b << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

/** The packets of one armored public key block (what `gpg --dearmor` writes). */
export function dearmor(text: string, what: string): Buffer {
  const lines = text.replace(/\r/g, '').split('\n');
  if (lines.filter((l) => l === BEGIN).length !== 1) throw new Error(`${what} must hold exactly one armored public key block`);
  let i = lines.indexOf(BEGIN) + 1;
  while (i < lines.length && lines[i] !== '') i++;
  const body: string[] = [];
  let checksum: string | undefined;
  for (i++; i < lines.length && lines[i] !== END; i++) {
    const line = lines[i] ?? '';
    if (line.startsWith('=')) checksum = line.slice(1);
    else body.push(line);
  }
  if (i >= lines.length) throw new Error(`${what}: the armored key has no ${END} line`);
  const bytes = Buffer.from(body.join(''), 'base64');
  if (!isBinaryKey(bytes)) throw new Error(`${what}: the armored block does not hold a public key`);
  if (checksum !== undefined && Buffer.from(checksum, 'base64').readUIntBE(0, 3) !== crc24(bytes)) {
    throw new Error(`${what}: the armored key's CRC-24 checksum does not match its content`);
  }
  return bytes;
}

/** The bytes a key file of this form holds, from the key as given or downloaded. */
export function keyBytes(form: KeyForm, raw: Buffer, what: string): Buffer {
  if (isArmored(raw)) return form === 'gpg' ? dearmor(raw.toString('utf8'), what) : raw;
  if (!isBinaryKey(raw)) throw new Error(`${what} is not an OpenPGP public key (neither armored nor binary)`);
  if (form === 'gpg') return raw;
  throw new Error(
    form === 'asc'
      ? `${what} is a binary key: an .asc keyring must be ASCII-armored (give key.path ending in .gpg)`
      : `${what} is a binary key: rpm needs an ASCII-armored one`,
  );
}

function aptKeyPlacement(name: string, spec: RepositoryKey): KeyPlacement {
  const armoredContent = spec.content !== undefined && isArmored(spec.content);
  const path = spec.path ?? `${APT_KEYRINGS}/${name}.${armoredContent ? 'asc' : 'gpg'}`;
  return { path, form: path.endsWith('.asc') ? 'asc' : 'gpg', spec };
}

/** The files of the repository on a host of this kind. */
export function layoutOf(p: RepositoryParams, kind: RepoKind): Layout {
  const absent = p.state === 'absent';
  if (kind === 'apt') {
    const spec = p.apt?.key;
    const key = spec && !absent ? aptKeyPlacement(p.name, spec) : null;
    const removeKeys = !absent ? [] : spec?.path ? [spec.path] : [`${APT_KEYRINGS}/${p.name}.asc`, `${APT_KEYRINGS}/${p.name}.gpg`];
    return { kind, source: `${APT_SOURCES_DIR}/${p.name}.sources`, key, removeKeys };
  }
  const spec = p.yum?.gpgkey;
  const keyPath = spec?.path ?? `${RPM_KEYS_DIR}/RPM-GPG-KEY-${p.name}`;
  return {
    kind,
    source: `${YUM_REPOS_DIR}/${p.name}.repo`,
    key: spec && !absent ? { path: keyPath, form: 'rpm', spec } : null,
    removeKeys: absent ? [keyPath] : [],
  };
}

const HEADER = (name: string) => `# Managed by sanbook (repository ${name}): changes here are replaced.\n`;

/** The deb822 .sources file (sources.list(5)). */
export function renderAptSource(name: string, src: AptSource, keyPath: string | null): string {
  const components = src.components ?? [];
  if (components.length === 0 && !src.suites.every((s) => s.endsWith('/'))) {
    throw new Error(`repository ${name}: apt.components is required unless every suite is an exact path ending in /`);
  }
  const fields: [string, string | undefined][] = [
    ['Types', (src.types ?? ['deb']).join(' ')],
    ['URIs', src.uris.join(' ')],
    ['Suites', src.suites.join(' ')],
    ['Components', components.length > 0 ? components.join(' ') : undefined],
    ['Architectures', src.architectures?.join(' ')],
    ['Signed-By', keyPath ?? undefined],
    ['Enabled', src.enabled === false ? 'no' : undefined],
  ];
  return HEADER(name) + fields.flatMap(([k, v]) => (v === undefined ? [] : [`${k}: ${v}\n`])).join('');
}

/** The .repo file (dnf.conf(5) / yum.conf(5)); several baseurls go on continuation lines. */
export function renderYumRepo(name: string, repo: YumRepo, keyPath: string | null): string {
  const baseurl = repo.baseurl ?? [];
  if (baseurl.length === 0 && repo.mirrorlist === undefined && repo.metalink === undefined) {
    throw new Error(`repository ${name}: yum needs baseurl, mirrorlist or metalink`);
  }
  const lines = [
    `[${name}]`,
    `name=${repo.name ?? name}`,
    ...(baseurl.length > 0 ? [`baseurl=${baseurl.join('\n        ')}`] : []),
    ...(repo.mirrorlist !== undefined ? [`mirrorlist=${repo.mirrorlist}`] : []),
    ...(repo.metalink !== undefined ? [`metalink=${repo.metalink}`] : []),
    `enabled=${repo.enabled === false ? 0 : 1}`,
    `gpgcheck=${repo.gpgcheck === false ? 0 : 1}`,
    ...(keyPath !== null ? [`gpgkey=file://${keyPath}`] : []),
  ];
  return `${HEADER(name)}${lines.join('\n')}\n`;
}

/** The file text of the repository (state present). */
export function renderSource(p: RepositoryParams, layout: Layout): string {
  const keyPath = layout.key?.path ?? null;
  if (layout.kind === 'apt') {
    if (!p.apt) throw new Error(`repository ${p.name}: no apt source given`);
    return renderAptSource(p.name, p.apt, keyPath);
  }
  if (!p.yum) throw new Error(`repository ${p.name}: no yum repository given`);
  return renderYumRepo(p.name, p.yum, keyPath);
}
