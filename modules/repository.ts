/**
 * repository: a third-party package repository and its signing key, for apt (a deb822 .sources file whose
 * Signed-By names the key) or dnf/yum (a .repo file whose gpgkey names the key), chosen by the host's family.
 *
 * gather is one round trip (repository-host.ts): the files, whether their directories exist, curl/wget, and,
 * with key.refresh, the key downloaded again. plan is exact: the file texts are computed from the params
 * (repository-files.ts); a key given as a URL is planned as "download KEY from URL" until it exists. After a
 * change, the lists of this repository only are refreshed (updateCache).
 */
import { cmd } from '../lib/command.ts';
import type { HostFacts } from '../lib/facts.ts';
import { defineModule, exec, type Change, type Step } from '../lib/module.ts';
import { planContent } from './copy.ts';
import { attributeChanges, pathSchema } from './file.ts';
import { rpmCacheSteps } from './package.ts';
import {
  contentBytes,
  keyBytes,
  layoutOf,
  renderSource,
  type KeyPlacement,
  type Layout,
  type RepoKind,
  type RepositoryParams,
} from './repository-files.ts';
import { downloadKeyCommand, gatherDirs, parseRepositoryGather, repositoryGatherCommand, type RepositoryHostFacts } from './repository-host.ts';

export type { AptSource, YumRepo, RepositoryKey, RepositoryParams, RepoKind } from './repository-files.ts';

export interface RepositoryFacts extends RepositoryHostFacts {
  /** Inventory name of the host (errors name it). */
  readonly host: string;
  readonly kind: RepoKind;
  /** What refreshes the lists after a change (null: neither apt-get nor dnf/yum was found). */
  readonly manager: 'apt' | 'dnf' | 'yum' | null;
}

/** What later tasks read. */
export interface RepositoryOutput {
  readonly kind: RepoKind;
  /** The .sources or .repo file. */
  readonly path: string;
  readonly present: boolean;
  /** The key file (null: no key managed). */
  readonly keyPath: string | null;
}

/** apt on a Debian-family host, yum on a Red Hat one, else by the package manager found. */
export function kindFor(p: RepositoryParams, facts: HostFacts, host: string): RepoKind {
  const { family, prettyName } = facts.os;
  const pm = facts.packageManager;
  const kind: RepoKind | null =
    family === 'debian' ? 'apt' : family === 'redhat' ? 'yum' : pm === 'apt' ? 'apt' : pm === 'dnf' || pm === 'yum' ? 'yum' : null;
  if (kind === null) throw new Error(`repository ${p.name}: ${host} (${prettyName}) has neither apt nor dnf/yum`);
  if (p.state !== 'absent' && p[kind] === undefined) {
    const given = kind === 'apt' ? 'yum' : 'apt';
    throw new Error(`repository ${p.name}: ${host} (${prettyName}) needs an \`${kind}:\` repository, and only \`${given}:\` was given`);
  }
  return kind;
}

function managerFor(kind: RepoKind, facts: HostFacts): RepositoryFacts['manager'] {
  const pm = facts.packageManager;
  return kind === 'apt' ? (pm === 'apt' ? 'apt' : null) : pm === 'dnf' || pm === 'yum' ? pm : null;
}

/** The lists of this repository only: other sources are neither fetched nor cleaned up. */
export function aptUpdateCommand(source: string) {
  return cmd('apt-get', 'update', '-q', '-o', `Dir::Etc::sourcelist=${source}`, '-o', 'Dir::Etc::sourceparts=-', '-o', 'APT::Get::List-Cleanup=0', '-o', 'APT::Update::Error-Mode=any', '-o', 'DPkg::Lock::Timeout=300');
}

function planKey(p: RepositoryParams, key: KeyPlacement, f: RepositoryFacts): Change[] {
  const file = f.files[key.path];
  if (!file) throw new Error(`repository ${p.name}: ${key.path} was not gathered`);
  const { url, content, refresh } = key.spec;
  if (content !== undefined || refresh) {
    let wanted: Buffer;
    let from = '';
    if (content !== undefined) {
      const what = `repository ${p.name}: the key given as content`;
      wanted = keyBytes(key.form, contentBytes(content, what), what);
    } else {
      const got = f.downloaded;
      if (!got || 'error' in got) throw new Error(`repository ${p.name}: cannot download the key from ${url ?? '?'} on ${f.host}: ${got && 'error' in got ? got.error : 'not downloaded'}`);
      wanted = keyBytes(key.form, got.bytes, `the key downloaded from ${url ?? '?'}`);
      from = ` from ${url ?? '?'}`;
    }
    return planContent({ path: key.path, content: wanted, mode: '0644' }, file).map((c) => ({ ...c, summary: `${c.summary.replace(/^(create|update) /, '$1 key ')}${from}` }));
  }
  if (url === undefined) throw new Error(`repository ${p.name}: the key needs url or content`);
  if (file.linkTarget !== null) throw new Error(`repository ${p.name}: ${key.path} is a symbolic link to ${file.linkTarget}: give the real file's path`);
  if (file.stat) {
    if (file.stat.type !== 'file') throw new Error(`repository ${p.name}: ${key.path} exists and is not a regular file (${file.stat.type})`);
    return attributeChanges(key.path, file.stat, { mode: '0644' });
  }
  if (f.downloader === null) {
    throw new Error(`repository ${p.name}: ${f.host} has neither curl nor wget to download the key from ${url} (install one, or give key.content)`);
  }
  return [{ summary: `download key ${key.path} from ${url}`, steps: [exec(downloadKeyCommand(url, key.path, key.form))] }];
}

function cacheChange(p: RepositoryParams, layout: Layout, f: RepositoryFacts): Change {
  if (f.manager === null) {
    throw new Error(`repository ${p.name}: ${f.host} has no ${layout.kind === 'apt' ? 'apt-get' : 'dnf or yum'} to refresh the lists with (set updateCache: false)`);
  }
  if (f.manager === 'apt') {
    return { summary: `update the apt lists of ${p.name} (apt-get update of ${layout.source} only)`, steps: [exec(aptUpdateCommand(layout.source))] };
  }
  return { summary: `update the ${f.manager} metadata of ${p.name} (makecache of that repository only)`, steps: rpmCacheSteps(f.manager, p.name) };
}

export function planRepository(p: RepositoryParams, f: RepositoryFacts): Change[] {
  const layout = layoutOf(p, f.kind);
  if (p.state === 'absent') {
    return [layout.source, ...layout.removeKeys].flatMap((path): Change[] => {
      const file = f.files[path];
      if (!file || (file.stat === null && file.linkTarget === null)) return [];
      const text = file.content && path === layout.source ? file.content.toString('utf8') : undefined;
      return [{ summary: `remove ${path}`, steps: [exec(cmd('rm', '-f', '--', path))], ...(text !== undefined ? { diff: { label: path, before: text, after: '' } } : {}) }];
    });
  }
  const mkdirs: Step[] = gatherDirs(layout).filter((d) => f.dirs[d] !== true).map((d) => exec(cmd('mkdir', '-p', '-m', '0755', '--', d)));
  const changes: Change[] = [
    ...(layout.key ? planKey(p, layout.key, f) : []),
    ...planContent({ path: layout.source, content: Buffer.from(renderSource(p, layout), 'utf8'), mode: '0644' }, f.files[layout.source] ?? {
      path: layout.source,
      stat: null,
      content: null,
      linkTarget: null,
    }),
  ];
  if (changes.length === 0) return [];
  const first = changes[0];
  if (first && mkdirs.length > 0) changes[0] = { ...first, steps: [...mkdirs, ...first.steps] };
  const enabled = (f.kind === 'apt' ? p.apt?.enabled : p.yum?.enabled) !== false;
  if (p.updateCache !== false && enabled) changes.push(cacheChange(p, layout, f));
  return changes;
}

const URL_PATTERN = '^(https?|ftp|file)://\\S+$';
const WORD = { type: 'string', pattern: '^\\S+$' } as const;

/** A oneOf/anyOf branch "this property is given" (ajv's strict mode wants it declared where it is required). */
const needs = (field: string) => ({ required: [field], properties: { [field]: {} } });

function keySchema(where: string, defaultPath: string) {
  return {
    type: 'object',
    additionalProperties: false,
    oneOf: [needs('url'), needs('content')],
    description: `The repository's signing key, given as url or content; written to path, and named by ${where}.`,
    properties: {
      url: {
        type: 'string',
        pattern: URL_PATTERN,
        description:
          'Download the key on the host (curl, else wget), only while the key file is missing. It must serve one OpenPGP public key, armored or binary; it is converted to the form the path wants (armored for .asc and rpm, binary for .gpg: dearmored with sed and base64, no gpg needed).',
      },
      content: {
        type: 'string',
        minLength: 1,
        description: 'The key itself: ASCII-armored text (-----BEGIN PGP PUBLIC KEY BLOCK-----), or a binary key in base64 (apt .gpg keyrings only).',
      },
      path: { ...pathSchema, description: `Where the key is written (mode 0644). Default: ${defaultPath}.` },
      refresh: {
        type: 'boolean',
        default: false,
        description: 'url only: download the key at every run (also in check mode) and replace the file when the key differs.',
      },
    },
  } as const;
}

export const repository = defineModule<RepositoryParams, RepositoryFacts, RepositoryOutput>({
  name: 'repository',
  description:
    'A package repository and its signing key: a deb822 /etc/apt/sources.list.d/NAME.sources (Signed-By) on Debian-family hosts, a /etc/yum.repos.d/NAME.repo (gpgkey) on Red Hat-family hosts; after a change, the lists of that repository are refreshed.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: {
        type: 'string',
        pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
        description: 'File stem of the .sources/.repo file and of the default key path; the yum repository id (apt ignores other characters in sources.list.d).',
      },
      state: { enum: ['present', 'absent'], default: 'present', description: 'present: files and key in place; absent: the file and its key removed (a key rpm already imported stays in the rpm database).' },
      apt: {
        type: 'object',
        additionalProperties: false,
        required: ['uris', 'suites'],
        description: 'The apt source (Debian-family hosts), written in deb822 form (sources.list(5)). Required there unless state is absent.',
        properties: {
          types: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ['deb', 'deb-src'] }, default: ['deb'], description: 'Types: deb (binary packages) and/or deb-src.' },
          uris: { type: 'array', minItems: 1, items: { type: 'string', pattern: URL_PATTERN }, description: 'URIs: the repository base URLs (e.g. http://ppa.moosefs.com/moosefs-3/apt/debian/bookworm).' },
          suites: { type: 'array', minItems: 1, items: WORD, description: 'Suites: distribution codenames (bookworm), or exact paths ending in / (then no components).' },
          components: { type: 'array', items: WORD, description: 'Components (main, contrib, ...); required unless every suite ends in /.' },
          architectures: { type: 'array', items: WORD, description: 'Architectures to fetch (default: the host\'s own).' },
          enabled: { type: 'boolean', default: true, description: 'false writes Enabled: no (the source is kept, and not used).' },
          key: keySchema('Signed-By', '/etc/apt/keyrings/NAME.asc for armored content, else /etc/apt/keyrings/NAME.gpg'),
        },
      },
      yum: {
        type: 'object',
        additionalProperties: false,
        anyOf: [needs('baseurl'), needs('mirrorlist'), needs('metalink')],
        description: 'The dnf/yum repository (Red Hat-family hosts), written as a .repo file (dnf.conf(5)). Required there unless state is absent.',
        properties: {
          name: { type: 'string', pattern: '^[^\\n]+$', description: 'Human-readable name (default: the repository name).' },
          baseurl: { type: 'array', minItems: 1, items: { type: 'string', pattern: URL_PATTERN }, description: 'Base URLs (dnf variables like $basearch are kept as written).' },
          mirrorlist: { type: 'string', pattern: URL_PATTERN, description: 'URL of a mirror list.' },
          metalink: { type: 'string', pattern: URL_PATTERN, description: 'URL of a metalink file.' },
          enabled: { type: 'boolean', default: true, description: 'enabled=1 or 0.' },
          gpgcheck: { type: 'boolean', default: true, description: 'Check package signatures (gpgcheck=1).' },
          gpgkey: keySchema('gpgkey=file://PATH (dnf imports it at the first install from the repository)', '/etc/pki/rpm-gpg/RPM-GPG-KEY-NAME'),
        },
      },
      updateCache: {
        type: 'boolean',
        default: true,
        description:
          'After a change, refresh the lists of this repository only: apt-get update with only its .sources file (other lists are kept), or dnf makecache --refresh with only this repository enabled. Skipped for a disabled repository.',
      },
    },
  },
  examples: [
    {
      title: 'MooseFS repository (apt on Debian 12, dnf on Rocky 9)',
      params: {
        name: 'moosefs',
        apt: {
          uris: ['http://ppa.moosefs.com/moosefs-3/apt/debian/bookworm'],
          suites: ['bookworm'],
          components: ['main'],
          key: { url: 'https://ppa.moosefs.com/moosefs.key' },
        },
        yum: {
          name: 'MooseFS',
          baseurl: ['http://ppa.moosefs.com/moosefs-3/yum/el9'],
          gpgkey: { url: 'https://ppa.moosefs.com/RPM-GPG-KEY-MooseFS' },
        },
      },
    },
  ],
  async gather(conn, params, ctx) {
    const kind = kindFor(params, ctx.facts, ctx.host);
    const layout = layoutOf(params, kind);
    const r = await conn.exec(repositoryGatherCommand(layout));
    if (r.exitCode !== 0) throw new Error(`cannot read repository ${params.name} on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return { ...parseRepositoryGather(r.stdout, layout), host: ctx.host, kind, manager: managerFor(kind, ctx.facts) };
  },
  plan: planRepository,
  output(params, facts) {
    const layout = layoutOf({ ...params, state: 'present' }, facts.kind);
    const source = facts.files[layout.source];
    return { kind: facts.kind, path: layout.source, present: !!source?.stat, keyPath: params.state === 'absent' ? null : (layout.key?.path ?? null) };
  },
});
