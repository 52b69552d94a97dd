/**
 * OpenSSH known_hosts files: parsing, the verdict for a presented host key, and recording a new key.
 *
 * Supported: plain host names and addresses, comma lists, wildcards (* and ?), negations (!pattern),
 * `[host]:port` for ports other than 22, hashed names (`|1|salt|hash`, HMAC-SHA1 of the name as looked up),
 * `@revoked` lines (a key listed there is refused whatever the policy), comments and blank lines.
 * `@cert-authority` lines are ignored (host certificates are not supported). Lines that cannot be parsed are
 * skipped, as OpenSSH does.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export type HostKeyStatus = 'match' | 'mismatch' | 'unknown' | 'revoked';

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker: 'revoked' | 'cert-authority' | null;
  /** The host field as written (a comma list of patterns, or one hashed name). */
  hosts: string;
  keyType: string;
  key: Buffer;
}

export interface HostKeyVerdict {
  status: HostKeyStatus;
  /** The line that decided: the matching entry, the conflicting entry (mismatch) or the revocation. */
  line?: number;
  /** Key types known for this host (whatever the verdict). */
  knownTypes: string[];
}

/** The name OpenSSH looks a host up by: `host` on port 22, `[host]:port` otherwise. */
export function hostKeyName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/** The key type written inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, ...), or null. */
export function keyTypeOf(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || blob.length < 4 + length) return null;
  const type = blob.subarray(4, 4 + length).toString('latin1');
  return /^[\x21-\x7e]+$/.test(type) ? type : null;
}

/** `SHA256:...` as `ssh-keygen -l` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** `ssh-ed25519 SHA256:...`, for messages. */
export function describeKey(blob: Buffer): string {
  return `${keyTypeOf(blob) ?? 'unknown-type'} ${fingerprint(blob)}`;
}

function parseLine(text: string, line: number): KnownHostEntry | null {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return null;
  const fields = trimmed.split(/\s+/);
  let marker: KnownHostEntry['marker'] = null;
  if (fields[0]?.startsWith('@')) {
    const name = fields.shift();
    if (name === '@revoked') marker = 'revoked';
    else if (name === '@cert-authority') marker = 'cert-authority';
    else return null;
  }
  const [hosts, keyType, base64] = fields;
  if (hosts === undefined || keyType === undefined || base64 === undefined) return null;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return null;
  const key = Buffer.from(base64, 'base64');
  if (keyTypeOf(key) !== keyType) return null;
  return { line, marker, hosts, keyType, key };
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((lineText, i) => {
    const entry = parseLine(lineText, i + 1);
    if (entry !== null) entries.push(entry);
  });
  return entries;
}

/** Parsed files by path, with the size and time they had: 200 connections read one file once, not 200 times. */
const parsed = new Map<string, { size: number; mtimeMs: number; ino: number; entries: KnownHostEntry[] }>();

/** Read and parse a known_hosts file; a missing file is an empty one. Re-read whenever the file changed. */
export async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    const st = await stat(file);
    const cached = parsed.get(file);
    if (cached && cached.size === st.size && cached.mtimeMs === st.mtimeMs && cached.ino === st.ino) return cached.entries;
    const entries = parseKnownHosts(await readFile(file, 'utf8'));
    parsed.set(file, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, entries });
    return entries;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

const patterns = new Map<string, RegExp>();

function wildcardMatch(pattern: string, name: string): boolean {
  // Most patterns are plain names: compare them (as OpenSSH does, ignoring case) without a regex.
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern.length === name.length && pattern.toLowerCase() === name.toLowerCase();
  let re = patterns.get(pattern);
  if (re === undefined) {
    re = wildcardRegex(pattern);
    patterns.set(pattern, re);
  }
  return re.test(name);
}

function wildcardRegex(pattern: string): RegExp {
  let regex = '^';
  for (const c of pattern) {
    if (c === '*') regex += '.*';
    else if (c === '?') regex += '.';
    else regex += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${regex}$`, 'is');
}

function hashedMatch(field: string, name: string): boolean {
  const parts = field.split('|');
  if (parts.length !== 4 || parts[1] !== '1' || parts[2] === undefined || parts[3] === undefined) return false;
  const salt = Buffer.from(parts[2], 'base64');
  const expected = Buffer.from(parts[3], 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Does a known_hosts host field name this host? (A negated pattern that matches wins over all.) */
export function hostsFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|')) return hashedMatch(field, name);
  let positive = false;
  for (const pattern of field.split(',')) {
    if (pattern === '') continue;
    if (pattern.startsWith('!')) {
      if (wildcardMatch(pattern.slice(1), name)) return false;
    } else if (wildcardMatch(pattern, name)) {
      positive = true;
    }
  }
  return positive;
}

/** The key types the file holds for address:port (ssh2 is told to prefer them, as OpenSSH does). */
export function knownKeyTypes(entries: readonly KnownHostEntry[], address: string, port: number): string[] {
  const name = hostKeyName(address, port);
  return [...new Set(entries.filter((e) => e.marker === null && hostsFieldMatches(e.hosts, name)).map((e) => e.keyType))];
}

/** Decide what a presented host key means for address:port, given the entries of a known_hosts file. */
export function checkHostKey(entries: readonly KnownHostEntry[], address: string, port: number, key: Buffer): HostKeyVerdict {
  const name = hostKeyName(address, port);
  const type = keyTypeOf(key);
  for (const e of entries) {
    if (e.marker === 'revoked' && e.key.equals(key) && hostsFieldMatches(e.hosts, name)) {
      return { status: 'revoked', line: e.line, knownTypes: [] };
    }
  }
  const forHost = entries.filter((e) => e.marker === null && hostsFieldMatches(e.hosts, name));
  const knownTypes = knownKeyTypes(forHost, address, port);
  const same = forHost.find((e) => e.key.equals(key));
  if (same !== undefined) return { status: 'match', line: same.line, knownTypes };
  const conflicting = forHost.find((e) => e.keyType === type);
  if (conflicting !== undefined) return { status: 'mismatch', line: conflicting.line, knownTypes };
  return { status: 'unknown', knownTypes };
}

/** The line recorded for a host key: `[host]:port type base64`. */
export function knownHostsLine(address: string, port: number, key: Buffer): string {
  const type = keyTypeOf(key);
  if (type === null) throw new Error('not an SSH public key blob');
  return `${hostKeyName(address, port)} ${type} ${key.toString('base64')}`;
}

/**
 * Append a host key to a known_hosts file (accept-new). The folder is created 0700 and the file 0600 when
 * missing; a file that does not end with a newline gets one first. One write with O_APPEND, so parallel
 * connections appending to the same file do not interleave.
 */
export async function appendKnownHost(file: string, address: string, port: number, key: Buffer): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const handle = await open(file, 'a+', 0o600);
  try {
    const { size } = await handle.stat();
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) prefix = '\n';
    }
    await handle.write(`${prefix}${knownHostsLine(address, port, key)}\n`);
  } finally {
    await handle.close();
  }
}
