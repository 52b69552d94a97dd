/**
 * The one-round-trip gather every MooseFS role shares: which of the role's packages are missing, the files it
 * manages (stat + bytes, as copy reads them), the stat of its directories, `systemctl show` of its unit, and parts
 * of its own (each a `sanbook_run` section, see blockdev.ts). Nothing on the host is changed.
 */
import { sh, type Command } from '../../lib/command.ts';
import { MARK, SECTION_FUNCTION, sectionOf, splitSections, type Section } from '../blockdev.ts';
import { parseFileContent, readFileCommand, type FileContentFacts } from '../copy.ts';
import { parseStat, STAT_FORMAT, type Stat } from '../file.ts';
import { parseSystemctlShow, showCommand, type ServiceFacts } from '../service.ts';

/** A program (found with command -v) or a file (test -e) that a package installs. */
export interface Need {
  readonly pkg: string;
  readonly program?: string;
  readonly path?: string;
}

export interface GatherParts {
  readonly needs: readonly Need[];
  /** Files read whole (config files, unit files, drop-ins). */
  readonly files: readonly string[];
  /** Paths whose stat is read (directories). */
  readonly stats?: readonly string[];
  /** The systemd unit whose state is read. */
  readonly unit: string;
  /** Further sections (each a `sanbook_run TAG ...` line or a function + call). */
  readonly more?: readonly Command[];
}

const MISSING = `${MARK} missing`;

/** The gather script: exits early (printing one "missing" line per package) when a package is not installed. */
export function gatherScript(parts: GatherParts): Command {
  const checks = parts.needs.map((n) =>
    n.path !== undefined
      ? sh`[ -e ${n.path} ] || echo ${`${MISSING} ${n.pkg} ${n.path}`}`
      : sh`command -v ${n.program ?? ''} >/dev/null 2>&1 || echo ${`${MISSING} ${n.pkg} ${n.program ?? ''}`}`,
  );
  const files = parts.files.map(
    (path, i) => sh`sanbook_file_${String(i)}() {
${readFileCommand(path)}
}
sanbook_run ${`file ${path}`} sanbook_file_${String(i)}`,
  );
  const stats = (parts.stats ?? []).map((path) => sh`sanbook_run ${`stat ${path}`} sanbook_stat ${path}`);
  return sh`${SECTION_FUNCTION}
sanbook_stat() { if [ -e "$1" ]; then stat --printf ${STAT_FORMAT} -- "$1"; else echo absent; fi; }
sanbook_missing=$( ${joinLines(checks)} )
if [ -n "$sanbook_missing" ]; then printf '%s\\n' "$sanbook_missing"; exit 0; fi
${joinLines(files)}
${joinLines(stats)}
sanbook_run service ${showCommand(parts.unit)}
${joinLines(parts.more ?? [])}
:`;
}

function joinLines(commands: readonly Command[]): Command {
  if (commands.length === 0) return sh`:`;
  return commands.slice(1).reduce((all, c) => sh`${all}
${c}`, commands[0] as Command);
}

export interface Gathered {
  readonly sections: readonly Section[];
  readonly service: ServiceFacts;
  file(path: string): FileContentFacts;
  /** The stat of a path, null when nothing is there. */
  stat(path: string): Stat | null;
  section(tag: string): Section;
}

/**
 * The sections of the output; a missing package is an error naming it (and the program or file it lacks), so is
 * a file that cannot be read or a failing systemctl.
 */
export function parseGathered(stdout: string, module: string, host: string, unit: string): Gathered {
  const missing = stdout.split('\n').filter((l) => l.startsWith(`${MISSING} `)).map((l) => l.slice(MISSING.length + 1).split(' '));
  if (missing.length > 0) {
    const what = missing.map(([pkg, thing]) => `${pkg ?? ''} (no ${thing ?? ''})`).join(', ');
    throw new Error(`${module}: ${missing.length === 1 ? 'package' : 'packages'} ${what} not installed on ${host}: install ${missing.length === 1 ? 'it' : 'them'} first (package module)`);
  }
  const sections = splitSections(stdout);
  const section = (tag: string) => sectionOf(sections, tag, module);
  const ok = (tag: string, what: string): Section => {
    const s = section(tag);
    if (s.exitCode !== 0) throw new Error(`${module}: ${what} failed on ${host}: ${s.stderr || `exit ${s.exitCode}`}`);
    return s;
  };
  const service = ok('service', `systemctl show ${unit}`);
  return {
    sections,
    service: parseSystemctlShow(service.stdout, unit),
    file: (path) => parseFileContent(path, ok(`file ${path}`, `reading ${path}`).stdout),
    stat: (path) => {
      const text = ok(`stat ${path}`, `stat ${path}`).stdout.trim();
      return text === 'absent' ? null : parseStat(text);
    },
    section,
  };
}

/** `od -A n -t x1 -v` output as upper-case hex digits (MooseFS prints ids as %016X). */
export function hexOf(od: string): string {
  return od.replace(/\s+/g, '').toUpperCase();
}
