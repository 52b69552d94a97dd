/**
 * copy: a file holds exactly the given content, with the given mode and ownership.
 *
 * Also holds what template and setting share: reading a file's stat and bytes in one round trip, and the
 * plan of "this path must hold these bytes".
 */
import { probeCommand } from '../lib/connection/probe.ts';
import type { Connection } from '../lib/connection/types.ts';
import { defineModule, put, type Change } from '../lib/module.ts';
import { Secret, reveal } from '../lib/secret.ts';
import { diffText } from '../lib/textdiff.ts';
import { attributeChanges, attributeSchema, parseMode, parseStat, pathSchema, type Attributes, type Stat } from './file.ts';

export interface FileContentFacts {
  readonly path: string;
  /** null when nothing is at the path. */
  readonly stat: Stat | null;
  /** The file's bytes (regular files only). */
  readonly content: Buffer | null;
  /** Target of a symbolic link at the path (copy never writes through or over a link). */
  readonly linkTarget: string | null;
}

/**
 * One round trip: a header line (absent, link, or the stat line), then the file's bytes in base64 (so that
 * any byte survives whatever decoding the transport does). A path probe (lib/connection/probe.ts): in a batch,
 * read together with the other paths.
 */
export function readFileCommand(path: string) {
  return probeCommand({ path, kind: 'content', tree: false });
}

export function parseFileContent(path: string, stdout: string): FileContentFacts {
  const nl = stdout.indexOf('\n');
  const header = nl < 0 ? stdout : stdout.slice(0, nl);
  if (header === 'absent') return { path, stat: null, content: null, linkTarget: null };
  if (header.startsWith('link\t')) {
    return { path, stat: null, content: null, linkTarget: stdout.slice(5).replace(/\n$/, '') };
  }
  const stat = parseStat(header);
  if (stat.type !== 'file') return { path, stat, content: null, linkTarget: null };
  const b64 = stdout.slice(nl + 1).trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new Error(`unexpected output reading ${path}: not base64`);
  const content = Buffer.from(b64, 'base64');
  if (content.length !== stat.size) throw new Error(`${path} changed while it was read (${content.length} bytes, stat said ${stat.size})`);
  return { path, stat, content, linkTarget: null };
}

export async function readFile(conn: Connection, path: string): Promise<FileContentFacts> {
  const r = await conn.exec(readFileCommand(path));
  if (r.exitCode !== 0) throw new Error(`cannot read ${path}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  return parseFileContent(path, r.stdout);
}

export interface WantedContent extends Attributes {
  readonly path: string;
  readonly content: Buffer;
  /** The new text as diffs show it (secrets masked); default: the content's text. */
  readonly display?: string;
  /** The content is a secret: diffs show sizes only. */
  readonly secret?: boolean;
  /** Also what the diff's "before" shows (default: the file's current text). */
  readonly displayBefore?: string;
}

/** Plan "this path holds these bytes": one write when the content differs, else chmod/chown as needed. */
export function planContent(w: WantedContent, f: FileContentFacts): Change[] {
  if (f.linkTarget !== null) {
    throw new Error(`${w.path} is a symbolic link to ${f.linkTarget}: give the real file's path`);
  }
  if (f.stat && f.stat.type !== 'file') throw new Error(`${w.path} exists and is not a regular file (${f.stat.type})`);
  if (f.stat && f.content && Buffer.compare(f.content, w.content) === 0) return attributeChanges(w.path, f.stat, w);
  const options = {
    ...(w.mode !== undefined ? { mode: parseMode(w.mode) } : {}),
    ...(w.owner !== undefined ? { owner: w.owner } : {}),
    ...(w.group !== undefined ? { group: w.group } : {}),
  };
  const old = f.content;
  const before = w.secret
    ? old === null
      ? ''
      : `(secret content, ${old.length} bytes)\n`
    : (w.displayBefore ?? diffText(old));
  const after = w.secret ? `(secret content, ${w.content.length} bytes)\n` : (w.display ?? diffText(w.content));
  return [
    {
      summary: old === null ? `create ${w.path} (${w.content.length} bytes)` : `update ${w.path} (${w.content.length} bytes, was ${old.length})`,
      steps: [put(w.path, w.content, options)],
      diff: { label: w.path, before, after },
    },
  ];
}

export interface CopyParams extends Attributes {
  path: string;
  content: string | Secret;
}

/** What later tasks read: the file's stat after the task (never its content, which may be a secret). */
export interface CopyOutput {
  readonly path: string;
  readonly stat: Stat | null;
}

export const copy = defineModule<CopyParams, FileContentFacts, CopyOutput>({
  name: 'copy',
  description: 'A file holds exactly the given content (written atomically), with the given mode and ownership.',
  examples: [
    { title: 'A file with exactly this content', params: { path: '/etc/motd', content: 'Managed by sanbook.\n', mode: '0644', owner: 'root', group: 'root' } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path', 'content'],
    properties: {
      path: { ...pathSchema, description: 'Absolute path of the file on the host (a symbolic link there is an error).' },
      content: {
        anyOf: [{ type: 'string' }, { secret: true }],
        description:
          'The exact text of the file (UTF-8). A Secret (secret() from lib/secret.ts) is written but never shown: diffs then show sizes only.',
      },
      ...attributeSchema,
    },
  },
  readAhead: true,
  gather: (conn, params) => readFile(conn, params.path),
  plan(params, facts) {
    return planContent(
      {
        path: params.path,
        content: Buffer.from(reveal(params.content), 'utf8'),
        secret: params.content instanceof Secret,
        ...(params.mode !== undefined ? { mode: params.mode } : {}),
        ...(params.owner !== undefined ? { owner: params.owner } : {}),
        ...(params.group !== undefined ? { group: params.group } : {}),
      },
      facts,
    );
  },
  output: (_params, facts) => ({ path: facts.path, stat: facts.stat }),
});
