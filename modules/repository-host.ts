/**
 * The repository module's host side: the one gather script (files, key directory, downloader, and the key
 * downloaded again when refresh asks) and its parser, and the step that downloads a key on the host.
 */
import { raw, sh, type Command } from '../lib/command.ts';
import { parseFileContent, readFileCommand, type FileContentFacts } from './copy.ts';
import { dirOf, type KeyForm, type Layout } from './repository-files.ts';

export type Downloader = 'curl' | 'wget';

export interface RepositoryHostFacts {
  /** Each file of the layout (source, key, keys to remove), by path. */
  readonly files: Readonly<Record<string, FileContentFacts>>;
  /** Which directories of the files exist (gatherDirs). */
  readonly dirs: Readonly<Record<string, boolean>>;
  readonly downloader: Downloader | null;
  /** refresh: the key as downloaded now (bytes), or why the download failed. */
  readonly downloaded?: { readonly bytes: Buffer } | { readonly error: string };
}

const MARK = '@@sanbook-repository@@';
const TIMEOUT_S = 120;

/**
 * `fetch URL FILE`: curl, else wget; exit 127 naming both when neither is installed. Redirects are followed,
 * an HTTP error is a failure.
 */
const FETCH = raw(`fetch() {
  if command -v curl >/dev/null 2>&1; then curl -fsSL --max-time ${TIMEOUT_S} -o "$2" -- "$1"
  elif command -v wget >/dev/null 2>&1; then wget -q -T ${TIMEOUT_S} -O "$2" -- "$1"
  else echo 'neither curl nor wget is installed: cannot download the key' >&2; return 127
  fi
}`);

/** Every path the plan may need to read, in order. */
export function gatherPaths(layout: Layout): string[] {
  return [layout.source, ...(layout.key ? [layout.key.path] : []), ...layout.removeKeys];
}

/** The directories the files go to (created by the plan when missing). */
export function gatherDirs(layout: Layout): string[] {
  return [...new Set([dirOf(layout.source), ...(layout.key ? [dirOf(layout.key.path)] : [])])];
}

/** One round trip that reads and changes nothing (refresh: the download goes to a temp dir, then away). */
export function repositoryGatherCommand(layout: Layout): Command {
  const files = gatherPaths(layout)
    .map((p) => sh`(
${readFileCommand(p)}
); echo; echo ${MARK} file $?`)
    .reduce((a, b) => sh`${a}
${b}`);
  const dirs = gatherDirs(layout)
    .map((d, i) => sh`if [ -d ${d} ]; then echo ${MARK} dir ${i}; fi`)
    .reduce((a, b) => sh`${a}
${b}`);
  const url = layout.key?.spec.refresh ? layout.key.spec.url : undefined;
  const download =
    url === undefined
      ? sh`:`
      : sh`${FETCH}
t=$(mktemp -d) || exit 1
fetch ${url} "$t/key" 2>"$t/err"; rc=$?
if [ "$rc" -eq 0 ]; then base64 -w 0 -- "$t/key"; else head -c 2000 -- "$t/err"; fi
echo; echo ${MARK} download $rc; rm -rf -- "$t"`;
  return sh`${files}
${dirs}
for d in curl wget; do if command -v "$d" >/dev/null 2>&1; then echo ${MARK} downloader "$d"; break; fi; done
${download}`;
}

/** Split the gather output at the marker lines: [text before the marker, the marker's words]. */
function sections(stdout: string): { text: string; words: string[] }[] {
  const out: { text: string; words: string[] }[] = [];
  let text: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${MARK} `)) {
      out.push({ text: text.join('\n'), words: line.split(' ').slice(1) });
      text = [];
    } else text.push(line);
  }
  return out;
}

export function parseRepositoryGather(stdout: string, layout: Layout): RepositoryHostFacts {
  const parts = sections(stdout);
  const paths = gatherPaths(layout);
  const fileParts = parts.filter((s) => s.words[0] === 'file');
  if (fileParts.length !== paths.length) throw new Error(`unexpected gather output: ${fileParts.length} files read, ${paths.length} expected`);
  const files: Record<string, FileContentFacts> = {};
  paths.forEach((path, i) => {
    const part = fileParts[i];
    if (part?.words[1] !== '0') throw new Error(`cannot read ${path}: ${part?.text.trim() || `exit ${part?.words[1] ?? '?'}`}`);
    // The script ends the file's (unterminated) base64 with a newline, which splitting at lines took away.
    files[path] = parseFileContent(path, part.text);
  });
  const found = parts.find((s) => s.words[0] === 'downloader')?.words[1];
  const dl = parts.find((s) => s.words[0] === 'download');
  const downloaded =
    dl === undefined
      ? undefined
      : dl.words[1] === '0'
        ? { bytes: Buffer.from(dl.text.trim(), 'base64') }
        : { error: `${dl.text.trim() || 'download failed'} (exit ${dl.words[1] ?? '?'})` };
  return {
    files,
    dirs: Object.fromEntries(gatherDirs(layout).map((d, i) => [d, parts.some((s) => s.words[0] === 'dir' && s.words[1] === String(i))])),
    downloader: found === 'curl' || found === 'wget' ? found : null,
    ...(downloaded ? { downloaded } : {}),
  };
}

/**
 * Download a key to `dest` on the host, checked and in the form its path wants, written atomically with mode
 * 0644 (apt reads keyrings as the _apt user). The download must be one OpenPGP public key: armored (dearmored
 * with sed and base64 for a binary keyring: no gpg needed), or binary where a binary keyring is wanted.
 */
export function downloadKeyCommand(url: string, dest: string, form: KeyForm): Command {
  const convert =
    form === 'gpg'
      ? raw(`if [ "$(grep -c '^-----BEGIN PGP PUBLIC KEY BLOCK-----' "$tmp")" -ne 1 ]; then echo "$what must hold exactly one armored public key block" >&2; exit 1; fi
  tr -d '\\r' < "$tmp" | sed -n '/^-----BEGIN PGP PUBLIC KEY BLOCK-----$/,/^-----END PGP PUBLIC KEY BLOCK-----$/p' | sed -e '1,/^$/d' -e '/^=/d' -e '/^-----END/d' | base64 -d > "$tmp.bin" || { echo "$what: cannot dearmor the key" >&2; exit 1; }
  mv -f -- "$tmp.bin" "$tmp"`)
      : raw(':');
  const binary =
    form === 'gpg'
      ? raw(':')
      : raw(`echo "$what is a binary key: ${form === 'asc' ? 'an .asc keyring must be ASCII-armored (give key.path ending in .gpg)' : 'rpm needs an ASCII-armored one'}" >&2; exit 1`);
  return sh`${FETCH}
url=${url}; dest=${dest}; what="the key downloaded from $url"
tmp=$(mktemp -- "$dest.sanbook.XXXXXX") || exit 1
trap 'rm -f -- "$tmp" "$tmp.bin"' EXIT
fetch "$url" "$tmp" || { echo "cannot download $url" >&2; exit 1; }
if grep -q '^-----BEGIN PGP PUBLIC KEY BLOCK-----' "$tmp"; then
  ${convert}
else
  case "$(od -An -tx1 -N1 -- "$tmp" | tr -d ' ')" in
    98|99|9a|c6) ${binary} ;;
    *) echo "$what is not an OpenPGP public key (neither armored nor binary)" >&2; exit 1 ;;
  esac
fi
chmod 0644 "$tmp" && mv -f -- "$tmp" "$dest" || exit 1
trap - EXIT${raw('')}`;
}
