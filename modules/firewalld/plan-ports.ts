/**
 * The ports of a zone, planned by coverage (see ports.ts): what to open is the part of the asked ports that
 * no entry covers, what to close the part that an entry covers. Both are sets of disjoint ranges, so a call
 * never meets ALREADY_ENABLED.
 *
 * Closing part of an entry differs by tool. The daemon (firewall-cmd, both planes) splits a range when asked
 * to remove a range inside it (breakPortRange): the plan removes, for each entry, its part to close. firewall-
 * offline-cmd only removes an entry as written: the plan removes the entry, then adds back what stays open.
 */
import type { Change } from '../../lib/module.ts';
import { exec } from '../../lib/module.ts';
import { formatPort, intersect, normalize, overlaps, subtract, tryParsePort, type PortRange } from './ports.ts';
import { itemsOf, summarize, zoneCommand, type Plane, type PlanContext, type PlaneName } from './steps.ts';

interface Entry {
  readonly text: string;
  readonly range: PortRange | null;
}

interface PortDelta {
  readonly plane: Plane;
  readonly open: PortRange[];
  readonly close: PortRange[];
  /** Entries that are not PORT/PROTOCOL (a port by service name, written offline): closed as written (exact). */
  readonly closeText: string[];
}

const entriesOf = (plane: Plane): Entry[] => plane.zone.ports.map((text) => ({ text, range: tryParsePort(text) }));
const rangesOf = (entries: readonly Entry[]): PortRange[] => normalize(entries.flatMap((e) => (e.range ? [e.range] : [])));

function delta(plane: Plane, wanted: readonly PortRange[], absent: boolean, exact: boolean): PortDelta {
  const entries = entriesOf(plane);
  const have = rangesOf(entries);
  if (absent) return { plane, open: [], close: intersect(wanted, have), closeText: [] };
  return {
    plane,
    open: subtract(wanted, have),
    close: exact ? subtract(have, wanted) : [],
    closeText: exact ? entries.filter((e) => e.range === null).map((e) => e.text) : [],
  };
}

/** The items of the summary: the ports acted on in both planes, then in one plane only. */
function items(deltas: readonly PortDelta[], pick: (d: PortDelta) => PortRange[], text: (d: PortDelta) => string[]) {
  const [a, b] = deltas;
  const perPlane = new Map<PlaneName, string[]>();
  if (a && b) {
    const both = intersect(pick(a), pick(b));
    perPlane.set(a.plane.name, [...intersect(pick(a), both), ...subtract(pick(a), both)].map(formatPort).concat(text(a)));
    perPlane.set(b.plane.name, [...intersect(pick(b), both), ...subtract(pick(b), both)].map(formatPort).concat(text(b)));
  } else if (a) {
    perPlane.set(a.plane.name, pick(a).map(formatPort).concat(text(a)));
  }
  return itemsOf(perPlane);
}

/** The commands that close ports in one plane. */
function closeCommands(d: PortDelta, zone: string, offline: boolean) {
  const entries = entriesOf(d.plane);
  if (!offline) {
    const pieces = entries.flatMap((e) => (e.range && overlaps(e.range, d.close) ? intersect([e.range], d.close).map(formatPort) : []));
    return [zoneCommand(d.plane, zone, '--remove-port', [...new Set([...pieces, ...d.closeText])])];
  }
  const hit = entries.filter((e) => e.range !== null && overlaps(e.range, d.close));
  const kept = entries.filter((e) => e.range !== null && !hit.includes(e));
  const back = subtract(subtract(rangesOf(hit), d.close), rangesOf(kept));
  return [
    zoneCommand(d.plane, zone, '--remove-port', [...hit.map((e) => e.text), ...d.closeText]),
    ...(back.length > 0 ? [zoneCommand(d.plane, zone, '--add-port', back.map(formatPort))] : []),
  ];
}

export interface PortChanges {
  readonly open: Change | null;
  readonly close: Change | null;
}

export function planPorts(planes: readonly Plane[], wanted: readonly PortRange[], absent: boolean, exact: boolean, ctx: PlanContext): PortChanges {
  const deltas = planes.map((p) => delta(p, normalize(wanted), absent, exact));
  const opening = deltas.filter((d) => d.open.length > 0);
  const closing = deltas.filter((d) => d.close.length > 0 || d.closeText.length > 0);
  const open: Change | null =
    opening.length === 0
      ? null
      : {
          summary: summarize({ verb: 'open', noun: ['port', 'ports'], nounInline: false, prep: 'in', adding: true }, items(deltas, (d) => d.open, () => []), ctx),
          steps: opening.map((d) => exec(zoneCommand(d.plane, ctx.zone, '--add-port', d.open.map(formatPort)))),
        };
  const close: Change | null =
    closing.length === 0
      ? null
      : {
          summary: summarize({ verb: 'close', noun: ['port', 'ports'], nounInline: false, prep: 'in', adding: false }, items(deltas, (d) => d.close, (d) => d.closeText), ctx),
          steps: closing.flatMap((d) => closeCommands(d, ctx.zone, ctx.offline).map(exec)),
        };
  return { open, close };
}
