/**
 * The multipath_conf plan: the rendered file replaces /etc/multipath.conf only once multipath-tools accepted it,
 * then multipathd is told (reconfigure), enabled and started.
 *
 * multipath reads its configuration from a fixed path (/etc/multipath.conf, then /etc/multipath/conf.d/*.conf):
 * `multipath -t` has no option to read another file. The new text is therefore written next to the file, and
 * checked by `multipath -t` in a private mount namespace where it is bind-mounted over the real path: the host
 * (udev's `multipath -u`, multipathd) never sees a file that was not accepted. multipath's parser does not fail
 * on a bad keyword or value: it says so on stderr ("/etc/multipath.conf line 3, invalid keyword in the defaults
 * section: foo") and goes on. `-v1` keeps those (levels 0 and 1: parse errors, invalid keywords and values) and
 * mutes level-2 notices; any stderr output, or a non-zero exit ("error parsing config file"), refuses the file
 * with multipath's own words and leaves the old one in place.
 */
import { Command, cmd, sh } from '../../lib/command.ts';
import { exec, put, type Change } from '../../lib/module.ts';
import type { FileContentFacts } from '../copy.ts';
import type { ServiceFacts } from '../service.ts';
import { confValue, parseMultipathConf, renderMultipathConf, type BlacklistSection, type ConfSection, type MultipathConfModel } from './conf.ts';
import type { MultipathMap } from './maps.ts';

export interface MultipathConfParams extends MultipathConfModel {
  path?: string;
  reload?: boolean;
}

export interface MultipathConfFacts {
  readonly file: FileContentFacts;
  /** multipathd.service as `systemctl show` has it. */
  readonly service: ServiceFacts;
  readonly maps: readonly MultipathMap[];
  /** Where the maps were read: multipathd, multipath -ll, or none (multipathd stopped but socket-activated). */
  readonly mapsFrom: 'multipathd' | 'multipath -ll' | 'none';
}

export const DEFAULT_PATH = '/etc/multipath.conf';
const RUNNING = ['active', 'reloading', 'activating'];

/** Check TMP with `multipath -t` as if it were PATH, then rename it to PATH; on any complaint, remove it and fail. */
export function installCommand(tmp: string, path: string): Command {
  const script = sh`new=${tmp}; conf=${path}; created=
if [ ! -e "$conf" ]; then : > "$conf" || exit 1; created=1; fi
err=$(unshare --mount --propagation private /bin/sh -c 'mount --bind "$1" "$2" && exec multipath -v1 -t' sh "$new" "$conf" 2>&1 >/dev/null); rc=$?
if [ "$rc" -ne 0 ] || [ -n "$err" ]; then
  if [ -n "$created" ]; then rm -f -- "$conf"; fi
  rm -f -- "$new"
  printf '%s\\n' "multipath -t refused the new $conf (exit $rc), which is left as it was:" "$err" >&2
  exit 1
fi
mv -f -- "$new" "$conf"`;
  return new Command(script.script, `multipath -t with ${tmp} as ${path}, then mv ${tmp} ${path}`);
}

const regex = (pattern: string): RegExp | null => {
  try {
    return new RegExp(pattern);
  } catch {
    return null;
  }
};
const matches = (patterns: readonly string[] | undefined, value: string) => (patterns ?? []).some((p) => regex(p)?.test(value) ?? false);
const deviceMatches = (list: BlacklistSection['device'], m: MultipathMap) =>
  (list ?? []).some((d) => (regex(d.vendor)?.test(m.vendor) ?? false) && (regex(d.product)?.test(m.product) ?? false));

/** Would this blacklist (less its exceptions) take the map away? By WWID, vendor/product, or every path's devnode. */
export function blacklists(p: MultipathConfModel, m: MultipathMap): boolean {
  const b = p.blacklist;
  const x = p.blacklistExceptions;
  if (!b) return false;
  if (matches(b.wwid, m.wwid) && !matches(x?.wwid, m.wwid)) return true;
  if (deviceMatches(b.device, m) && !deviceMatches(x?.device, m)) return true;
  return m.paths.length > 0 && m.paths.every((path) => matches(b.devnode, path.dev) && !matches(x?.devnode, path.dev));
}

/** What the new file does to the live maps, in words (renames, maps it blacklists). */
function mapNotes(p: MultipathConfModel, old: readonly ConfSection[], maps: readonly MultipathMap[]): string[] {
  const notes: string[] = [];
  const oldAlias = (wwid: string) =>
    confValue(
      old.find((s) => s.name === 'multipaths')?.sections.find((s) => confValue(s, 'wwid') === wwid),
      'alias',
    );
  for (const m of maps) {
    const alias = (p.multipaths ?? []).find((mp) => mp.wwid === m.wwid)?.alias;
    if (alias !== undefined && alias !== m.name) notes.push(`map ${m.name} (${m.wwid}) becomes /dev/mapper/${alias}`);
    if (alias === undefined && oldAlias(m.wwid) === m.name) notes.push(`map ${m.name} (${m.wwid}) loses its alias`);
    if (blacklists(p, m)) notes.push(`map ${m.name} (${m.wwid}) is blacklisted: multipathd removes it once nothing holds it open`);
  }
  return notes;
}

export function planMultipathConf(p: MultipathConfParams, f: MultipathConfFacts): Change[] {
  const path = p.path ?? DEFAULT_PATH;
  const s = f.service;
  if (f.file.linkTarget !== null) throw new Error(`${path} is a symbolic link to ${f.file.linkTarget}: give the real file's path`);
  if (f.file.stat && f.file.stat.type !== 'file') throw new Error(`${path} exists and is not a regular file (${f.file.stat.type})`);
  if (s.loadState === 'masked' || s.unitFileState === 'masked') throw new Error('multipathd.service is masked: unmask it first (service module, masked: false)');
  if (s.loadState === 'not-found') throw new Error('multipathd.service is not known to systemd: is multipath-tools installed?');
  const text = renderMultipathConf(p);
  const old = f.file.content === null ? null : f.file.content.toString('utf8');
  const running = RUNNING.includes(s.activeState);
  const changes: Change[] = [];
  if (old !== text) {
    let oldSections: ConfSection[] = [];
    try {
      oldSections = old === null ? [] : parseMultipathConf(old);
    } catch {
      // A file multipath could not read either: nothing to compare with.
    }
    const reload = p.reload !== false && running;
    const then = !running ? 'multipathd reads it when it starts' : reload ? 'then multipathd reconfigure' : 'not applied: reload is false, notify a handler';
    const notes = mapNotes(p, oldSections, f.maps);
    const tmp = `${path}.sanbook-new`;
    changes.push({
      summary: `${old === null ? 'create' : 'update'} ${path} (checked with multipath -t; ${then})${notes.length > 0 ? `: ${notes.join('; ')}` : ''}`,
      steps: [put(tmp, text, { mode: 0o644, owner: 'root', group: 'root' }), exec(installCommand(tmp, path)), ...(reload ? [exec(cmd('systemctl', 'reload', 'multipathd'))] : [])],
      diff: { label: path, before: old ?? '', after: text },
    });
  }
  if (s.unitFileState === 'disabled' || s.unitFileState === '') {
    changes.push({ summary: `enable multipathd (${s.unitFileState || 'unknown'})`, steps: [exec(cmd('systemctl', 'enable', 'multipathd'))] });
  }
  if (!running) changes.push({ summary: `start multipathd (${s.activeState || 'unknown'})`, steps: [exec(cmd('systemctl', 'start', 'multipathd'))] });
  return changes;
}
