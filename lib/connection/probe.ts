/**
 * Path probes: what a module reads of a path (its stat, a link's target, a file's bytes), as a command that
 * knows what it reads, so that a batch can read many paths with a handful of programs instead of one or two
 * programs per path.
 *
 * Run alone, a probe is the plain script of `probeCommand` (a `stat`, then `base64` or `readlink`). In a
 * batch (lib/connection/batch.ts), the probes of the same become are read together by one script
 * (`probesScript`): the shell's own tests sort the paths (link, absent, regular file, directory, other), then
 * ONE `stat` reads every path, ONE `cat` the bytes of every regular file wanted, and one more `stat` checks that
 * none of those files changed while they were read (size, inode, ctime). Links and directory trees, which are
 * rare, get their programs per path, as alone. `splitProbes` then gives each probe the very bytes its own
 * script would have printed, so the module's parser reads one format. Anything out of the ordinary (a path
 * that changed between the shell's tests and the stat, a file that changed while read, a file that is not
 * readable, a program that failed) gives that probe no result: its task runs the plain script in its turn,
 * which reports it as it always did.
 *
 * Why: every program started costs the host a few milliseconds of CPU, and a converged run of 20 file tasks
 * spent most of its host time starting `stat` and `base64` (bench/RESULTS.md, "Who uses the CPU").
 */
import { type Command, sh } from '../command.ts';
import { answered, ReadTogether, sameFamily, type Joined } from './together.ts';
import type { ExecResult } from './types.ts';

/** `stat --printf` format parsed by modules/file.ts parseStat: mode, uid, gid, user, group, size, type. */
export const STAT_FORMAT = '%a\\t%u\\t%g\\t%U\\t%G\\t%s\\t%F\\n';

export type FileType = 'file' | 'directory' | 'link' | 'fifo' | 'socket' | 'char-device' | 'block-device' | 'other';

/** stat's %F words (coreutils, LC_ALL=C) -> the type; any other word is 'other'. */
export const STAT_TYPES: Readonly<Record<string, FileType>> = {
  'regular file': 'file',
  'regular empty file': 'file',
  directory: 'directory',
  'symbolic link': 'link',
  fifo: 'fifo',
  socket: 'socket',
  'character special file': 'char-device',
  'block special file': 'block-device',
};

/**
 * 'file': the path's lstat; for a link, also what it leads to and its target; for a real directory, when
 * `tree`, how many entries it holds and its size (modules/file.ts).
 * 'content': the path's stat and, for a regular file, its bytes; for a link, only its target (modules/copy.ts).
 */
export interface PathProbe {
  readonly path: string;
  readonly kind: 'file' | 'content';
  readonly tree: boolean;
}

/** A path probe as a read a batch may join with others (lib/connection/together.ts). */
export class PathRead extends ReadTogether {
  readonly family = 'paths';
  constructor(readonly probe: PathProbe) {
    super();
  }

  join(others: readonly ReadTogether[], mark: string): Joined {
    const probes = sameFamily(this, others, PathRead).map((r) => r.probe);
    return {
      script: probesScript(probes, mark),
      display: `(${probes.length} paths read together)`,
      split: (result) => splitProbes(probes, result, mark),
    };
  }
}

/** The probe's own script (what runs when it is alone), carrying the probe for a batch. */
export function probeCommand(probe: PathProbe): Command {
  const together = new PathRead(probe);
  const p = probe.path;
  if (probe.kind === 'content') {
    return sh`p=${p}
if [ -L "$p" ]; then printf 'link\t'; readlink -- "$p"; exit 0; fi
if [ ! -e "$p" ]; then echo absent; exit 0; fi
stat --printf ${STAT_FORMAT} -- "$p" || exit 1
if [ -f "$p" ]; then base64 -w 0 -- "$p" || exit 1; fi`.with({ together });
  }
  const count = probe.tree
    ? sh`if [ -d "$p" ] && [ ! -L "$p" ]; then printf 'entries\t'; find "$p" -mindepth 1 -printf . | wc -c; printf 'kib\t'; du -sk -- "$p" | cut -f1; fi`
    : sh`:`;
  // One stat for what is not a link (its stat is its lstat); a link gets both, and the stat only if it leads
  // somewhere.
  return sh`p=${p}
if [ -L "$p" ]; then
  printf 'lstat\t'; stat --printf ${STAT_FORMAT} -- "$p" || exit 1
  if s=$(stat -L --printf ${STAT_FORMAT} -- "$p" 2>/dev/null); then printf 'stat\t%s\n' "$s"; fi
  printf 'link\t'; readlink -- "$p" || exit 1
  exit 0
fi
if [ ! -e "$p" ]; then echo absent; exit 0; fi
printf 'lstat\t'; stat --printf ${STAT_FORMAT} -- "$p" || exit 1
${count}`.with({ together });
}

/** What the probes of a batch need of one distinct path: its bytes (c), a link's stat (f), a tree's size (t). */
interface PathNeeds {
  readonly path: string;
  content: boolean;
  follow: boolean;
  tree: boolean;
}

function needsOf(probes: readonly PathProbe[]): PathNeeds[] {
  const byPath = new Map<string, PathNeeds>();
  for (const probe of probes) {
    let n = byPath.get(probe.path);
    if (n === undefined) {
      n = { path: probe.path, content: false, follow: false, tree: false };
      byPath.set(probe.path, n);
    }
    if (probe.kind === 'content') n.content = true;
    else {
      n.follow = true;
      if (probe.tree) n.tree = true;
    }
  }
  return [...byPath.values()];
}

/** The first stat's record: NAME NUL, the STAT_FORMAT line, inode TAB ctime NUL. */
const FIRST_FORMAT = `%n\\0${STAT_FORMAT}%i\\t%z\\0`;
/** The check after the bytes were read: NAME NUL size TAB inode TAB ctime NUL. */
const CHECK_FORMAT = '%n\\0%s\\t%i\\t%z\\0';

/**
 * One script reading every path of `probes` (distinct paths, in order of first appearance). Each section of its
 * output ends with a line `\nMARK TAG CODE\n` (MARK: 128 random bits, new for every script):
 * - `classes`: a letter per path: L link, A absent, R regular file whose bytes are in `cat`, U regular file
 *   whose bytes are wanted but which is not readable, F other regular file, D directory, O anything else;
 * - `stat`: FIRST_FORMAT records of every path that is there; `cat` and `check`: the R files' bytes, then
 *   CHECK_FORMAT records of them;
 * - per path N (from 1): `followN` (stat -L) and `linkN` (readlink) for a link, `entriesN` and `kibN` for a
 *   directory whose tree is wanted.
 */
export function probesScript(probes: readonly PathProbe[], mark: string): Command {
  const needs = needsOf(probes);
  const words = needs.flatMap((n) => [`${n.content ? 'c' : '-'}${n.follow ? 'f' : '-'}${n.tree ? 't' : '-'}`, n.path]);
  return sh`M=${mark}
m() { printf '\n%s %s %d\n' "$M" "$1" "$2"; }
c=; w=; i=0; set --
for x in ${words}; do
  if [ -z "$w" ]; then w=$x; continue; fi
  p=$x; i=$((i+1))
  if [ -L "$p" ]; then
    c=\${c}L
    case $w in ?f?) stat -L --printf ${STAT_FORMAT} -- "$p" 2>/dev/null; m follow$i $?;; esac
    readlink -- "$p"; m link$i $?
  elif [ ! -e "$p" ]; then c=\${c}A
  elif [ -f "$p" ]; then
    case $w in
      c??) if [ -r "$p" ]; then c=\${c}R; set -- "$@" "$p"; else c=\${c}U; fi;;
      *) c=\${c}F;;
    esac
  elif [ -d "$p" ]; then
    c=\${c}D
    case $w in ??t) find "$p" -mindepth 1 -printf . | wc -c; m entries$i $?; du -sk -- "$p" | cut -f1; m kib$i $?;; esac
  else c=\${c}O
  fi
  w=
done
printf '%s' "$c"; m classes 0
stat --printf ${FIRST_FORMAT} -- ${needs.map((n) => n.path)} 2>/dev/null; m stat $?
if [ $# -gt 0 ]; then cat -- "$@"; m cat $?; stat --printf ${CHECK_FORMAT} -- "$@"; m check $?; fi`;
}

interface Section {
  readonly bytes: Buffer;
  readonly code: number;
}

/** The sections of a probes script's output: tag -> bytes and exit code. */
function sectionsOf(out: Buffer, mark: string): Map<string, Section> {
  const found = new Map<string, Section>();
  const head = Buffer.from(`\n${mark} `);
  let at = 0;
  for (;;) {
    const end = out.indexOf(head, at);
    if (end < 0) break;
    const eol = out.indexOf(0x0a, end + head.length);
    if (eol < 0) break;
    const [tag = '', code = ''] = out.subarray(end + head.length, eol).toString('latin1').split(' ');
    found.set(tag, { bytes: out.subarray(at, end), code: Number(code) });
    at = eol + 1;
  }
  return found;
}

/** NUL-terminated records of two fields (NAME NUL REST NUL) -> name (as latin1 bytes) -> REST. */
function recordsOf(bytes: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let at = 0;
  while (at < bytes.length) {
    const nameEnd = bytes.indexOf(0, at);
    const restEnd = nameEnd < 0 ? -1 : bytes.indexOf(0, nameEnd + 1);
    if (restEnd < 0) break;
    records.set(bytes.subarray(at, nameEnd).toString('latin1'), bytes.subarray(nameEnd + 1, restEnd));
    at = restEnd + 1;
  }
  return records;
}

/** A path's first stat: the STAT_FORMAT line (with its newline), its type, size, and identity (inode, ctime). */
interface FirstStat {
  readonly line: Buffer;
  readonly type: string;
  readonly size: number;
  readonly identity: string;
}

function firstStat(rest: Buffer | undefined): FirstStat | undefined {
  if (rest === undefined) return undefined;
  const nl = rest.indexOf(0x0a);
  if (nl < 0) return undefined;
  const fields = rest.subarray(0, nl).toString('latin1').split('\t');
  if (fields.length !== 7) return undefined;
  return {
    line: rest.subarray(0, nl + 1),
    type: fields[6] ?? '',
    size: Number(fields[5]),
    identity: rest.subarray(nl + 1).toString('latin1'),
  };
}

/** The type stat's %F must give for each class the shell's tests found (else the path changed in between). */
const CLASS_TYPES: Readonly<Record<string, (type: FileType) => boolean>> = {
  L: (t) => t === 'link',
  R: (t) => t === 'file',
  U: (t) => t === 'file',
  F: (t) => t === 'file',
  D: (t) => t === 'directory',
  O: (t) => t !== 'link' && t !== 'directory' && t !== 'file',
};

/** Each R file's bytes, cut from the cat section by the sizes the first stat gave, if nothing moved. */
function contentsOf(needs: readonly PathNeeds[], classes: string, stats: ReadonlyMap<number, FirstStat>, s: Map<string, Section>): Map<number, Buffer> | undefined {
  const readAt = [...classes].flatMap((k, i) => (k === 'R' ? [i] : []));
  const contents = new Map<number, Buffer>();
  if (readAt.length === 0) return contents;
  const cat = s.get('cat');
  const check = s.get('check');
  if (cat === undefined || cat.code !== 0 || check === undefined || check.code !== 0) return undefined;
  const after = recordsOf(check.bytes);
  let at = 0;
  for (const i of readAt) {
    const first = stats.get(i);
    const key = Buffer.from((needs[i] as PathNeeds).path, 'utf8').toString('latin1');
    // Size, inode and ctime as the first stat saw them: the file was not changed or replaced while it was read.
    if (first === undefined || after.get(key)?.toString('latin1') !== `${first.size}\t${first.identity}`) return undefined;
    contents.set(i, cat.bytes.subarray(at, at + first.size));
    at += first.size;
  }
  return at === cat.bytes.length ? contents : undefined;
}

/** What probe's own script would have printed, from the sections; undefined where they do not say for sure. */
function outputOf(probe: PathProbe, i: number, klass: string, first: FirstStat | undefined, content: Buffer | undefined, s: Map<string, Section>): Buffer | undefined {
  if (klass === 'A') return Buffer.from('absent\n');
  if (first === undefined || CLASS_TYPES[klass]?.(STAT_TYPES[first.type] ?? 'other') !== true) return undefined;
  const link = s.get(`link${i + 1}`);
  if (probe.kind === 'content') {
    if (klass === 'L') return link === undefined || link.code !== 0 ? undefined : Buffer.concat([Buffer.from('link\t'), link.bytes]);
    if (klass === 'U') return undefined;
    if (klass !== 'R') return first.line;
    return content === undefined ? undefined : Buffer.concat([first.line, Buffer.from(content.toString('base64'))]);
  }
  const lstat = Buffer.concat([Buffer.from('lstat\t'), first.line]);
  if (klass === 'L') {
    const follow = s.get(`follow${i + 1}`);
    if (follow === undefined || link === undefined || link.code !== 0) return undefined;
    // The plain script keeps stat -L's line only when it succeeded (a dangling link has none).
    const stat = follow.code === 0 ? [Buffer.from('stat\t'), follow.bytes.subarray(0, follow.bytes.length - (follow.bytes.at(-1) === 0x0a ? 1 : 0)), Buffer.from('\n')] : [];
    return Buffer.concat([lstat, ...stat, Buffer.from('link\t'), link.bytes]);
  }
  if (klass === 'D' && probe.tree) {
    const entries = s.get(`entries${i + 1}`);
    const kib = s.get(`kib${i + 1}`);
    if (entries === undefined || kib === undefined) return undefined;
    return Buffer.concat([lstat, Buffer.from('entries\t'), entries.bytes, Buffer.from('kib\t'), kib.bytes]);
  }
  return lstat;
}

/** The results of a probes script (its ExecResult, exit 0), one per probe, in the order of `probes`. */
export function splitProbes(probes: readonly PathProbe[], result: ExecResult, mark: string): (ExecResult | undefined)[] {
  const none = probes.map(() => undefined);
  if (result.exitCode !== 0) return none;
  const needs = needsOf(probes);
  const s = sectionsOf(result.stdoutBytes, mark);
  const classes = s.get('classes')?.bytes.toString('latin1') ?? '';
  const statSection = s.get('stat');
  if (classes.length !== needs.length || statSection === undefined) return none;
  const records = recordsOf(statSection.bytes);
  const stats = new Map<number, FirstStat>();
  needs.forEach((n, i) => {
    const f = firstStat(records.get(Buffer.from(n.path, 'utf8').toString('latin1')));
    if (f !== undefined) stats.set(i, f);
  });
  const contents = contentsOf(needs, classes, stats, s);
  const indexOf = new Map(needs.map((n, i) => [n.path, i]));
  return probes.map((probe) => {
    const i = indexOf.get(probe.path) as number;
    const klass = classes[i] as string;
    const out = outputOf(probe, i, klass, stats.get(i), contents?.get(i), s);
    return out === undefined ? undefined : answered(out, 0, result.durationMs);
  });
}
