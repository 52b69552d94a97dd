/**
 * Names in an inventory: Ansible host patterns (`all`/`*`, group or host names, globs such as `chunk*` and
 * `sto[12]`, `~regex`, unions with `:` or `,`, `&intersection`, `!exclusion`), the did-you-mean offered for a
 * typo, the validity of host and group names, and host ranges (`sto[1:3]`, `node[a:c]`, `web[01:10:2]`).
 */
import { UserError } from './errors.ts';

/** What a pattern is matched against (an inventory, seen by names only). */
export interface PatternTarget {
  /** Where the inventory came from, for messages. */
  readonly source: string;
  /** Every host name, in inventory order. */
  readonly hostNames: readonly string[];
  /** Every group name. */
  readonly groupNames: readonly string[];
  /** The hosts of a group (descendants included), or undefined when there is no such group. */
  groupHosts(name: string): readonly string[] | undefined;
}

/**
 * The host names a pattern selects, in inventory order. Unions are taken first, then intersections, then
 * exclusions, whatever the order written; a pattern of only `&`/`!` terms starts from `all`. A plain name that
 * is neither a host nor a group is a UserError (a typo must not silently select, or fail to exclude, hosts);
 * a glob or regex that matches nothing selects nothing.
 */
export function selectHosts(target: PatternTarget, pattern: string): string[] {
  const terms = splitPattern(pattern);
  if (terms.length === 0) throw new UserError(`empty host pattern in ${target.source}`);
  const unions: Set<string>[] = [];
  const intersections: Set<string>[] = [];
  const exclusions: Set<string>[] = [];
  const unknown: string[] = [];
  for (const term of terms) {
    const op = term[0] === '!' || term[0] === '&' ? term[0] : '';
    const body = term.slice(op.length).trim();
    if (body === '') throw new UserError(`host pattern '${pattern}': '${term}' names nothing`);
    const hosts = matchOne(target, body);
    if (hosts === undefined) unknown.push(body);
    (op === '!' ? exclusions : op === '&' ? intersections : unions).push(hosts ?? new Set());
  }
  if (unknown.length > 0) throw unknownNames(target, unknown);
  let selected = unions.length > 0 ? new Set(unions.flatMap((s) => [...s])) : new Set(target.hostNames);
  for (const s of intersections) selected = new Set([...selected].filter((h) => s.has(h)));
  for (const s of exclusions) for (const h of s) selected.delete(h);
  return target.hostNames.filter((h) => selected.has(h));
}

/** Split on `,` if the pattern has one, else on `:`; never inside `[...]` or `(...)` (globs, ranges, regexes). */
export function splitPattern(pattern: string): string[] {
  const sep = pattern.includes(',') ? ',' : ':';
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of pattern) {
    if (ch === '[' || ch === '(') depth++;
    else if ((ch === ']' || ch === ')') && depth > 0) depth--;
    if (ch === sep && depth === 0) {
      terms.push(current);
      current = '';
    } else current += ch;
  }
  terms.push(current);
  return terms.map((t) => t.trim()).filter((t) => t.length > 0);
}

function matchOne(target: PatternTarget, body: string): Set<string> | undefined {
  if (body === 'all' || body === '*') return new Set(target.hostNames);
  if (body.startsWith('~')) return matchNames(target, toRegExp(body.slice(1), body, 'regular expression'));
  if (/[*?[]/.test(body)) return matchNames(target, toRegExp(globSource(body), body, 'glob'));
  const group = target.groupHosts(body);
  const host = target.hostNames.includes(body) ? [body] : [];
  if (group) return new Set([...group, ...host]);
  return host.length > 0 ? new Set(host) : undefined;
}

/** A glob or regex selects the hosts of every group it matches, and every host it matches. */
function matchNames(target: PatternTarget, re: RegExp): Set<string> {
  const out = new Set<string>();
  for (const g of target.groupNames) if (re.test(g)) for (const h of target.groupHosts(g) ?? []) out.add(h);
  for (const h of target.hostNames) if (re.test(h)) out.add(h);
  return out;
}

function toRegExp(source: string, term: string, what: string): RegExp {
  try {
    // As Ansible's re.match: anchored at the start only. Globs are anchored at both ends by globSource.
    return new RegExp(`^(?:${source})`);
  } catch (e) {
    throw new UserError(`host pattern '${term}' is not a valid ${what}: ${e instanceof Error ? e.message : e}`);
  }
}

/** fnmatch semantics: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]`; anything else is literal. */
export function globSource(glob: string): string {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      let j = i + 1;
      if (glob[j] === '!') j++;
      if (glob[j] === ']') j++;
      const end = glob.indexOf(']', j);
      if (end === -1) {
        re += '\\[';
        continue;
      }
      let set = glob.slice(i + 1, end);
      const negate = set.startsWith('!');
      if (negate) set = set.slice(1);
      re += `[${negate ? '^' : ''}${set.replace(/[\\^\]]/g, '\\$&')}]`;
      i = end;
    } else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return `${re}$`;
}

function unknownNames(target: PatternTarget, names: readonly string[]): UserError {
  const candidates = [...target.groupNames, ...target.hostNames];
  const described = names.map((n) => {
    const hint = didYouMean(n, candidates);
    return { n, hint };
  });
  const only = described[0];
  if (described.length === 1 && only) {
    const hint = only.hint !== undefined ? `; did you mean '${only.hint}'?` : '';
    return new UserError(`no host or group named '${only.n}' in ${target.source}${hint}`);
  }
  const list = described.map(({ n, hint }) => `'${n}'${hint !== undefined ? ` (did you mean '${hint}'?)` : ''}`);
  return new UserError(`no hosts or groups named ${list.join(', ')} in ${target.source}`);
}

/** The closest candidate by edit distance, if it is close enough to be the name meant. */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = c.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, c);
    if (d <= limit && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/** A host name: letters, digits, `.`, `-`, `_`; not starting or ending with `.` or `-`; at most 253 chars. */
export function isValidHostName(name: string): boolean {
  return /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$/.test(name);
}

/** A group name: an identifier (letters, digits, `_`, `-`, not starting with a digit or `-`). */
export function isValidGroupName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_-]{0,254}$/.test(name);
}

const RANGE = /\[([0-9]*|[a-zA-Z]):([0-9]+|[a-zA-Z])(?::([0-9]+))?\]/;
const MAX_RANGE = 10_000;

/**
 * Ansible host ranges: `sto[1:3]` -> sto1 sto2 sto3, `web[01:10:2]` -> web01 web03 ..., `node[a:c]`.
 * A name without a range is returned alone. Throws a UserError (without a place) for a bad range.
 */
export function expandHostRange(name: string): string[] {
  const m = RANGE.exec(name);
  if (!m) return [name];
  const [whole, from = '', to = '', strideText] = m;
  const stride = strideText === undefined ? 1 : Number(strideText);
  if (stride < 1) throw new UserError(`host range '${whole}' in '${name}' has a stride below 1`);
  const items: string[] = [];
  if (/^[0-9]*$/.test(from) && /^[0-9]+$/.test(to)) {
    const start = from === '' ? 0 : Number(from);
    const end = Number(to);
    const width = from.length > 1 && from.startsWith('0') ? from.length : 0;
    if (start > end) throw new UserError(`host range '${whole}' in '${name}' ends before it starts`);
    if ((end - start) / stride >= MAX_RANGE) throw new UserError(`host range '${whole}' in '${name}' is too large`);
    for (let i = start; i <= end; i += stride) items.push(String(i).padStart(width, '0'));
  } else if (/^(?:[a-z]{2}|[A-Z]{2})$/.test(from + to)) {
    const start = from.charCodeAt(0);
    const end = to.charCodeAt(0);
    if (start > end) throw new UserError(`host range '${whole}' in '${name}' ends before it starts`);
    for (let i = start; i <= end; i += stride) items.push(String.fromCharCode(i));
  } else {
    throw new UserError(`host range '${whole}' in '${name}' mixes numbers and letters (or letter cases)`);
  }
  const head = name.slice(0, m.index);
  const tails = expandHostRange(name.slice(m.index + whole.length));
  if (items.length * tails.length > MAX_RANGE) throw new UserError(`host ranges in '${name}' are too large`);
  return items.flatMap((item) => tails.map((tail) => head + item + tail));
}
