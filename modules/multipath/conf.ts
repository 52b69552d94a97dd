/**
 * /etc/multipath.conf as data: the typed keywords this module knows (their JSON schemas and descriptions), the
 * rendering of a task's params into the canonical syntax (through templates/multipath.conf.hbs), and a parser
 * of that syntax as multipath-tools 0.9.4 reads it (libmpathutil's parser: `#` and `!` start a comment outside
 * a quoted string, `{` and `}` are tokens of their own, a quoted value keeps its blanks and `""` is a quote).
 *
 * Section keys are multipath.conf's own keywords (snake_case), so that multipath.conf(5) is their reference.
 */
import { fileURLToPath } from 'node:url';
import { renderTemplate } from '../../lib/template.ts';

export type ConfValue = string | number | boolean;
export type Keywords = Record<string, ConfValue | undefined>;

export interface DeviceEntry extends Keywords {
  vendor: string;
  product: string;
}
export interface MultipathEntry extends Keywords {
  wwid: string;
}
export interface Section extends Keywords {}
export interface BlacklistSection {
  devnode?: string[];
  wwid?: string[];
  property?: string[];
  protocol?: string[];
  device?: { vendor: string; product: string }[];
}

export interface MultipathConfModel {
  defaults?: Section & { extra?: Record<string, ConfValue> };
  blacklist?: BlacklistSection;
  blacklistExceptions?: BlacklistSection;
  devices?: (DeviceEntry & { extra?: Record<string, ConfValue> })[];
  /** Settings over every device entry, built-in ones included (the hardware table's LIO-ORG entry sets no_path_retry 12, which beats defaults). */
  overrides?: Section & { extra?: Record<string, ConfValue> };
  multipaths?: (MultipathEntry & { extra?: Record<string, ConfValue> })[];
}

// ---------------------------------------------------------------- keywords and their schemas

const TEXT = '^[^\\x00-\\x1f\\x7f]*$';
const str = (description: string, pattern = TEXT) => ({ type: 'string', pattern, description });
const int = (description: string, minimum = 0) => ({ type: 'integer', minimum, description });
const bool = (description: string) => ({ type: 'boolean', description });
const oneOf = (values: readonly string[], description: string) => ({ enum: [...values], description });
const wordOrInt = (words: readonly string[], minimum: number, description: string) => ({
  anyOf: [{ enum: [...words] }, { type: 'integer', minimum }],
  description,
});

/** Every typed keyword: its schema (with its description). */
export const KEYWORDS: Readonly<Record<string, Record<string, unknown>>> = {
  verbosity: { type: 'integer', minimum: 0, maximum: 6, description: 'Log level of multipath and multipathd, 0-6 (default 2).' },
  polling_interval: int('Seconds between two checks of a working path (default 5).', 1),
  max_polling_interval: int('Longest interval between checks of a path that keeps working (default 4 x polling_interval).', 1),
  user_friendly_names: bool('Name maps mpathN (remembered in /etc/multipath/bindings) instead of by their WWID.'),
  find_multipaths: oneOf(['yes', 'no', 'strict', 'greedy', 'smart', 'on', 'off'], 'Which devices become maps: yes (two paths or a known WWID), strict (known WWIDs only), greedy (every device not blacklisted), smart, no/off.'),
  find_multipaths_timeout: { type: 'integer', description: 'find_multipaths smart: seconds to wait for a second path (negative: only for known hardware).' },
  path_grouping_policy: oneOf(['failover', 'multibus', 'group_by_serial', 'group_by_prio', 'group_by_node_name'], 'How paths are grouped: failover (one path per group), multibus (all in one), group_by_prio (by priority, for ALUA), ...'),
  path_selector: str('Path selector of the dm table: "service-time 0" (default), "round-robin 0", "queue-length 0", "historical-service-time 0".', '^(round-robin|queue-length|service-time|historical-service-time)( [0-9A-Za-z_.]+)*$'),
  path_checker: oneOf(['tur', 'readsector0', 'directio', 'rdac', 'emc_clariion', 'hp_sw', 'cciss_tur', 'none'], 'How a path is checked (tur: SCSI TEST UNIT READY, the default).'),
  prio: oneOf(['const', 'alua', 'emc', 'hp_sw', 'hds', 'ontap', 'rdac', 'random', 'weightedpath', 'path_latency', 'ana', 'datacore', 'iet', 'sysfs'], 'Path priority routine (alua: from the target\'s ALUA states, as LIO reports them).'),
  prio_args: str('Arguments of the prio routine.'),
  features: str('dm-multipath features, count first: "0", "2 pg_init_retries 50". "1 queue_if_no_path" is deprecated: use no_path_retry queue.', '^[0-9]+( [^\\x00-\\x20"]+)*$'),
  hardware_handler: str('Kernel hardware handler: "1 alua" for LIO targets, "0" for none.', '^(0|[1-9] [a-z_]+( [^\\x00-\\x20"]+)*)$'),
  failback: wordOrInt(['immediate', 'manual', 'followover'], 1, 'Return to a better path group: immediate, manual, followover, or after N seconds.'),
  no_path_retry: wordOrInt(['fail', 'queue'], 1, 'When every path is down: fail I/O at once, queue it forever, or retry N checks (N x polling_interval seconds) then fail.'),
  rr_weight: oneOf(['priorities', 'uniform'], 'Weight round-robin by path priority, or not.'),
  rr_min_io_rq: int('I/O requests to send down a path before switching to the next (request-based dm).', 1),
  fast_io_fail_tmo: wordOrInt(['off'], 0, 'Seconds before the SCSI layer fails I/O on a lost remote port (FC), or off.'),
  dev_loss_tmo: wordOrInt(['infinity'], 0, 'Seconds before the SCSI layer removes a lost remote port (FC), or infinity.'),
  max_fds: wordOrInt(['max'], 1, 'Most file descriptors multipathd may open, or max.'),
  queue_without_daemon: bool('Keep queueing I/O when multipathd is stopped (default no).'),
  flush_on_last_del: bool('Stop queueing when the last path of a map is deleted.'),
  retain_attached_hw_handler: bool('Keep the hardware handler the kernel already attached.'),
  detect_prio: bool('Use the alua prio on devices that support ALUA, whatever prio says.'),
  detect_checker: bool('Use the tur checker on devices that support ALUA, whatever path_checker says.'),
  skip_kpartx: bool('Do not create partition maps (NAME-part1) on the map.'),
  deferred_remove: bool('Remove a map when its last path goes away, once it is no longer in use.'),
  uid_attribute: str('udev property that holds the WWID (default ID_SERIAL).', '^[A-Za-z0-9_]+$'),
  alias_prefix: str('Prefix of user friendly names (default mpath).', '^[A-Za-z0-9_.-]+$'),
  enable_foreign: str('Regex of the foreign libraries to enable (NONE by default in 0.9.4; nvme for native NVMe multipath).'),
  alias: str('Name of the map (/dev/mapper/ALIAS), instead of mpathN or the WWID.', '^[A-Za-z0-9_.+:-]+$'),
  revision: str('Regex of the SCSI revision.'),
  product_blacklist: str('Regex of products of this vendor to ignore.'),
};

export const DEFAULTS_KEYS = ['verbosity', 'polling_interval', 'max_polling_interval', 'user_friendly_names', 'find_multipaths', 'find_multipaths_timeout', 'path_grouping_policy', 'path_selector', 'path_checker', 'prio', 'prio_args', 'features', 'failback', 'no_path_retry', 'rr_weight', 'rr_min_io_rq', 'fast_io_fail_tmo', 'dev_loss_tmo', 'max_fds', 'queue_without_daemon', 'flush_on_last_del', 'retain_attached_hw_handler', 'detect_prio', 'detect_checker', 'skip_kpartx', 'deferred_remove', 'uid_attribute', 'alias_prefix', 'enable_foreign'] as const;
export const DEVICE_KEYS = ['vendor', 'product', 'revision', 'product_blacklist', 'alias_prefix', 'path_grouping_policy', 'uid_attribute', 'path_selector', 'path_checker', 'prio', 'prio_args', 'features', 'hardware_handler', 'rr_weight', 'failback', 'no_path_retry', 'rr_min_io_rq', 'fast_io_fail_tmo', 'dev_loss_tmo', 'flush_on_last_del', 'user_friendly_names', 'retain_attached_hw_handler', 'detect_prio', 'detect_checker', 'skip_kpartx', 'deferred_remove'] as const;
/** What the overrides section takes: a device entry's settings, less what names a device or needs one. */
export const OVERRIDES_KEYS = DEVICE_KEYS.filter((k) => !['vendor', 'product', 'revision', 'product_blacklist', 'hardware_handler'].includes(k));
export const MULTIPATH_KEYS = ['wwid', 'alias', 'path_grouping_policy', 'path_selector', 'prio', 'prio_args', 'features', 'failback', 'no_path_retry', 'rr_weight', 'rr_min_io_rq', 'flush_on_last_del', 'user_friendly_names', 'skip_kpartx', 'deferred_remove'] as const;
/** Keywords whose values are regular expressions: always written quoted. */
const REGEX_KEYS = new Set(['devnode', 'wwid', 'property', 'protocol', 'vendor', 'product', 'revision', 'product_blacklist', 'enable_foreign']);

export const extraSchema = {
  type: 'object',
  propertyNames: { pattern: '^[a-z][a-z0-9_]*$' },
  additionalProperties: { type: ['string', 'integer', 'boolean'], pattern: TEXT },
  description: 'Other keywords of the section, written as given (booleans as yes/no). A typed keyword cannot also be given here.',
};

/** The schema of a section made of these keywords (plus `extra`). */
export function sectionSchema(keys: readonly string[], required: readonly string[], description: string, own: Record<string, unknown> = {}): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const k of keys) properties[k] = own[k] ?? KEYWORDS[k];
  return { type: 'object', additionalProperties: false, required: [...required], description, properties: { ...properties, extra: extraSchema } };
}

// ---------------------------------------------------------------- rendering

const BARE = /^[A-Za-z0-9_.:/@+,=-]+$/;

/** A value as multipath.conf has it: yes/no for booleans, quoted when it holds blanks or other specials, or is a regex. */
export function formatValue(key: string, value: ConfValue): string {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number') return String(value);
  if (!REGEX_KEYS.has(key) && BARE.test(value)) return value;
  return `"${value.replace(/"/g, '""')}"`;
}

interface Line {
  key: string;
  value: string;
}
interface Block {
  name: string;
  entries: Line[];
  blocks: Block[];
}

function lines(section: Keywords & { extra?: Record<string, ConfValue> }, keys: readonly string[], where: string): Line[] {
  const out: Line[] = [];
  for (const k of keys) {
    const v = section[k];
    if (v !== undefined) out.push({ key: k, value: formatValue(k, v) });
  }
  for (const [k, v] of Object.entries(section.extra ?? {})) {
    if (section[k] !== undefined || k === 'extra') throw new Error(`multipath.conf ${where}: ${k} is given twice (typed and in extra)`);
    out.push({ key: k, value: formatValue(k, v) });
  }
  return out;
}

function blacklistBlock(name: string, b: BlacklistSection | undefined): Block[] {
  if (!b) return [];
  const entries = (['devnode', 'wwid', 'property', 'protocol'] as const).flatMap((k) => (b[k] ?? []).map((v) => ({ key: k, value: formatValue(k, v) })));
  const blocks = (b.device ?? []).map((d) => ({ name: 'device', entries: lines(d, ['vendor', 'product'], `${name} device`), blocks: [] }));
  return entries.length + blocks.length === 0 ? [] : [{ name, entries, blocks }];
}

/** The sections of the file, in multipath.conf's usual order; empty sections are left out. */
export function confBlocks(m: MultipathConfModel): Block[] {
  const wwids = new Set<string>();
  for (const mp of m.multipaths ?? []) {
    if (wwids.has(mp.wwid)) throw new Error(`multipath.conf multipaths: WWID ${mp.wwid} is listed twice`);
    wwids.add(mp.wwid);
  }
  const aliases = (m.multipaths ?? []).map((mp) => mp.alias).filter((a) => a !== undefined);
  const dup = aliases.find((a, i) => aliases.indexOf(a) !== i);
  if (dup !== undefined) throw new Error(`multipath.conf multipaths: alias ${String(dup)} is given to two WWIDs`);
  const defaults = m.defaults ? lines(m.defaults, DEFAULTS_KEYS, 'defaults') : [];
  const devices = (m.devices ?? []).map((d) => ({ name: 'device', entries: lines(d, DEVICE_KEYS, `device ${d.vendor}`), blocks: [] }));
  const overrides = m.overrides ? lines(m.overrides, OVERRIDES_KEYS, 'overrides') : [];
  const maps = (m.multipaths ?? []).map((mp) => ({ name: 'multipath', entries: lines(mp, MULTIPATH_KEYS, `multipath ${mp.wwid}`), blocks: [] }));
  return [
    ...(defaults.length > 0 ? [{ name: 'defaults', entries: defaults, blocks: [] }] : []),
    ...blacklistBlock('blacklist', m.blacklist),
    ...blacklistBlock('blacklist_exceptions', m.blacklistExceptions),
    ...(devices.length > 0 ? [{ name: 'devices', entries: [], blocks: devices }] : []),
    ...(overrides.length > 0 ? [{ name: 'overrides', entries: overrides, blocks: [] }] : []),
    ...(maps.length > 0 ? [{ name: 'multipaths', entries: [], blocks: maps }] : []),
  ];
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The file's text (templates/multipath.conf.hbs). */
export function renderMultipathConf(m: MultipathConfModel): string {
  return renderTemplate('multipath.conf', { sections: confBlocks(m) }, { root: ROOT }).content;
}

// ---------------------------------------------------------------- parsing

export interface ConfEntry {
  readonly key: string;
  /** The value as multipath reads it (quotes removed, "" made "); '' when the keyword has none. */
  readonly value: string;
  readonly line: number;
}
export interface ConfSection {
  readonly name: string;
  readonly entries: ConfEntry[];
  readonly sections: ConfSection[];
}

/** Split one line into tokens as multipath does; a quoted string is one token that keeps its quote marks. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (/\s/.test(c)) i++;
    else if (c === '#' || c === '!') break;
    else if (c === '{' || c === '}') {
      out.push(c);
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let text = '';
      for (; j < line.length; j++) {
        if (line[j] === '"' && line[j + 1] === '"') {
          text += '"';
          j++;
        } else if (line[j] === '"') break;
        else text += line[j];
      }
      out.push(`"${text}"`);
      i = j + 1;
    } else {
      let j = i;
      while (j < line.length && !/[\s#!{}"]/.test(line[j] as string)) j++;
      out.push(line.slice(i, j));
      i = j;
    }
  }
  return out;
}

const unquote = (t: string): string => (t.startsWith('"') ? t.slice(1, -1) : t);

/** Parse multipath.conf text (or `multipathd show config` output) into its sections. */
export function parseMultipathConf(text: string): ConfSection[] {
  const top: ConfSection = { name: '', entries: [], sections: [] };
  const stack: ConfSection[] = [top];
  text.split('\n').forEach((raw, i) => {
    const t = tokenize(raw);
    const cur = stack[stack.length - 1] as ConfSection;
    if (t.length === 0) return;
    if (t[0] === '}') {
      if (stack.length === 1) throw new Error(`multipath.conf line ${i + 1}: unmatched }`);
      stack.pop();
    } else if (t[1] === '{') {
      const s: ConfSection = { name: t[0] as string, entries: [], sections: [] };
      cur.sections.push(s);
      stack.push(s);
    } else cur.entries.push({ key: t[0] as string, value: t[1] === undefined ? '' : unquote(t[1]), line: i + 1 });
  });
  if (stack.length > 1) throw new Error(`multipath.conf: section ${stack[stack.length - 1]?.name ?? ''} is not closed`);
  return top.sections;
}

/** The value of a keyword in a parsed section (the last one wins, as in multipath). */
export function confValue(section: ConfSection | undefined, key: string): string | undefined {
  return section?.entries.filter((e) => e.key === key).pop()?.value;
}
