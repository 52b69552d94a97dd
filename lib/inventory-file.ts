/**
 * Reading inventory files: YAML (with a `!secret` tag), JSON, or the default export of a TS/JS module (an
 * object, an Inventory, or a function returning either). Syntax errors name the file, line and column.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseDocument, type ScalarTag, type YAMLError } from 'yaml';
import { combineErrors, UserError } from './errors.ts';
import { MASK, Secret } from './secret.ts';

const secretTag: ScalarTag = {
  tag: '!secret',
  identify: (value) => value instanceof Secret,
  resolve: (text) => new Secret(text),
  stringify: () => MASK,
};

/** Read an inventory file: .yaml/.yml, .json, or a .ts/.mts/.js/.mjs module's default export. */
export async function readInventoryFile(path: string): Promise<unknown> {
  const ext = extname(path).toLowerCase();
  const isModule = ['.ts', '.mts', '.js', '.mjs'].includes(ext);
  if (!isModule && !['.yaml', '.yml', '.json'].includes(ext)) {
    const use = 'use .yaml, .yml, .json, .ts, .mts, .js or .mjs';
    throw new UserError(`unsupported inventory type '${ext || '(no extension)'}': ${use}`, { file: path });
  }
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new UserError('inventory file not found', { file: path });
  if (!info.isFile()) throw new UserError('is not a file', { file: path });
  if (isModule) return importDefault(path);
  const text = decodeText(await readFile(path), path);
  return ext === '.json' ? parseJson(text, path) : parseYaml(text, path);
}

/** Line and column (1-based) of a byte offset. */
function position(bytes: Buffer, offset: number): string {
  const before = bytes.subarray(0, offset);
  const line = before.filter((b) => b === 0x0a).length + 1;
  const column = new TextDecoder().decode(before.subarray(before.lastIndexOf(0x0a) + 1)).length + 1;
  return `line ${line}, column ${column}`;
}

/** The file as UTF-8 text; a byte that is not UTF-8, or a NUL, is an error naming where it is. */
export function decodeText(bytes: Buffer, file: string): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new UserError(`${position(bytes, nul)}: a NUL byte (is this a text file?)`, { file });
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Find the first byte that does not decode: the longest prefix that decodes (as a stream: a character cut at
    // the end of a prefix is not an error yet).
    let lo = 0;
    let hi = bytes.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (decodes(bytes.subarray(0, mid))) lo = mid;
      else hi = mid - 1;
    }
    // A character cut short: point at its lead byte, not at the byte after.
    let k = lo;
    while (k > 0 && ((bytes[k - 1] as number) & 0xc0) === 0x80) k--;
    if (k > 0 && ((bytes[k - 1] as number) & 0xc0) === 0xc0) lo = k - 1;
    const bad = bytes.subarray(lo, lo + 4).toString('hex').replace(/(..)/g, '\\x$1');
    throw new UserError(`${position(bytes, lo)}: not UTF-8 (the bytes ${bad}...); save the file as UTF-8`, { file });
  }
}

function decodes(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}

function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { customTags: [secretTag], merge: true, prettyErrors: true });
  const issues = [...doc.errors, ...doc.warnings];
  if (issues.length > 0) throw combineErrors(issues.map(yamlProblem)).at({ file });
  try {
    return doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new UserError(`cannot read the YAML: ${e instanceof Error ? e.message : String(e)}`, { file });
  }
}

function yamlProblem(e: YAMLError): UserError {
  const [head = '', ...frame] = e.message.split('\n');
  const message = head.replace(/ at line \d+, column \d+:?$/, '');
  const pos = e.linePos?.[0];
  const at = pos ? `line ${pos.line}, column ${pos.col}: ` : '';
  const context = frame.filter((l) => l.trim() !== '').map((l) => `    ${l}`).join('\n');
  const hint = message.includes('!vault') ? ' (Ansible Vault is not supported: mark secrets with !secret)' : '';
  return new UserError(`${at}${message}${hint}${context ? `\n${context}` : ''}`);
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const pos = /at position (\d+)/.exec(message);
    let at = '';
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      at = `line ${before.split('\n').length}, column ${before.length - before.lastIndexOf('\n')}: `;
    }
    throw new UserError(`${at}invalid JSON: ${message.replace(/,? (in JSON )?at position \d+.*$/s, '')}`, { file });
  }
}

async function importDefault(path: string): Promise<unknown> {
  let value: unknown;
  try {
    const mod = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
    value = mod['default'];
    if (typeof value === 'function') value = (value as () => unknown)();
    value = await value;
  } catch (e) {
    if (e instanceof UserError) throw e.at({ file: path });
    const code = (e as { code?: unknown } | null)?.code;
    if (code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      const how = 'run with `npx tsx` or `node --import tsx`';
      throw new UserError(`a TypeScript inventory needs tsx: ${how}`, { file: path });
    }
    const text = e instanceof Error ? (e.name === 'Error' ? e.message : `${e.name}: ${e.message}`) : String(e);
    throw new UserError(`the inventory module failed: ${text}`, { file: path });
  }
  if (value === undefined || value === null) {
    const expected = 'expected `export default { all: { hosts: ... } }` or an Inventory';
    throw new UserError(`exports nothing usable: ${expected}`, { file: path });
  }
  return value;
}
