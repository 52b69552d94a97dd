/**
 * systemd_mount's pure parts: the unit name systemd derives from a path, the unit file and the /etc/fstab line
 * the task wants, and the plan.
 *
 * A filesystem mounted at `where` that is not the task's (another device, or another type) is unmounted and the
 * right one mounted, but that change is marked destructive (refused unless force): it loses no data, yet it
 * cuts off whoever uses the mounted filesystem, and stopping the mount unit also stops the units that require
 * it (requiredBy, e.g. a MooseFS chunkserver writing there). What is mounted there may also be what the user
 * wants and the task's `what` the mistake: the plan names both and lets the user decide with force.
 */
import { cmd } from '../../lib/command.ts';
import { exec, mkdirFor, put, type Change, type Step } from '../../lib/module.ts';
import { describeSignature, type Signature } from '../blockdev.ts';
import type { ServiceFacts } from '../service.ts';

export interface SystemdMountParams {
  where: string;
  what?: string;
  type?: string;
  options?: string[];
  network?: boolean;
  after?: string[];
  wants?: string[];
  wantedBy?: string[];
  requiredBy?: string[];
  state?: 'mounted' | 'unmounted' | 'absent';
  enabled?: boolean;
  fstab?: boolean;
  deviceTimeout?: number | 'infinity';
}

export interface Mounted {
  readonly source: string;
  readonly fstype: string;
  readonly options: string;
}

export interface SystemdMountFacts {
  /** The unit file /etc/systemd/system/NAME (null: none). */
  readonly unitFile: string | null;
  readonly fstab: string | null;
  /** `systemctl show NAME` (service.ts's properties). */
  readonly service: ServiceFacts;
  /** What findmnt shows mounted at where (the top one), or null. */
  readonly mounted: Mounted | null;
  /** The mounted source's device node (readlink -e), null when it is not a device. */
  readonly mountedDevice: string | null;
  /** The device node `what` points to now (readlink -e), null when it does not exist. */
  readonly device: string | null;
  /** What blkid -p finds on that device. */
  readonly signature: Signature | null;
  /** The device-timeout drop-ins this module wrote for this mount (any device unit's), path -> content. */
  readonly dropins: Readonly<Record<string, string>>;
}

export const UNIT_DIR = '/etc/systemd/system';
export const FSTAB = '/etc/fstab';

/** The path as systemd keeps it: no duplicate or trailing slashes; `.` and `..` components are refused. */
export function normalizePath(path: string): string {
  if (!path.startsWith('/')) throw new Error(`${path} is not an absolute path`);
  const parts = path.split('/').filter((c) => c !== '');
  if (parts.some((c) => c === '.' || c === '..')) throw new Error(`${path} is not a normalized path (it has . or .. components)`);
  return `/${parts.join('/')}`;
}

/**
 * `systemd-escape --path`: slashes at both ends dropped, "/" -> "-", the root -> "-"; ASCII letters, digits,
 * ':', '_' and '.' are kept, except a '.' in first place; every other byte (of UTF-8) becomes \xNN.
 */
export function escapePath(path: string): string {
  const inner = normalizePath(path).slice(1);
  if (inner === '') return '-';
  let out = '';
  Buffer.from(inner, 'utf8').forEach((b, i) => {
    const c = String.fromCharCode(b);
    if (c === '/') out += '-';
    else if (b < 0x80 && /[A-Za-z0-9:_.]/.test(c) && !(i === 0 && c === '.')) out += c;
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  });
  return out;
}

/** The mount unit of a path (systemd-escape --path --suffix=mount). */
export function unitName(where: string): string {
  const name = `${escapePath(where)}.mount`;
  if (name.length > 255) throw new Error(`the unit name of ${where} would be ${name.length} characters (systemd allows 255)`);
  return name;
}

const TAGS: Record<string, string> = { UUID: 'by-uuid', LABEL: 'by-label', PARTUUID: 'by-partuuid', PARTLABEL: 'by-partlabel' };

/** The device path of `what`: UUID=x -> /dev/disk/by-uuid/x (the udev link), a path as it is. */
export function devicePath(what: string): string {
  const m = /^([A-Z]+)=(.+)$/.exec(what);
  const dir = m?.[1] === undefined ? undefined : TAGS[m[1]];
  return dir === undefined || m?.[2] === undefined ? what : `/dev/disk/${dir}/${m[2]}`;
}

/** The device unit systemd waits for before it mounts `what` (systemd-escape --path --suffix=device of its path). */
export function deviceUnit(what: string): string {
  return `${escapePath(devicePath(what))}.device`;
}

/** The drop-in that sets how long systemd waits for the device, named after the mount it is for. */
export function dropinPath(what: string, where: string): string {
  return `${UNIT_DIR}/${deviceUnit(what)}.d/sanbook-${unitName(where)}.conf`;
}

/** What fstab's x-systemd.device-timeout= makes systemd-fstab-generator write, for a unit file's mount. */
export function renderDropin(where: string, timeout: number | 'infinity'): string {
  return `# Managed by sanbook (systemd_mount module, for ${unitName(where)}): how long systemd waits for this device at boot.\n[Unit]\nJobRunningTimeoutSec=${timeout}\n`;
}

const waitText = (timeout: number | 'infinity'): string => (timeout === 'infinity' ? 'without limit' : `${timeout} s`);

interface Wanted {
  readonly where: string;
  readonly what: string;
  readonly type: string;
  readonly options: readonly string[];
  readonly after: readonly string[];
  readonly wants: readonly string[];
  readonly wantedBy: readonly string[];
  readonly requiredBy: readonly string[];
}

/** The task's settings with the defaults that depend on `network` filled in. */
export function wanted(p: SystemdMountParams): Wanted {
  const network = p.network !== false;
  if (p.what === undefined || p.type === undefined) throw new Error(`systemd_mount ${p.where}: what and type are required unless state is absent`);
  const options = p.options && p.options.length > 0 ? p.options : ['defaults'];
  return {
    where: normalizePath(p.where),
    what: p.what,
    type: p.type,
    options: network && !options.includes('_netdev') ? [...options, '_netdev'] : options,
    after: p.after ?? (network ? ['network-online.target', 'remote-fs-pre.target', 'iscsid.service'] : []),
    wants: p.wants ?? (network ? ['network-online.target'] : []),
    wantedBy: p.wantedBy ?? [network ? 'remote-fs.target' : 'local-fs.target'],
    requiredBy: p.requiredBy ?? [],
  };
}

const spec = (s: string): string => s.replace(/%/g, '%%');

/** The unit file. RequiredBy= units are also ordered Before= the mount (RequiredBy alone does not order them). */
export function renderUnit(w: Wanted): string {
  const opt = (key: string, values: readonly string[]) => (values.length > 0 ? [`${key}=${values.join(' ')}`] : []);
  return [
    '# Managed by sanbook (systemd_mount module): changes made here are overwritten.',
    '[Unit]',
    `Description=${spec(`${w.what} on ${w.where}`)}`,
    ...opt('After', w.after),
    ...opt('Wants', w.wants),
    ...opt('Before', w.requiredBy),
    '',
    '[Mount]',
    `What=${spec(devicePath(w.what))}`,
    `Where=${spec(w.where)}`,
    `Type=${w.type}`,
    `Options=${spec(w.options.join(','))}`,
    '',
    '[Install]',
    ...opt('WantedBy', w.wantedBy),
    ...opt('RequiredBy', w.requiredBy),
    '',
  ].join('\n');
}

const section = (text: string | null, name: string): string => {
  const m = text === null ? null : new RegExp(`^\\[${name}\\]\\n([^[]*)`, 'm').exec(text);
  return m?.[1]?.trim() ?? '';
};
const unitOptions = (text: string | null): string | null => (text === null ? null : (/^Options=(.*)$/m.exec(text)?.[1] ?? ''));
/** The options that reach mount(8): systemd's own (x-systemd.*, auto/noauto, nofail) left out. */
const mountOptions = (options: string | null): string | null =>
  options === null ? null : options.split(',').filter((o) => !/^(x-systemd\..*|auto|noauto|nofail)$/.test(o)).join(',');

// ---------------------------------------------------------------- /etc/fstab

const fstabEscape = (s: string): string => s.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
const fstabUnescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/** The fields of the first line of an fstab text that mounts on `where` (null: none). */
export function fstabFields(text: string | null, where: string): string[] | null {
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0]?.startsWith('#') || f[1] === undefined) continue;
    if (fstabUnescape(f[1]).replace(/(.)\/+$/, '$1') === where) return f;
  }
  return null;
}

/** The fstab text with `line` as the only line mounting on `where` (null: no such line). */
export function editFstab(text: string, where: string, line: string | null): string {
  let placed = false;
  const out: string[] = [];
  for (const l of text.split('\n')) {
    if (fstabFields(l, where) === null) out.push(l);
    else if (line !== null && !placed) {
      out.push(line);
      placed = true;
    }
  }
  let result = out.join('\n');
  if (line !== null && !placed) result = `${result}${result === '' || result.endsWith('\n') ? '' : '\n'}${line}\n`;
  return result;
}

/** The fstab line of the task: by UUID (or the tag given), _netdev for network storage; requiredBy as x-systemd options. */
export function fstabLine(p: SystemdMountParams, w: Wanted, f: SystemdMountFacts): string {
  const given = (['after', 'wants', 'wantedBy'] as const).filter((k) => p[k] !== undefined);
  if (given.length > 0) throw new Error(`systemd_mount ${w.where}: ${given.join(', ')} cannot be given with fstab: true (_netdev orders a network mount after the network and before remote-fs.target)`);
  let source = w.what;
  if (w.what.startsWith('/')) {
    if (!f.signature?.uuid) throw new Error(`systemd_mount ${w.where}: fstab lines name the filesystem by UUID, and ${w.what} has none now (${f.device === null ? 'it does not exist' : 'no filesystem'}): create it first, or give what: UUID=...`);
    source = `UUID=${f.signature.uuid}`;
  }
  const timeout = p.deviceTimeout === undefined ? [] : [`x-systemd.device-timeout=${p.deviceTimeout}`];
  const options = [...w.options, ...timeout, ...(p.enabled === false ? ['noauto'] : []), ...w.requiredBy.flatMap((u) => [`x-systemd.before=${u}`, `x-systemd.required-by=${u}`])];
  return `${fstabEscape(source)} ${fstabEscape(w.where)} ${w.type} ${options.join(',')} 0 ${/^ext[234]$/.test(w.type) ? 2 : 0}`;
}

// ---------------------------------------------------------------- plan

const ENABLED = ['enabled', 'enabled-runtime'];

export function planSystemdMount(p: SystemdMountParams, f: SystemdMountFacts): Change[] {
  const where = normalizePath(p.where);
  const name = unitName(where);
  const unitPath = `${UNIT_DIR}/${name}`;
  const state = p.state ?? 'mounted';
  const s = f.service;
  const systemctl = (verb: string) => exec(cmd('systemctl', verb, name));
  if (state !== 'absent' && (s.loadState === 'masked' || s.unitFileState === 'masked')) throw new Error(`${name} is masked: unmask it first`);
  const w = state === 'absent' ? null : wanted(p);
  const useUnit = w !== null && p.fstab !== true;
  const changes: Change[] = [];
  const mountedText = f.mounted ? `${f.mounted.source} (${f.mounted.fstype})` : '';
  if (state !== 'mounted' && f.mounted) {
    changes.push({ summary: `unmount ${where}: ${mountedText} (stop ${name}${p.requiredBy?.length ? `; ${p.requiredBy.join(', ')} stop too` : ''})`, steps: [systemctl('stop')] });
  }
  // Files: /etc/fstab, then the unit file; one daemon-reload after the last.
  const files: Change[] = [];
  const line = w !== null && !useUnit ? fstabLine(p, w, f) : null;
  const newFstab = f.fstab === null ? (line === null ? null : `${line}\n`) : editFstab(f.fstab, where, line);
  if (newFstab !== null && newFstab !== f.fstab) {
    const had = fstabFields(f.fstab, where) !== null;
    const what = line === null ? `remove the ${FSTAB} line of ${where}${useUnit ? ` (the unit ${name} replaces it)` : ''}` : `${had ? 'update' : 'add'} the ${FSTAB} line of ${where}`;
    files.push({ summary: what, steps: [put(FSTAB, newFstab, { mode: 0o644 })], diff: { label: FSTAB, before: f.fstab ?? '', after: newFstab } });
  }
  const text = useUnit && w !== null ? renderUnit(w) : null;
  if (text !== null && f.unitFile !== text) {
    files.push({ summary: `${f.unitFile === null ? 'create' : 'update'} ${unitPath}`, steps: [put(unitPath, text, { mode: 0o644, owner: 'root', group: 'root' })], diff: { label: unitPath, before: f.unitFile ?? '', after: text } });
  }
  // The device timeout of a unit file's mount: a drop-in of the device unit; the fstab form has it in the line.
  const dropin = useUnit && w !== null && p.deviceTimeout !== undefined ? { path: dropinPath(w.what, where), text: renderDropin(where, p.deviceTimeout), what: w.what, timeout: p.deviceTimeout } : null;
  for (const [path, old] of Object.entries(f.dropins)) {
    if (path === dropin?.path) continue;
    files.push({ summary: `remove ${path} (the device timeout of ${name}${dropin ? `; ${deviceUnit(dropin.what)} takes it now` : ''})`, steps: [exec(cmd('rm', '-f', '--', path))], diff: { label: path, before: old, after: '' } });
  }
  if (dropin !== null && f.dropins[dropin.path] !== dropin.text) {
    const had = f.dropins[dropin.path] !== undefined;
    files.push({
      summary: `${had ? 'update' : 'create'} ${dropin.path}: systemd waits ${waitText(dropin.timeout)} for ${devicePath(dropin.what)} at boot`,
      steps: [mkdirFor(dropin.path), put(dropin.path, dropin.text, { mode: 0o644, owner: 'root', group: 'root' })],
      diff: { label: dropin.path, before: f.dropins[dropin.path] ?? '', after: dropin.text },
    });
  }
  if (text === null && f.unitFile !== null) {
    const disable = ENABLED.includes(s.unitFileState) ? [systemctl('disable')] : [];
    files.push({ summary: `${disable.length > 0 ? 'disable and ' : ''}remove ${unitPath}${w !== null ? ` (the ${FSTAB} line replaces it)` : ''}`, steps: [...disable, exec(cmd('rm', '-f', '--', unitPath))] });
  }
  const reload = exec(cmd('systemctl', 'daemon-reload'));
  const last = files.pop();
  if (last) changes.push(...files, { ...last, summary: `${last.summary}; daemon-reload`, steps: [...last.steps, reload] });
  else if (state !== 'absent' && (s.needDaemonReload || (f.unitFile !== null && s.loadState === 'not-found'))) {
    changes.push({ summary: `reload systemd unit files (${name} changed on disk)`, steps: [reload] });
  }
  if (w === null) return changes;
  if (useUnit && text !== null) {
    const installChanged = f.unitFile === null || section(f.unitFile, 'Install') !== section(text, 'Install');
    const isEnabled = ENABLED.includes(s.unitFileState);
    if (p.enabled !== false && (!isEnabled || installChanged)) {
      const verb = isEnabled ? 'reenable' : 'enable';
      changes.push({ summary: `${verb} ${name} (${w.wantedBy.concat(w.requiredBy).join(', ') || 'no [Install] target'}${isEnabled ? ': its [Install] section changed' : ''})`, steps: [systemctl(verb)] });
    }
    if (p.enabled === false && isEnabled) changes.push({ summary: `disable ${name}`, steps: [systemctl('disable')] });
  }
  if (state === 'mounted') changes.push(...planMounted(w, f, name, line, p.deviceTimeout));
  return changes;
}

function planMounted(w: Wanted, f: SystemdMountFacts, name: string, line: string | null, timeout: number | 'infinity' | undefined): Change[] {
  const start = exec(cmd('systemctl', 'start', name));
  const target = `${w.what}${f.device !== null && f.device !== w.what ? ` (${f.device})` : ''}`;
  if (!f.mounted) {
    const sig = f.signature;
    const note =
      f.device === null
        ? `; ${w.what} does not exist now: systemd waits for it (${waitText(timeout ?? 90)})${timeout === 'infinity' ? '' : ' and fails'}`
        : sig?.type !== w.type
          ? `; ${f.device} holds ${sig ? describeSignature(sig) : 'no filesystem'} now, not ${w.type}`
          : '';
    return [{ summary: `mount ${target} on ${w.where} (start ${name})${note}`, steps: [start] }];
  }
  const m = f.mounted;
  if (f.device === null) throw new Error(`${w.what} does not exist, and ${w.where} has ${m.source} (${m.fstype}) mounted: left as it is`);
  if (f.mountedDevice !== f.device || m.fstype !== w.type) {
    const cut = `unmounting it cuts off whoever uses it${w.requiredBy.length > 0 ? ` and stops ${w.requiredBy.join(', ')}` : ''}`;
    const steps: Step[] = [exec(cmd('systemctl', 'stop', name)), start];
    return [
      {
        summary: `remount ${w.where}: ${m.source} (${m.fstype}) is mounted there, not ${target} (${w.type}): stop ${name}, then start it`,
        steps,
        destructive: `${w.where} has ${m.source} (${m.fstype}) mounted, not ${w.what} (${w.type}): ${cut}`,
      },
    ];
  }
  // The right filesystem: new options take a remount (systemctl reload = mount -o remount). It was mounted with
  // the unit file's options when there is one (it takes precedence over fstab), else with the fstab line's.
  const before = mountOptions(f.unitFile !== null ? unitOptions(f.unitFile) : (fstabFields(f.fstab, w.where)?.[3] ?? null));
  const after = mountOptions(line !== null ? (line.split(' ')[3] ?? '') : spec(w.options.join(',')));
  if (before !== null && before !== after) return [{ summary: `remount ${w.where} with ${after ?? ''} (was ${before}): systemctl reload ${name}`, steps: [exec(cmd('systemctl', 'reload', name))] }];
  return [];
}
