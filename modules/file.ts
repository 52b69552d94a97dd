/**
 * file: a path's kind (file, directory, link, absent) and its mode and ownership.
 *
 * Also holds what copy, template and setting share: the stat format and its parser, and the chmod/chown
 * changes of a path whose content is right.
 */
import { cmd } from '../lib/command.ts';
import { modeString } from '../lib/connection/put.ts';
import { probeCommand, STAT_FORMAT, STAT_TYPES, type FileType } from '../lib/connection/probe.ts';
import { defineModule, exec, type Change } from '../lib/module.ts';

export type { FileType };

export interface Stat {
  readonly type: FileType;
  /** Permission bits (07777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Owner name (`UNKNOWN` when the uid has no name). */
  readonly owner: string;
  readonly group: string;
  readonly size: number;
}

/** `stat --printf` format parsed by parseStat (lib/connection/probe.ts, where the probes use it). */
export { STAT_FORMAT };

/** Parse one line printed with STAT_FORMAT. */
export function parseStat(line: string): Stat {
  const f = line.replace(/\n$/, '').split('\t');
  if (f.length !== 7) throw new Error(`unexpected stat output: ${JSON.stringify(line)}`);
  const [mode = '', uid = '', gid = '', owner = '', group = '', size = '', type = ''] = f;
  return {
    type: STAT_TYPES[type] ?? 'other',
    mode: Number.parseInt(mode, 8),
    uid: Number.parseInt(uid, 10),
    gid: Number.parseInt(gid, 10),
    owner,
    group,
    size: Number.parseInt(size, 10),
  };
}

/** An octal mode string ('0755', '644', '2775') as a number. */
export function parseMode(mode: string): number {
  if (!/^0?[0-7]{3,4}$/.test(mode)) throw new Error(`invalid mode ${JSON.stringify(mode)}: give octal digits like '0644'`);
  return Number.parseInt(mode, 8);
}

export interface Attributes {
  mode?: string;
  owner?: string;
  group?: string;
}

/** Schema properties shared by every module that manages a path's attributes. */
export const attributeSchema = {
  mode: {
    type: 'string',
    pattern: '^0?[0-7]{3,4}$',
    description: "Permission bits in octal, e.g. '0644' or '2775' (symbolic modes are not accepted).",
  },
  owner: { type: 'string', minLength: 1, description: 'Owner: a user name or a numeric uid.' },
  group: { type: 'string', minLength: 1, description: 'Group: a group name or a numeric gid.' },
} as const;

export const pathSchema = {
  type: 'string',
  pattern: '^/',
  description: 'Absolute path on the host.',
} as const;

function sameId(wanted: string, name: string, id: number): boolean {
  return wanted === name || wanted === String(id);
}

/**
 * chmod/chown changes that bring an existing path's attributes to what is asked (none when they match).
 * For a symbolic link, ownership is changed on the link itself and a mode is never set.
 */
export function attributeChanges(path: string, stat: Stat, wanted: Attributes, isLink = false): Change[] {
  const changes: Change[] = [];
  if (wanted.mode !== undefined && !isLink) {
    const mode = parseMode(wanted.mode);
    if (mode !== stat.mode) {
      changes.push({
        summary: `set mode of ${path} to ${modeString(mode)} (was ${modeString(stat.mode)})`,
        steps: [exec(cmd('chmod', modeString(mode), '--', path))],
      });
    }
  }
  const ownerWrong = wanted.owner !== undefined && !sameId(wanted.owner, stat.owner, stat.uid);
  const groupWrong = wanted.group !== undefined && !sameId(wanted.group, stat.group, stat.gid);
  if (ownerWrong || groupWrong) {
    const spec = `${ownerWrong ? (wanted.owner ?? '') : ''}${groupWrong ? `:${wanted.group ?? ''}` : ''}`;
    const what = ownerWrong && groupWrong ? 'owner and group' : ownerWrong ? 'owner' : 'group';
    const to = ownerWrong && groupWrong ? spec : ownerWrong ? (wanted.owner ?? '') : (wanted.group ?? '');
    const was = ownerWrong && groupWrong ? `${stat.owner}:${stat.group}` : ownerWrong ? stat.owner : stat.group;
    changes.push({
      summary: `set ${what} of ${path} to ${to} (was ${was})`,
      steps: [exec(isLink ? cmd('chown', '-h', spec, '--', path) : cmd('chown', spec, '--', path))],
    });
  }
  return changes;
}

/** Steps that set the attributes of a path just created (nothing is known about it yet). */
function newPathSteps(path: string, wanted: Attributes, isLink = false): Change['steps'] {
  const steps: Change['steps'][number][] = [];
  if (wanted.mode !== undefined && !isLink) steps.push(exec(cmd('chmod', modeString(parseMode(wanted.mode)), '--', path)));
  if (wanted.owner !== undefined || wanted.group !== undefined) {
    const spec = `${wanted.owner ?? ''}${wanted.group !== undefined ? `:${wanted.group}` : ''}`;
    steps.push(exec(isLink ? cmd('chown', '-h', spec, '--', path) : cmd('chown', spec, '--', path)));
  }
  return steps;
}

export type FileState = 'file' | 'directory' | 'link' | 'absent' | 'touch';

export interface FileParams extends Attributes {
  path: string;
  state: FileState;
  src?: string;
  force?: boolean;
}

export interface FileFacts {
  readonly path: string;
  /** The path itself (a link is not followed); null when nothing is there. */
  readonly lstat: Stat | null;
  /** What the path leads to (links followed); null when absent or a dangling link. */
  readonly stat: Stat | null;
  /** Target of a symbolic link, as stored in the link. */
  readonly linkTarget: string | null;
  /** For a real directory that absent/link may remove: how many entries it holds, and its size. */
  readonly entries: number | null;
  readonly kib: number | null;
}

/**
 * The path's lstat; for a link, its stat and target too; with countEntries, a real directory's entry count and
 * size. A path probe (lib/connection/probe.ts): in a batch, read together with the other paths.
 */
export function fileGatherCommand(path: string, countEntries: boolean) {
  return probeCommand({ path, kind: 'file', tree: countEntries });
}

/** Parse the output of fileGatherCommand. */
export function parseFileFacts(path: string, stdout: string): FileFacts {
  if (stdout.trim() === 'absent') return { path, lstat: null, stat: null, linkTarget: null, entries: null, kib: null };
  const linkAt = stdout.startsWith('link\t') ? 0 : stdout.indexOf('\nlink\t');
  const head = linkAt < 0 ? stdout : stdout.slice(0, linkAt);
  const linkTarget = linkAt < 0 ? null : stdout.slice(linkAt + (linkAt === 0 ? 5 : 6)).replace(/\n$/, '');
  const fields = new Map<string, string>();
  for (const line of head.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) fields.set(line.slice(0, tab), line.slice(tab + 1));
  }
  const lstat = fields.get('lstat');
  if (lstat === undefined) throw new Error(`unexpected output gathering ${path}: ${JSON.stringify(stdout)}`);
  const stat = fields.get('stat');
  const entries = fields.get('entries');
  const kib = fields.get('kib');
  const own = parseStat(lstat);
  return {
    path,
    lstat: own,
    // No stat line: a link that leads nowhere, or not a link at all (then it is its own lstat).
    stat: stat !== undefined ? parseStat(stat) : linkTarget === null ? own : null,
    linkTarget,
    entries: entries === undefined ? null : Number.parseInt(entries, 10),
    kib: kib === undefined ? null : Number.parseInt(kib, 10),
  };
}

function removal(facts: FileFacts, summary: string): Change {
  const isDir = facts.lstat?.type === 'directory';
  const destructive =
    isDir && (facts.entries ?? 1) > 0
      ? `directory ${facts.path} holds ${facts.entries ?? 'an unknown number of'} entries (${facts.kib ?? '?'} KiB)`
      : undefined;
  return {
    summary,
    steps: [exec(cmd('rm', '-rf', '--', facts.path))],
    ...(destructive !== undefined ? { destructive } : {}),
  };
}

export function planFile(p: FileParams, f: FileFacts): Change[] {
  const { path } = p;
  const kind = f.lstat?.type;
  switch (p.state) {
    case 'absent':
      if (!f.lstat) return [];
      return [removal(f, `remove ${kind === 'directory' ? 'directory' : kind === 'link' ? 'link' : 'file'} ${path}`)];
    case 'directory':
      if (!f.lstat) return [{ summary: `create directory ${path}`, steps: [exec(cmd('mkdir', '-p', '--', path)), ...newPathSteps(path, p)] }];
      if (f.stat?.type !== 'directory') throw new Error(`${path} exists and is not a directory (${kind})`);
      return attributeChanges(path, f.stat, p);
    case 'file':
      if (!f.lstat) throw new Error(`${path} does not exist (state: file does not create files; use state: touch, copy or template)`);
      if (f.stat?.type !== 'file') throw new Error(`${path} is not a regular file (${f.stat?.type ?? 'dangling link'})`);
      return attributeChanges(path, f.stat, p);
    case 'touch':
      if (!f.lstat) return [{ summary: `create empty file ${path}`, steps: [exec(cmd('touch', '--', path)), ...newPathSteps(path, p)] }];
      if (!f.stat) throw new Error(`${path} is a dangling link to ${f.linkTarget ?? '?'}`);
      return attributeChanges(path, f.stat, p);
    case 'link':
      return planLink(p, f);
  }
}

function planLink(p: FileParams, f: FileFacts): Change[] {
  const { path } = p;
  const src = p.src;
  if (src === undefined) throw new Error(`state: link needs src (what ${path} points to)`);
  if (p.mode !== undefined) throw new Error(`mode cannot be set on a symbolic link (${path})`);
  const ln = exec(cmd('ln', '-sfn', '--', src, path));
  if (!f.lstat) return [{ summary: `link ${path} -> ${src}`, steps: [ln, ...newPathSteps(path, p, true)] }];
  if (f.lstat.type === 'link') {
    if (f.linkTarget === src) return attributeChanges(path, f.lstat, p, true);
    return [{ summary: `point link ${path} to ${src} (was ${f.linkTarget ?? '?'})`, steps: [ln, ...newPathSteps(path, p, true)] }];
  }
  if (!p.force) throw new Error(`${path} exists as a ${f.lstat.type}: set force: true to replace it by a link to ${src}`);
  const replaced = f.lstat.type === 'directory' ? removal(f, '') : undefined;
  return [
    {
      summary: `replace ${f.lstat.type} ${path} by a link to ${src}`,
      steps: [...(replaced?.steps ?? []), ln, ...newPathSteps(path, p, true)],
      ...(replaced?.destructive !== undefined ? { destructive: replaced.destructive } : {}),
    },
  ];
}

export const file = defineModule<FileParams, FileFacts>({
  name: 'file',
  description: 'A path is a file, a directory, a symbolic link or absent, with the given mode and ownership.',
  examples: [
    { title: 'A directory with its mode and owner', params: { path: '/etc/sanbook', state: 'directory', mode: '0750', owner: 'root', group: 'root' } },
    { title: 'A symbolic link', params: { path: '/etc/sanbook/current.conf', state: 'link', src: '/etc/sanbook/node.conf' } },
    { title: 'A file that must not exist', params: { path: '/var/lib/app/stale.lock', state: 'absent' } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path', 'state'],
    properties: {
      path: pathSchema,
      state: {
        enum: ['file', 'directory', 'link', 'absent', 'touch'],
        description:
          'file: an existing regular file (never created); directory: created with parents (mkdir -p); link: a symbolic link to src; absent: removed (recursively: a non-empty directory is a destructive change); touch: an empty file created when missing (an existing one is left as is, times included).',
      },
      src: { type: 'string', minLength: 1, description: 'What the link points to (state: link), stored as given.' },
      force: {
        type: 'boolean',
        default: false,
        description: 'state: link: replace a file or directory at path by the link (a non-empty directory also needs the task to be forced).',
      },
      ...attributeSchema,
    },
    if: { properties: { state: { const: 'link' } }, required: ['state'] },
    then: { properties: { src: true }, required: ['src'] },
  },
  readAhead: true,
  async gather(conn, params) {
    const r = await conn.exec(fileGatherCommand(params.path, params.state === 'absent' || params.state === 'link'));
    if (r.exitCode !== 0) throw new Error(`cannot inspect ${params.path}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseFileFacts(params.path, r.stdout);
  },
  plan: planFile,
});
