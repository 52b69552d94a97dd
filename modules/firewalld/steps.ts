/**
 * What the firewalld plan is made of: the planes it changes, the firewall-cmd commands (one per plane and per
 * kind of option: firewall-cmd 1.3.3 acts on ONE kind of option per call, an if/elif chain, so
 * `--add-port=A --add-service=B` would silently drop B), and the summaries in words.
 */
import { Command, cmd, sh } from '../../lib/command.ts';
import type { PlaneFacts } from './gather.ts';
import type { ZoneInfo } from './parse.ts';

export type PlaneName = 'runtime' | 'permanent';

/** A plane the plan changes: its zone as gathered, and the argv prefix of the tool that changes it. */
export interface Plane {
  readonly name: PlaneName;
  readonly zone: ZoneInfo;
  readonly facts: PlaneFacts;
  /** firewall-cmd | firewall-cmd --permanent | firewall-offline-cmd */
  readonly tool: readonly string[];
}

/** How the permanent plane is changed when firewalld is stopped, and what happens next (in the summaries). */
export interface PlanContext {
  readonly zone: string;
  /** firewalld is stopped: the permanent plane is changed with firewall-offline-cmd, there is no runtime. */
  readonly offline: boolean;
  /** The task starts firewalld (running: true): the runtime then loads the permanent configuration. */
  readonly starts: boolean;
}

/** firewalld's error codes that mean "already so": a race, never a failure. */
const BENIGN = ['ALREADY_ENABLED', 'NOT_ENABLED', 'ZONE_ALREADY_SET', 'ALREADY_SET'];

/**
 * A firewall-cmd / firewall-offline-cmd call that fails when any of its items failed. Given several items,
 * firewall-cmd prints "Warning: CODE: ..." for an item that failed and exits 0 when another one worked
 * (command.py, __cmd_sequence). The step fails on such a warning unless the code is one of BENIGN.
 */
export function firewallCommand(argv: readonly string[]): Command {
  const [program = 'firewall-cmd', ...args] = argv;
  const run = cmd(program, ...args);
  const script = sh`out=$(${run} 2>&1); rc=$?
bad=$(printf '%s\\n' "$out" | grep -e '^Warning: ' -e '^Error: ' | grep -v ${BENIGN.flatMap((b) => ['-e', b])})
if [ "$rc" -eq 0 ] && [ -z "$bad" ]; then printf '%s\\n' "$out"; exit 0; fi
printf '%s\\n' "$out" >&2
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
exit 1`;
  return new Command(script.script, run.display);
}

/** `TOOL --zone=Z OPTION=ITEM...` for one plane. */
export function zoneCommand(plane: Plane, zone: string, option: string, items: readonly string[]): Command {
  return firewallCommand([...plane.tool, `--zone=${zone}`, ...items.map((i) => `${option}=${i}`)]);
}

/** One thing the summary names, the planes it is done in, and what else to say of it. */
export interface Item {
  readonly label: string;
  readonly planes: readonly PlaneName[];
  /** "moves from zone internal" */
  readonly extra?: string;
}

/** Items by label across planes: `perPlane` holds, per plane, the labels acted on there (in order). */
export function itemsOf(perPlane: ReadonlyMap<PlaneName, readonly string[]>, extra?: (label: string) => string | undefined): Item[] {
  const planes = new Map<string, PlaneName[]>();
  for (const [plane, labels] of perPlane) {
    for (const label of labels) planes.set(label, [...(planes.get(label) ?? []), plane]);
  }
  return [...planes].map(([label, ps]) => {
    const e = extra?.(label);
    return { label, planes: ps, ...(e ? { extra: e } : {}) };
  });
}

function note(planes: readonly PlaneName[], ctx: PlanContext, adding: boolean, n: number): string {
  if (ctx.offline) {
    return ctx.starts
      ? 'permanent, with firewall-offline-cmd: firewalld is stopped; its runtime loads this when it starts'
      : 'permanent only, with firewall-offline-cmd: firewalld is stopped and running is false';
  }
  if (planes.length > 1) return 'runtime and permanent';
  const it = n > 1 ? 'them' : 'it';
  return planes[0] === 'runtime'
    ? `runtime only: the permanent configuration ${adding ? 'has' : 'does not have'} ${it}`
    : `permanent only: runtime ${adding ? 'has' : 'does not have'} ${it}`;
}

const joined = (xs: readonly string[]): string => (xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

export interface Wording {
  /** open, close, allow, remove, bind, unbind */
  readonly verb: string;
  /** [singular, plural] */
  readonly noun: readonly [string, string];
  /** Whether the noun is said when the items are listed inline ("allow service ssh"; ports: "open 3260/tcp"). */
  readonly nounInline: boolean;
  /** in, to, from */
  readonly prep: string;
  readonly adding: boolean;
}

/**
 * "open 3260/tcp and 9425/tcp in zone public (runtime and permanent)", or, when the items differ in their
 * planes or have more to say, "open ports in zone public: 9419-9421/tcp (runtime only: ...), 9425/tcp (...)".
 */
export function summarize(w: Wording, items: readonly Item[], ctx: PlanContext): string {
  const where = `${w.prep} zone ${ctx.zone}`;
  const key = (i: Item) => i.planes.join('+');
  const uniform = items.every((i) => key(i) === key(items[0] as Item) && (items.length === 1 || i.extra === undefined));
  if (uniform && items[0]) {
    const noun = w.nounInline ? `${w.noun[items.length > 1 ? 1 : 0]} ` : '';
    const extra = items.length === 1 && items[0].extra ? `; ${items[0].extra}` : '';
    return `${w.verb} ${noun}${joined(items.map((i) => i.label))} ${where} (${note(items[0].planes, ctx, w.adding, items.length)}${extra})`;
  }
  const each = items.map((i) => `${i.label} (${note(i.planes, ctx, w.adding, 1)}${i.extra ? `; ${i.extra}` : ''})`);
  return `${w.verb} ${w.noun[1]} ${where}: ${each.join(', ')}`;
}
