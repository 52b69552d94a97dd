/**
 * service: a systemd unit started or stopped, enabled or not, masked or not; restarted/reloaded on demand.
 *
 * gather is one `systemctl show -p ...` (KEY=VALUE lines). A unit that does not exist is a clear error from
 * gather ("unit X not found on HOST"), unless daemonReload is asked (a unit file written by an earlier task
 * is only known to systemd after daemon-reload).
 *
 * restarted and reloaded are actions (planned every time they are asked); everything else converges.
 */
import { cmd } from '../lib/command.ts';
import { defineModule, exec, type Change } from '../lib/module.ts';

export type ServiceState = 'started' | 'stopped' | 'restarted' | 'reloaded';

export interface ServiceParams {
  name: string;
  state?: ServiceState;
  enabled?: boolean;
  daemonReload?: boolean;
  masked?: boolean;
}

export interface ServiceFacts {
  /** The unit's full name (nginx -> nginx.service). */
  readonly id: string;
  /** loaded, not-found, masked, bad-setting, error */
  readonly loadState: string;
  /** active, inactive, failed, activating, deactivating, reloading */
  readonly activeState: string;
  readonly subState: string;
  /** enabled, disabled, static, masked, indirect, generated, ... ('' when unknown) */
  readonly unitFileState: string;
  readonly canReload: boolean;
  readonly needDaemonReload: boolean;
}

export const SHOW_PROPERTIES = ['Id', 'LoadState', 'ActiveState', 'SubState', 'UnitFileState', 'CanReload', 'NeedDaemonReload'] as const;

export function showCommand(name: string) {
  return cmd('systemctl', 'show', `--property=${SHOW_PROPERTIES.join(',')}`, name);
}

/** Parse `systemctl show -p ...` output (KEY=VALUE per line, in any order). */
export function parseSystemctlShow(stdout: string, name: string): ServiceFacts {
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return {
    id: kv.get('Id') || name,
    loadState: kv.get('LoadState') ?? '',
    activeState: kv.get('ActiveState') ?? '',
    subState: kv.get('SubState') ?? '',
    unitFileState: kv.get('UnitFileState') ?? '',
    canReload: kv.get('CanReload') === 'yes',
    needDaemonReload: kv.get('NeedDaemonReload') === 'yes',
  };
}

const RUNNING = ['active', 'reloading', 'activating'];
const STOPPABLE = ['active', 'reloading', 'activating', 'deactivating'];

function isMasked(f: ServiceFacts): boolean {
  return f.loadState === 'masked' || f.unitFileState === 'masked' || f.unitFileState === 'masked-runtime';
}

export function planService(p: ServiceParams, f: ServiceFacts): Change[] {
  const unit = f.id || p.name;
  const run = (verb: string, ...args: string[]) => exec(cmd('systemctl', verb, ...args, p.name));
  const wantsRunning = p.state === 'started' || p.state === 'restarted' || p.state === 'reloaded';
  if (p.masked === true && (wantsRunning || p.enabled === true)) {
    throw new Error(`${unit}: masked: true conflicts with state: ${p.state ?? '-'} / enabled: ${String(p.enabled)}`);
  }
  const masked = isMasked(f);
  if (masked && p.masked !== false && (wantsRunning || p.enabled === true)) {
    throw new Error(`${unit} is masked: set masked: false to unmask it first`);
  }
  const changes: Change[] = [];
  if (p.daemonReload && (f.needDaemonReload || f.loadState === 'not-found')) {
    changes.push({ summary: `reload systemd unit files (for ${unit})`, steps: [exec(cmd('systemctl', 'daemon-reload'))] });
  }
  if (p.masked === false && masked) changes.push({ summary: `unmask ${unit}`, steps: [run('unmask')] });
  if (p.enabled === true && (f.unitFileState === 'disabled' || f.unitFileState === '' || (masked && p.masked === false))) {
    changes.push({ summary: `enable ${unit}`, steps: [run('enable')] });
  }
  if (p.enabled === false && (f.unitFileState === 'enabled' || f.unitFileState === 'enabled-runtime')) {
    const runtime = f.unitFileState === 'enabled-runtime' ? ['--runtime'] : [];
    changes.push({ summary: `disable ${unit}`, steps: [run('disable', ...runtime)] });
  }
  const running = RUNNING.includes(f.activeState);
  switch (p.state) {
    case 'started':
      if (!running) changes.push({ summary: `start ${unit} (${f.activeState || 'unknown'})`, steps: [run('start')] });
      break;
    case 'stopped':
      if (STOPPABLE.includes(f.activeState)) changes.push({ summary: `stop ${unit}`, steps: [run('stop')] });
      break;
    case 'restarted':
      changes.push({ summary: running ? `restart ${unit}` : `start ${unit} (restart asked; it was ${f.activeState || 'unknown'})`, steps: [run('restart')], action: true });
      break;
    case 'reloaded':
      if (!running) changes.push({ summary: `start ${unit} (reload asked; it was ${f.activeState || 'unknown'})`, steps: [run('start')] });
      else if (f.canReload) changes.push({ summary: `reload ${unit}`, steps: [run('reload')], action: true });
      else throw new Error(`${unit} cannot reload (CanReload=no): use state: restarted`);
      break;
    case undefined:
      break;
  }
  if (p.masked === true && !masked) changes.push({ summary: `mask ${unit}`, steps: [run('mask')] });
  return changes;
}

export const service = defineModule<ServiceParams, ServiceFacts>({
  name: 'service',
  description: 'A systemd unit started/stopped, enabled/disabled, masked/unmasked; restarted or reloaded on demand.',
  examples: [
    { title: 'A service running and enabled at boot', params: { name: 'iscsid', state: 'started', enabled: true } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: {
        type: 'string',
        pattern: '^[A-Za-z0-9:_.\\\\@][A-Za-z0-9:_.\\\\@-]*$',
        description: 'Unit name (nginx, nginx.service, iscsid.socket, getty@tty1.service).',
      },
      state: {
        enum: ['started', 'stopped', 'restarted', 'reloaded'],
        description:
          'started/stopped converge; restarted and reloaded run every time they are asked (actions; a stopped unit is started instead).',
      },
      enabled: { type: 'boolean', description: 'Start at boot (systemctl enable) or not (disable). Static units are left as they are.' },
      daemonReload: {
        type: 'boolean',
        default: false,
        description: 'Run systemctl daemon-reload first when systemd says the unit files changed (or the unit is not loaded yet).',
      },
      masked: { type: 'boolean', description: 'Mask the unit (it can then not be started) or unmask it.' },
    },
  },
  readAhead: true,
  async gather(conn, params, ctx) {
    if (!ctx.facts.systemd) throw new Error(`service ${params.name}: systemd is not running on ${ctx.host}`);
    const r = await conn.exec(showCommand(params.name));
    if (r.exitCode !== 0) throw new Error(`systemctl show ${params.name} failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    const facts = parseSystemctlShow(r.stdout, params.name);
    if (facts.loadState === 'not-found' && !params.daemonReload) {
      throw new Error(`unit ${facts.id} not found on ${ctx.host}`);
    }
    return facts;
  },
  plan: planService,
});
