/**
 * The inventory: hosts, groups and their variables, written as Ansible users write them (YAML, JSON, or a
 * TS/JS module's default export), validated so that every mistake is one UserError naming the file, the group
 * or host and the field, with each host's connection resolved into a typed ConnectionSpec.
 *
 * Variable precedence is Ansible's: `all` < parent groups < child groups (groups of the same depth in
 * alphabetical order, later wins) < host vars. Host order is the order of first appearance in the file.
 * Host patterns (`select`, `--limit`) are in patterns.ts, connection variables in inventory-vars.ts, file
 * reading in inventory-file.ts.
 */
import { combineErrors, UserError, type Where } from './errors.ts';
import { readInventoryFile } from './inventory-file.ts';
import {
  CONNECTION_KEYS,
  CONNECTION_SCHEMA,
  GROUP_SCHEMA,
  connPart,
  mergeConn,
  resolveConnection,
  type ConnectionSpec,
  type ConnPart,
} from './inventory-vars.ts';
import { didYouMean, expandHostRange, isValidGroupName, isValidHostName, selectHosts } from './patterns.ts';
import type { PatternTarget } from './patterns.ts';
import { validateSchema } from './schema.ts';

export type { ConnectionSpec, HostKeyChecking } from './inventory-vars.ts';

export interface InventoryHost {
  name: string;
  /** Merged by precedence; connection variables validated (passwords are Secrets). */
  vars: Readonly<Record<string, unknown>>;
  /** Every group containing the host, ancestors included, in precedence order ('all' first). */
  groups: readonly string[];
  connection: ConnectionSpec;
}

export interface InventoryGroup {
  name: string;
  /** The group's own vars (not inherited). */
  vars: Readonly<Record<string, unknown>>;
  /** Direct children. */
  children: readonly string[];
  /** Every host of the group, descendants included, in inventory order. */
  hosts: readonly string[];
}

// ---- building from the parsed object --------------------------------------------------------------------

interface Draft {
  vars: Record<string, unknown>;
  conn: ConnPart;
}
interface GroupDraft extends Draft {
  children: string[];
  parents: Set<string>;
}
interface HostDraft extends Draft {
  direct: Set<string>;
}

function kindOf(v: unknown): string {
  if (v === null || typeof v !== 'object') return v === null ? 'null' : typeof v;
  if (Array.isArray(v)) return 'a list';
  const ctor = (v as { constructor?: { name?: string } }).constructor?.name;
  return isMap(v) ? 'a map' : `an instance of ${ctor ?? 'a class'}`;
}

function isMap(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Assign without ever touching a prototype (a var may be called `__proto__`). */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** One field against a schema; the problem is placed at `where` + the field, without repeating its name. */
function checkField(schema: Readonly<Record<string, unknown>>, key: string, value: unknown, where: Where): unknown {
  // The schemas here only look at a map's or a list's type: an empty stand-in spares a deep copy (and a loop).
  const shallow = isMap(value) ? {} : Array.isArray(value) ? [] : value;
  try {
    const out = validateSchema<Record<string, unknown>>(schema, { [key]: shallow }, {});
    return shallow === value ? out[key] : value;
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    const detail = e.where.field === key && e.detail.startsWith(`${key} `) ? e.detail.slice(key.length + 1) : e.detail;
    throw new UserError(detail, { ...where, field: key });
  }
}

class Builder {
  readonly problems: UserError[] = [];
  readonly groups = new Map<string, GroupDraft>();
  readonly hosts = new Map<string, HostDraft>();
  readonly #walking = new Set<object>();

  problem(detail: string, where: Where): void {
    this.problems.push(new UserError(detail, where));
  }

  attempt(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      this.problems.push(e);
    }
  }

  group(name: string): GroupDraft {
    let g = this.groups.get(name);
    if (!g) {
      g = { vars: {}, conn: {}, children: [], parents: new Set() };
      this.groups.set(name, g);
    }
    return g;
  }

  /** Validate a vars block (connection vars typed, the rest free-form) and merge it into a draft. */
  vars(into: Draft, raw: Record<string, unknown>, where: Where): void {
    const block: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (!CONNECTION_KEYS.has(k)) setOwn(block, k, v);
      else this.attempt(() => setOwn(block, k, checkField(CONNECTION_SCHEMA, k, v, where)));
    }
    for (const [k, v] of Object.entries(block)) setOwn(into.vars, k, v);
    mergeConn(into.conn, connPart(block));
  }

  walkGroup(name: string, value: unknown, parent: string | undefined): void {
    if (!isValidGroupName(name)) {
      const where: Where = parent === undefined ? {} : { group: parent, field: 'children' };
      const rule = "letters, digits, '_' and '-'; not starting with a digit or '-'";
      return this.problem(`'${name}' is not a valid group name (${rule})`, where);
    }
    const g = this.group(name);
    if (parent !== undefined) {
      const p = this.group(parent);
      if (!p.children.includes(name)) p.children.push(name);
      g.parents.add(parent);
    }
    if (value === null || value === undefined) return;
    if (!isMap(value)) {
      return this.problem(`must be a map of hosts, vars and children (or empty), not ${kindOf(value)}`, { group: name });
    }
    if (this.#walking.has(value)) {
      return this.problem('its definition contains itself (an alias loop)', { group: name });
    }
    this.#walking.add(value);
    const parts: Partial<Record<'hosts' | 'vars' | 'children', Record<string, unknown>>> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === null || v === undefined) continue;
      if (k !== 'hosts' && k !== 'vars' && k !== 'children') {
        const hint = didYouMean(k, ['hosts', 'vars', 'children']);
        const more = hint
          ? `; did you mean '${hint}'?`
          : ' (a group holds only hosts, vars and children; variables go under vars)';
        this.problem(`is not a known field${more}`, { group: name, field: k });
      } else {
        this.attempt(() => (parts[k] = checkField(GROUP_SCHEMA, k, v, { group: name }) as Record<string, unknown>));
      }
    }
    if (parts.vars) this.vars(g, parts.vars, { group: name });
    for (const [key, hostValue] of Object.entries(parts.hosts ?? {})) this.walkHost(key, hostValue, name);
    for (const [child, childValue] of Object.entries(parts.children ?? {})) this.walkGroup(child, childValue, name);
    this.#walking.delete(value);
  }

  walkHost(key: string, value: unknown, group: string): void {
    let names: string[] = [];
    this.attempt(() => {
      try {
        names = expandHostRange(key);
      } catch (e) {
        throw e instanceof UserError ? e.at({ group, field: 'hosts' }) : e;
      }
    });
    for (const name of names) {
      if (!isValidHostName(name)) {
        const rule = "letters, digits, '.', '-' and '_'; an address can go in ansible_host";
        this.problem(`'${name}' is not a valid host name (${rule})`, { group, field: 'hosts' });
        continue;
      }
      let h = this.hosts.get(name);
      if (!h) {
        h = { vars: {}, conn: {}, direct: new Set() };
        this.hosts.set(name, h);
      }
      h.direct.add(group);
      if (value === null || value === undefined) continue;
      if (isMap(value)) this.vars(h, value, { host: name });
      else this.problem(`must be a map of variables (or empty), not ${kindOf(value)}`, { host: name });
    }
  }

  walkTop(data: unknown): void {
    if (!isMap(data)) {
      const got = data === null || data === undefined ? 'empty' : kindOf(data);
      const shape = 'such as all: { hosts: ..., vars: ..., children: ... }';
      return this.problem(`an inventory is a map of groups, ${shape}; this one is ${got}`, {});
    }
    this.group('all');
    for (const [name, value] of Object.entries(data)) {
      if (name === 'all') this.walkGroup('all', value, undefined);
      else if (name === 'hosts' || name === 'vars' || name === 'children') {
        this.problem(`top-level '${name}' must be inside a group, such as all: { ${name}: ... }`, {});
      } else this.walkGroup(name, value, 'all');
    }
    // Ansible's implicit group of the hosts that are in no other group.
    if (!this.group('all').children.includes('ungrouped')) this.walkGroup('ungrouped', null, 'all');
  }

  /** Names shared by a host and a group, and cycles among children. */
  checkGraph(): void {
    // A host may share its name with a group only when it is in that group (`master: {hosts: {master:}}`,
    // as seed 000 names its MooseFS master): the name then means the same hosts either way.
    for (const [name, host] of this.hosts) {
      if (this.groups.has(name) && !host.direct.has(name)) {
        this.problem('is also the name of a group it is not in; a name shared by a host and a group must mean the same hosts', { host: name });
      }
    }
    const state = new Map<string, 'open' | 'done'>();
    const visit = (name: string, path: string[]): void => {
      state.set(name, 'open');
      for (const child of this.groups.get(name)?.children ?? []) {
        if (state.get(child) === 'open') {
          const stack = [...path, name];
          const cycle = [...stack.slice(stack.indexOf(child)), child].join(' -> ');
          this.problem(`cycle among groups: ${cycle}`, { group: name, field: 'children' });
        } else if (!state.has(child)) visit(child, [...path, name]);
      }
      state.set(name, 'done');
    };
    for (const name of this.groups.keys()) if (!state.has(name)) visit(name, []);
  }
}

// ---- the inventory ----------------------------------------------------------------------------------------

export class Inventory {
  readonly #hosts = new Map<string, InventoryHost>();
  readonly #groups = new Map<string, InventoryGroup>();
  readonly #target: PatternTarget;
  readonly #hostList: readonly InventoryHost[];
  readonly #groupList: readonly InventoryGroup[];
  readonly #selected = new Map<string, readonly string[]>();

  private constructor(readonly source: string, b: Builder) {
    // Depth: the longest path from `all` (no cycles by now); groups are visited in topological order.
    const order: string[] = [];
    const seen = new Set<string>();
    const post = (n: string): void => {
      seen.add(n);
      for (const c of b.groups.get(n)?.children ?? []) if (!seen.has(c)) post(c);
      order.push(n);
    };
    post('all');
    const depth = new Map<string, number>([['all', 0]]);
    for (const n of order.reverse()) {
      const below = (depth.get(n) ?? 0) + 1;
      for (const c of b.groups.get(n)?.children ?? []) depth.set(c, Math.max(depth.get(c) ?? 0, below));
    }
    const precedence = (a: string, z: string): number =>
      (depth.get(a) ?? 0) - (depth.get(z) ?? 0) || (a < z ? -1 : a > z ? 1 : 0);
    const ancestors = (n: string, out: Set<string>): Set<string> => {
      out.add(n);
      for (const p of b.groups.get(n)?.parents ?? []) if (!out.has(p)) ancestors(p, out);
      return out;
    };
    const members = new Map<string, string[]>([...b.groups.keys()].map((g) => [g, []]));
    for (const [name, h] of b.hosts) {
      const within = new Set<string>();
      for (const g of h.direct) ancestors(g, within); // every group descends from all
      if (within.size === 1) ancestors('ungrouped', within);
      const groups = Object.freeze([...within].sort(precedence));
      const vars: Record<string, unknown> = {};
      const conn: ConnPart = {};
      for (const d of [...groups.map((g) => b.groups.get(g)), h]) {
        if (!d) continue;
        for (const [k, v] of Object.entries(d.vars)) setOwn(vars, k, v);
        mergeConn(conn, d.conn);
      }
      for (const g of groups) members.get(g)?.push(name);
      const connection = resolveConnection(name, conn);
      this.#hosts.set(name, Object.freeze({ name, vars: Object.freeze(vars), groups, connection }));
    }
    for (const [name, g] of b.groups) {
      this.#groups.set(name, Object.freeze({
        name,
        vars: Object.freeze({ ...g.vars }),
        children: Object.freeze([...g.children]),
        hosts: Object.freeze(members.get(name) ?? []),
      }));
    }
    const hostNames = Object.freeze([...this.#hosts.keys()]);
    const groupNames = Object.freeze([...this.#groups.keys()]);
    const groups = this.#groups;
    this.#hostList = Object.freeze([...this.#hosts.values()]);
    this.#groupList = Object.freeze([...this.#groups.values()]);
    this.#target = { source, hostNames, groupNames, groupHosts: (n) => groups.get(n)?.hosts };
  }

  hosts(): readonly InventoryHost[] {
    return this.#hostList;
  }

  host(name: string): InventoryHost {
    const h = this.#hosts.get(name);
    if (h) return h;
    const hint = didYouMean(name, this.#hosts.keys());
    throw new UserError(`not in inventory ${this.source}${hint ? `; did you mean '${hint}'?` : ''}`, { host: name });
  }

  hasHost(name: string): boolean {
    return this.#hosts.has(name);
  }

  groups(): readonly InventoryGroup[] {
    return this.#groupList;
  }

  group(name: string): InventoryGroup | undefined {
    return this.#groups.get(name);
  }

  /** Host names matching an Ansible host pattern, in inventory order (see patterns.ts). */
  select(pattern: string): readonly string[] {
    // The inventory never changes: a pattern selects the same hosts every time (the runner asks per host-task).
    let hosts = this.#selected.get(pattern);
    if (hosts === undefined) {
      hosts = Object.freeze(selectHosts(this.#target, pattern));
      this.#selected.set(pattern, hosts);
    }
    return hosts;
  }

  /** Build from the parsed shape (or return an Inventory as is); throws one UserError listing every problem. */
  static fromObject(data: unknown, source: string): Inventory {
    if (data instanceof Inventory) return data;
    const b = new Builder();
    b.walkTop(data);
    b.checkGraph();
    if (b.problems.length > 0) throw combineErrors(b.problems).at({ file: source });
    return new Inventory(source, b);
  }
}

/** `--limit`: the hosts (in their order) that also match the limit pattern; no limit keeps them all. */
export function limitHosts(inv: Inventory, hosts: readonly string[], limit: string | undefined): readonly string[] {
  if (limit === undefined || limit.trim() === '') return hosts;
  const allowed = new Set(inv.select(limit));
  return hosts.filter((h) => allowed.has(h));
}

/** Load an inventory from .yaml/.yml, .json, or a .ts/.mts/.js/.mjs module's default export. */
export async function loadInventory(path: string): Promise<Inventory> {
  return Inventory.fromObject(await readInventoryFile(path), path);
}
