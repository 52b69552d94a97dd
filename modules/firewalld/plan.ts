/**
 * The firewalld module's plan. Each item the task lists is compared with the zone in each plane:
 *
 * - daemon running: the runtime (firewall-cmd --zone=Z ...) and the permanent configuration
 *   (firewall-cmd --permanent --zone=Z ...) are changed alike, each where it differs, so nothing waits for a
 *   reload and a reload loses nothing;
 * - daemon stopped: the permanent configuration is changed with firewall-offline-cmd, then (running: true)
 *   `systemctl enable --now firewalld`, whose runtime loads it: no runtime command is needed.
 *
 * Interfaces and sources are bound with --change-interface / --change-source, which add the binding or move
 * it from the zone that held it (--add-* would fail with ZONE_CONFLICT): the summary says it moves.
 * Opening comes before closing, services and ports before bindings, so a move never lands in a zone that
 * does not let the traffic in yet.
 */
import { isIP } from 'node:net';
import { cmd } from '../../lib/command.ts';
import { exec, type Change } from '../../lib/module.ts';
import type { FirewalldFacts, FirewalldParams, PlaneFacts } from './gather.ts';
import type { ZoneInfo } from './parse.ts';
import { planPorts } from './plan-ports.ts';
import { parsePort } from './ports.ts';
import { itemsOf, summarize, zoneCommand, type Plane, type PlanContext, type PlaneName, type Wording } from './steps.ts';

type Kind = 'service' | 'source' | 'interface';

interface KindRules {
  readonly have: (z: ZoneInfo) => readonly string[];
  readonly add: string;
  readonly remove: string;
  readonly adding: Omit<Wording, 'adding'>;
  readonly removing: Omit<Wording, 'adding'>;
}

const KINDS: Record<Kind, KindRules> = {
  service: {
    have: (z) => z.services,
    add: '--add-service',
    remove: '--remove-service',
    adding: { verb: 'allow', noun: ['service', 'services'], nounInline: true, prep: 'in' },
    removing: { verb: 'remove', noun: ['service', 'services'], nounInline: true, prep: 'from' },
  },
  source: {
    have: (z) => z.sources,
    add: '--change-source',
    remove: '--remove-source',
    adding: { verb: 'bind', noun: ['source', 'sources'], nounInline: true, prep: 'to' },
    removing: { verb: 'unbind', noun: ['source', 'sources'], nounInline: true, prep: 'from' },
  },
  interface: {
    have: (z) => z.interfaces,
    add: '--change-interface',
    remove: '--remove-interface',
    adding: { verb: 'bind', noun: ['interface', 'interfaces'], nounInline: true, prep: 'to' },
    removing: { verb: 'unbind', noun: ['interface', 'interfaces'], nounInline: true, prep: 'from' },
  },
};

/** The zone of one plane, or an error naming the zone and the zones that exist. */
function zoneIn(name: PlaneName, plane: PlaneFacts, zone: string, other: PlaneFacts | null, offline: boolean): ZoneInfo {
  if (plane.zone) {
    if (plane.zone.name !== zone) throw new Error(`firewalld listed zone ${plane.zone.name} when asked for zone ${zone} (${name})`);
    return plane.zone;
  }
  if (name === 'runtime' && other?.zone) {
    throw new Error(`zone ${zone} exists in the permanent configuration only: \`firewall-cmd --reload\` loads it (this module never reloads: a reload drops what only the runtime holds)`);
  }
  const tool = offline ? 'firewall-offline-cmd' : name === 'runtime' ? 'firewall-cmd' : 'firewall-cmd --permanent';
  throw new Error(`zone ${zone} does not exist (${tool} --get-zones: ${(plane.zones ?? []).join(', ') || 'none'})`);
}

/** What the task asks that no pattern could check: real addresses, ordered ranges, one mode. */
function checkParams(p: FirewalldParams): void {
  if (p.exact && p.state === 'absent') throw new Error('firewalld: exact: true goes with state: present (state: absent only removes the listed items)');
  for (const s of p.sources ?? []) {
    const [address = '', mask, ...more] = s.split('/');
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    if (family === 0 || more.length > 0 || (mask !== undefined && !(/^\d{1,3}$/.test(mask) && Number(mask) <= bits))) {
      throw new Error(`source ${s} is not an IPv4 or IPv6 address or network (ADDRESS or ADDRESS/PREFIX)`);
    }
  }
}

function checkServices(p: FirewalldParams, planes: readonly Plane[]): void {
  if (p.state === 'absent') return;
  for (const plane of planes) {
    const known = plane.facts.knownServices;
    const unknown = known ? (p.services ?? []).filter((s) => !known.includes(s)) : [];
    if (unknown.length > 0) {
      throw new Error(
        `firewalld does not know the service${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (${plane.tool.join(' ')} --get-services); define it, or open its ports instead`,
      );
    }
  }
}

/** Where an interface or source is bound outside the zone, per plane: "moves from zone internal". */
function moves(kind: Kind, planes: readonly Plane[], zone: string, label: string): string | undefined {
  if (kind === 'service') return undefined;
  const from = planes.flatMap((pl) => {
    const z = (kind === 'interface' ? pl.facts.interfaceZones : pl.facts.sourceZones)[label];
    return z && z !== zone ? [{ plane: pl.name, zone: z }] : [];
  });
  if (from.length === 0) return undefined;
  const zones = [...new Set(from.map((f) => f.zone))];
  return zones.length === 1 ? `moves from zone ${zones[0]}` : `moves from ${from.map((f) => `zone ${f.zone} (${f.plane})`).join(' and ')}`;
}

function planKind(kind: Kind, wanted: readonly string[] | undefined, p: FirewalldParams, planes: readonly Plane[], ctx: PlanContext) {
  if (wanted === undefined) return { add: null, remove: null };
  const rules = KINDS[kind];
  const absent = p.state === 'absent';
  const adds = new Map<PlaneName, string[]>();
  const removes = new Map<PlaneName, string[]>();
  for (const plane of planes) {
    const have = rules.have(plane.zone);
    const add = absent ? [] : wanted.filter((x) => !have.includes(x));
    const remove = absent ? wanted.filter((x) => have.includes(x)) : p.exact ? have.filter((x) => !wanted.includes(x)) : [];
    if (add.length > 0) adds.set(plane.name, add);
    if (remove.length > 0) removes.set(plane.name, remove);
  }
  const change = (lists: Map<PlaneName, string[]>, option: string, wording: Wording, extra?: (label: string) => string | undefined): Change | null =>
    lists.size === 0
      ? null
      : {
          summary: summarize(wording, itemsOf(lists, extra), ctx),
          steps: planes.flatMap((pl) => {
            const items = lists.get(pl.name);
            return items ? [exec(zoneCommand(pl, ctx.zone, option, items))] : [];
          }),
        };
  return {
    add: change(adds, rules.add, { ...rules.adding, adding: true }, (label) => moves(kind, planes, ctx.zone, label)),
    remove: change(removes, rules.remove, { ...rules.removing, adding: false }),
  };
}

/** firewalld.service enabled and started (running: true). */
function planUnit(p: FirewalldParams, f: FirewalldFacts, zone: string, changedPermanent: boolean): Change[] {
  if (p.running === false) return [];
  const s = f.service;
  if (s.loadState === 'masked' || s.unitFileState === 'masked') {
    throw new Error('firewalld.service is masked: unmask it first (service module, masked: false), or set running: false');
  }
  if (s.loadState === 'not-found') throw new Error('firewall-cmd is installed but systemd knows no firewalld.service: reinstall the firewalld package');
  const disabled = s.unitFileState === 'disabled' || s.unitFileState === '';
  if (!f.running) {
    const then = changedPermanent ? 'with the changes above, so they need no runtime command' : 'which has all the task asks';
    return [
      {
        summary: `${disabled ? 'enable and start' : 'start'} firewalld (${s.activeState || 'stopped'}): its runtime loads the permanent configuration of zone ${zone}, ${then}`,
        steps: [exec(disabled ? cmd('systemctl', 'enable', '--now', 'firewalld') : cmd('systemctl', 'start', 'firewalld'))],
      },
    ];
  }
  return disabled ? [{ summary: 'enable firewalld (it runs, but would not start at boot)', steps: [exec(cmd('systemctl', 'enable', 'firewalld'))] }] : [];
}

export function planFirewalld(p: FirewalldParams, f: FirewalldFacts): Change[] {
  checkParams(p);
  const wantedPorts = (p.ports ?? []).map(parsePort);
  const zone = p.zone ?? f.defaultZone;
  const offline = f.runtime === null;
  const planes: Plane[] = [];
  if (f.runtime) planes.push({ name: 'runtime', zone: zoneIn('runtime', f.runtime, zone, f.permanent, false), facts: f.runtime, tool: ['firewall-cmd'] });
  planes.push({
    name: 'permanent',
    zone: zoneIn('permanent', f.permanent, zone, f.runtime, offline),
    facts: f.permanent,
    tool: offline ? ['firewall-offline-cmd'] : ['firewall-cmd', '--permanent'],
  });
  checkServices(p, planes);
  const ctx: PlanContext = { zone, offline, starts: p.running !== false };
  const ports = p.ports === undefined ? { open: null, close: null } : planPorts(planes, wantedPorts, p.state === 'absent', p.exact === true, ctx);
  const services = planKind('service', p.services, p, planes, ctx);
  const sources = planKind('source', p.sources, p, planes, ctx);
  const interfaces = planKind('interface', p.interfaces, p, planes, ctx);
  const changes = [services.add, ports.open, sources.add, interfaces.add, interfaces.remove, sources.remove, ports.close, services.remove].filter(
    (c): c is Change => c !== null,
  );
  return [...changes, ...planUnit(p, f, zone, offline && changes.length > 0)];
}
