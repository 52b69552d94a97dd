/**
 * mdadm.conf for the mdadm module: read it, write the ARRAY line as `mdadm --detail --brief` does, edit it in
 * place; and the initramfs images whose age is compared with it.
 */
import { mdadmUuid, sameUuid, uuidHex } from './parse.ts';

export interface ConfArray {
  /** Line indexes [first, end) of the entry (continuation lines included). */
  readonly first: number;
  readonly end: number;
  readonly device: string | null;
  /** key=value words, keys lowercased */
  readonly attrs: Readonly<Record<string, string>>;
}

export interface Conf {
  readonly lines: readonly string[];
  readonly arrays: readonly ConfArray[];
  /** The HOMEHOST keyword's value, if any. */
  readonly homehost: string | null;
}

const keyword = (word: string, full: string) => word.length >= 3 && full.startsWith(word.toLowerCase());

/** mdadm.conf: keywords (3+ letters, any case), continuation lines start with white space, # comments. */
export function parseConf(text: string): Conf {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const lines = body === '' ? [] : body.split('\n');
  const arrays: ConfArray[] = [];
  let homehost: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const words = (lines[i] ?? '').replace(/(^|\s)#.*$/, '').split(/\s+/).filter(Boolean);
    if (/^\s/.test(lines[i] ?? '') || words.length === 0) continue;
    const kw = words[0] ?? '';
    if (keyword(kw, 'homehost')) homehost = words[1] ?? null;
    if (!keyword(kw, 'array')) continue;
    let end = i + 1;
    while (end < lines.length && /^\s+\S/.test(lines[end] ?? '') && !/^\s+#/.test(lines[end] ?? '')) {
      words.push(...(lines[end] ?? '').replace(/(^|\s)#.*$/, '').split(/\s+/).filter(Boolean));
      end++;
    }
    const attrs: Record<string, string> = {};
    let device: string | null = null;
    for (const w of words.slice(1)) {
      const eq = w.indexOf('=');
      if (eq > 0) attrs[w.slice(0, eq).toLowerCase()] = w.slice(eq + 1);
      else device ??= w;
    }
    arrays.push({ first: i, end, device, attrs });
  }
  return { lines, arrays, homehost };
}

/** The ARRAY line as `mdadm --detail --brief` writes it (spares= left out: it would change with the spares). */
export function arrayLine(device: string, metadata: string, name: string | null, uuid: string): string {
  return `ARRAY ${device} metadata=${metadata}${name !== null ? ` name=${name}` : ''} UUID=${mdadmUuid(uuid)}`;
}

function sameEntry(a: ConfArray, b: ConfArray): boolean {
  const norm = (e: ConfArray) =>
    JSON.stringify([e.device, Object.entries(e.attrs).map(([k, v]) => [k, k === 'uuid' ? uuidHex(v) : v]).sort()]);
  return norm(a) === norm(b);
}

/**
 * The conf text with exactly `line` for this array (null: no line for it), entries for this array matched by
 * UUID or by device; every other line kept. Returns null when the text is already so.
 */
export function editConf(text: string, line: string | null, match: { device: string; uuid: string | null }): string | null {
  const conf = parseConf(text);
  const ours = conf.arrays.filter((a) => a.device === match.device || sameUuid(a.attrs['uuid'], match.uuid));
  const wanted = line === null ? null : parseConf(line).arrays[0];
  if (wanted && ours.length === 1 && ours[0] && sameEntry(ours[0], wanted)) return null;
  if (!wanted && ours.length === 0) return null;
  const drop = new Set(ours.flatMap((a) => Array.from({ length: a.end - a.first }, (_, k) => a.first + k)));
  const at = ours[0]?.first ?? conf.lines.length;
  const out: string[] = [];
  conf.lines.forEach((l, i) => {
    if (i === at && line !== null) out.push(line);
    if (!drop.has(i)) out.push(l);
  });
  if (at >= conf.lines.length && line !== null) out.push(line);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

export interface InitramfsFile {
  readonly path: string;
  readonly mtime: number;
}

/** `stat -c '%Y %n'` lines of the initramfs images, without the ones the update command does not rebuild. */
export function parseInitramfsList(stdout: string): InitramfsFile[] {
  const out: InitramfsFile[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\d+) (.+)$/.exec(line);
    if (!m || m[2] === undefined) continue;
    if (/(\.old-dkms|\.bak|\.dpkg-[a-z]+|kdump\.img|-rescue-.*)$/.test(m[2])) continue;
    out.push({ path: m[2], mtime: Number(m[1]) });
  }
  return out;
}
