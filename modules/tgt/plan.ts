/**
 * The tgt module's plan: the conf file (rendered from templates/tgt-target.conf.hbs), then the running tgtd
 * made to match it with `tgt-admin --update IQN`, which deletes the target and builds it again from the file.
 *
 * What tgt-admin 1.0.85 does, and how the plan deals with it:
 * - A target without an `initiator-address` line gets `ALL` bound, and tgtd admits an initiator that matches
 *   an address ACL OR a name ACL: `initiator-name X` alone lets every initiator in. A target restricted by
 *   name only gets `initiator-address 0.0.0.0/32` (no TCP peer has it); a target with neither is refused
 *   unless the task says `allowAll: true`.
 * - Plain `backing-store` lines get LUNs in alphabetical order of the paths: the file uses
 *   `<backing-store PATH> lun N </backing-store>` blocks so that LUN N is the Nth path of the task.
 * - `--update` skips (exit 0, silently without -v) a target an initiator is logged in to, unless -f; and -f
 *   cannot work with name ACLs: it unbinds every ACL entry as an address (`-I iqn...`), tgtadm says no such
 *   rule and tgt-admin stops before dropping the sessions. So the plan drops them itself (target offline,
 *   `tgtadm --op delete --mode conn`, wait until no connection is left), then runs --update without -f.
 *   tgt-admin also skips a device in use: the step runs tgt-admin -v and fails on what it skipped.
 * - CHAP accounts are global in tgtd and tgt-admin never re-creates an existing one: a changed password
 *   takes the account's deletion first (with the targets using it offline meanwhile, so that no login slips
 *   in without CHAP). tgtd never shows passwords: the previous conf file is what tells they changed.
 */
import { Command, cmd, sh } from '../../lib/command.ts';
import { exec, mkdirFor, put, type Change, type Step } from '../../lib/module.ts';
import type { Secret } from '../../lib/secret.ts';
import { maskConf, parseConf, type ConfTarget, type TgtSession, type TgtTarget } from './parse.ts';
import { confPath, DROP_IN, DROP_IN_TEXT, IPV6_PORTAL, renderConf, wantedTargets, type ChapUser, type TgtFacts, type TgtParams, type WantedTarget } from './wanted.ts';

const sorted = (xs: readonly string[]): string => [...xs].sort().join(', ');
const list = (xs: readonly string[]): string => (xs.length === 0 ? '(none)' : xs.join(', '));
const lunsText = (luns: readonly { lun: number; path: string | null }[]) => list(luns.map((l) => `${l.lun} ${l.path ?? '-'}`));
const whoText = (sessions: readonly TgtSession[]) =>
  sessions.map((s) => `${s.initiator} (${s.connections.map((c) => c.address).join(', ') || 'no connection'})`).join(', ');

/** Does an address ACL entry admit this address? ALL, an exact address, or an IPv4 CIDR (others: no). */
export function addressAdmits(acl: string, address: string): boolean {
  if (acl === 'ALL' || acl === address) return true;
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(acl);
  const ip = (s: string) => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  if (!m?.[1] || !m[2] || !/^\d+\.\d+\.\d+\.\d+$/.test(address)) return false;
  const bits = Number(m[2]);
  const size = 2 ** (32 - bits);
  return Math.floor(ip(m[1]) / size) === Math.floor(ip(address) / size);
}

function admitted(w: WantedTarget, s: TgtSession): boolean {
  return w.names.includes(s.initiator) || s.connections.some((c) => w.addresses.some((a) => addressAdmits(a, c.address)));
}

/** `tgt-admin -v ARGS`: fails on a non-zero exit and on what tgt-admin only reports (a skipped target or device). */
export function tgtAdmin(args: readonly string[]): Command {
  const script = sh`n=0
while :; do
  out=$(${cmd('tgt-admin', '-v', ...args)} 2>&1); rc=$?
  case $out in *'is still active'*) if [ "$n" -lt 3 ]; then n=$((n + 1)); sleep 2; continue; fi ;; esac
  break
done
bad=$(printf '%s\\n' "$out" | grep -e '^# Skipping' -e ' is in use' -e '^# Device ')
if [ "$rc" -ne 0 ] || [ -n "$bad" ]; then
  printf '%s\\n' "$out" | grep -v -e '--password' >&2
  if [ "$rc" -ne 0 ]; then exit "$rc"; fi
  exit 1
fi`;
  return new Command(script.script, ['tgt-admin', ...args].join(' '));
}

/** Delete a CHAP account (tgt-admin then creates it with the conf file's password); "no such account" is fine. */
export function deleteAccount(user: string): Command {
  const script = sh`err=$(${cmd('tgtadm', '--lld', 'iscsi', '--mode', 'account', '--op', 'delete', '--user', user)} 2>&1) || case $err in
  *"can't find the account"*) ;;
  *) printf '%s\\n' "$err" >&2; exit 1 ;;
esac`;
  return new Command(script.script, `tgtadm --lld iscsi --mode account --op delete --user ${user}`);
}

const tgtadm = (...args: string[]) => exec(cmd('tgtadm', '--lld', 'iscsi', ...args));
const offline = (tid: number) => tgtadm('--op', 'update', '--mode', 'target', '--tid', String(tid), '-n', 'state', '-v', 'offline');

/** Take a target's initiators off it (what tgt-admin -f means to do): offline, close their connections, wait. */
export function dropSessions(target: TgtTarget): Step[] {
  const tid = String(target.tid);
  const close = target.sessions.flatMap((s) =>
    s.connections.map((c) => {
      const del = cmd('tgtadm', '--lld', 'iscsi', '--op', 'delete', '--mode', 'conn', '--tid', tid, '--sid', String(s.nexus), '--cid', String(c.cid));
      // Gone already is fine: the wait below is what proves it.
      return exec(new Command(sh`${del} || :`.script, `${del.display} (${s.initiator})`));
    }),
  );
  const wait = sh`i=0
while tgtadm --lld iscsi --op show --mode target | awk -v t=${`Target ${tid}:`} '/^Target /{on = index($0, t) == 1} on && /^ *Connection:/{found = 1} END{exit !found}'; do
  i=$((i + 1))
  if [ "$i" -ge 15 ]; then echo ${`tid ${tid}: initiators still connected after 15 s`} >&2; exit 1; fi
  sleep 1
done`;
  return [offline(target.tid), ...close, exec(new Command(wait.script, `wait until tid ${tid} has no connection left (15 s at most)`))];
}

export function planTgt(p: TgtParams, f: TgtFacts): Change[] {
  const old = f.conf ? parseConf(f.conf.text) : [];
  if (f.service.enabled === 'masked') throw new Error('tgt.service is masked: unmask it first');
  return p.state === 'absent' ? planAbsent(p, f, old) : planPresent(p, f, old);
}

function deleteTarget(iqn: string, live: TgtTarget, why: string): Change {
  const used = live.sessions.length > 0;
  return {
    summary: `delete target ${iqn} (tid ${live.tid}${why})`,
    steps: [...(used ? dropSessions(live) : []), exec(tgtAdmin(['--delete', iqn]))],
    ...(used ? { destructive: `target ${iqn} is in use: deleting it cuts off ${whoText(live.sessions)}` } : {}),
  };
}

function planAbsent(p: TgtParams, f: TgtFacts, old: readonly ConfTarget[]): Change[] {
  const path = confPath(p.name);
  const changes: Change[] = [];
  if (f.conf) changes.push({ summary: `remove ${path}`, steps: [exec(cmd('rm', '-f', '--', path))] });
  const iqns = [...new Set([...(p.targets ?? []).map((t) => t.iqn), ...old.map((t) => t.iqn)])];
  for (const iqn of iqns) {
    const live = f.targets.find((t) => t.iqn === iqn);
    if (live) changes.push(deleteTarget(iqn, live, ''));
  }
  return changes;
}

/** Users whose tgtd account must be deleted so that tgt-admin creates it with the conf file's password. */
function staleAccounts(wanted: readonly WantedTarget[], old: readonly ConfTarget[]): Map<string, string> {
  const stale = new Map<string, string>();
  for (const w of wanted) {
    const before = old.find((o) => o.iqn === w.iqn);
    const check = (u: ChapUser, had: Secret | undefined) => {
      if (had?.equals(u.password)) return;
      stale.set(u.user, had ? 'its password changed' : 'tgtd does not show passwords: it is made from the conf file');
    };
    for (const u of w.incoming) check(u, before?.incoming.get(u.user));
    if (w.outgoing) check(w.outgoing, before?.outgoing?.user === w.outgoing.user ? before.outgoing.password : undefined);
  }
  return stale;
}

function planPresent(p: TgtParams, f: TgtFacts, old: readonly ConfTarget[]): Change[] {
  const path = confPath(p.name);
  const wanted = wantedTargets(p.targets ?? []);
  for (const w of wanted) {
    for (const l of w.luns) {
      const kind = f.stores[l.path] ?? 'missing';
      if (kind === 'missing' || kind === 'directory') throw new Error(`target ${w.iqn}: backing store ${l.path} ${kind === 'missing' ? 'does not exist' : 'is a directory'}`);
    }
  }
  const rendered = renderConf(p.name, wanted);
  const stale = staleAccounts(wanted, old);
  const changes: Change[] = [];
  if (!f.conf || f.conf.text !== rendered.content) {
    const changed = [...stale].filter(([, why]) => why === 'its password changed').map(([u]) => u);
    const note = changed.length > 0 ? `; CHAP password of ${changed.join(', ')} changed` : '';
    changes.push({
      summary: `${f.conf ? 'update' : 'create'} ${path} (${wanted.length} target${wanted.length === 1 ? '' : 's'}${note})`,
      steps: [put(path, rendered.content, { mode: 0o600, owner: 'root', group: 'root' })],
      diff: { label: path, before: f.conf ? maskConf(f.conf.text) : '', after: rendered.display },
    });
  } else if (f.conf.mode !== '600') {
    changes.push({ summary: `chmod 0600 ${path} (it holds CHAP secrets; mode was ${f.conf.mode})`, steps: [exec(cmd('chmod', '0600', '--', path))] });
  }
  changes.push(...planDropIn(p, f));
  if (f.service.enabled !== 'enabled') {
    changes.push({ summary: `enable tgt (${f.service.enabled || 'unknown'}): it loads the targets at boot`, steps: [exec(cmd('systemctl', 'enable', 'tgt'))] });
  }
  if (!f.running) {
    if (f.service.active === 'active') throw new Error(`tgt is active but tgtd does not answer: ${f.error}`);
    changes.push({ summary: `start tgt (tgtd is not running): it loads the targets of /etc/tgt/conf.d`, steps: [exec(cmd('systemctl', 'start', 'tgt'))] });
    return changes;
  }
  changes.push(...planLive(wanted, f, old, stale, path));
  if (p.ipv6Portal !== undefined && f.portals) {
    const has = f.portals.includes(IPV6_PORTAL);
    if (p.ipv6Portal && !has) changes.push({ summary: `listen on ${IPV6_PORTAL}`, steps: [tgtadm('--op', 'new', '--mode', 'portal', '--param', `portal=${IPV6_PORTAL}`)] });
    if (!p.ipv6Portal && has) changes.push({ summary: `stop listening on ${IPV6_PORTAL}`, steps: [tgtadm('--op', 'delete', '--mode', 'portal', '--param', `portal=${IPV6_PORTAL}`)] });
  }
  return changes;
}

function planDropIn(p: TgtParams, f: TgtFacts): Change[] {
  const reload = exec(cmd('systemctl', 'daemon-reload'));
  if (p.ipv6Portal === false && f.dropIn !== DROP_IN_TEXT) {
    return [{ summary: `${f.dropIn == null ? 'create' : 'update'} ${DROP_IN} (no IPv6 portal after tgt starts)`, steps: [mkdirFor(DROP_IN), put(DROP_IN, DROP_IN_TEXT, { mode: 0o644 }), reload], diff: { label: DROP_IN, before: f.dropIn ?? '', after: DROP_IN_TEXT } }];
  }
  if (p.ipv6Portal === true && f.dropIn != null) {
    return [{ summary: `remove ${DROP_IN} (tgtd listens on ${IPV6_PORTAL} by default)`, steps: [exec(cmd('rm', '-f', '--', DROP_IN)), reload] }];
  }
  return [];
}

function planLive(wanted: readonly WantedTarget[], f: TgtFacts, old: readonly ConfTarget[], stale: ReadonlyMap<string, string>, path: string): Change[] {
  const changes: Change[] = [];
  const managed = new Set([...wanted.map((w) => w.iqn), ...old.map((o) => o.iqn)]);
  const uses = (t: { accounts: readonly string[]; outgoingAccount: string | null }, u: string) => t.accounts.includes(u) || t.outgoingAccount === u;
  // Targets whose accounts are deleted: every one must be managed here (accounts are global).
  const affected = f.targets.filter((t) => [...stale.keys()].some((u) => uses(t, u)));
  for (const t of affected) {
    if (!managed.has(t.iqn)) {
      const u = [...stale.keys()].filter((x) => uses(t, x)).join(', ');
      throw new Error(`CHAP account ${u} is also bound to target ${t.iqn}, which this task does not manage: tgtd accounts are global (one password per user name): use another user name`);
    }
  }
  const recreate = [...stale.keys()];
  if (recreate.length > 0) {
    const offlines: Step[] = affected.map((t) => offline(t.tid));
    changes.push({
      summary: `re-create CHAP account${recreate.length === 1 ? '' : 's'} ${recreate.map((u) => `${u} (${stale.get(u) ?? ''})`).join(', ')}${affected.length > 0 ? `; ${affected.map((t) => t.iqn).join(', ')} offline until updated` : ''}`,
      steps: [...offlines, ...recreate.map((u) => exec(deleteAccount(u)))],
    });
  }
  for (const w of wanted) {
    const live = f.targets.find((t) => t.iqn === w.iqn);
    const update = exec(tgtAdmin(['--update', w.iqn, '-c', path]));
    if (!live) {
      changes.push({ summary: `create target ${w.iqn} (LUNs ${lunsText(w.luns)}; ACL ${list([...w.addresses, ...w.names])})`, steps: [update] });
      continue;
    }
    // risky: what a logged-in initiator loses (its LUNs, or its login with the credentials it has).
    const reasons: string[] = [];
    const risky: string[] = [];
    const liveLuns = live.luns.filter((l) => l.lun !== 0);
    if (lunsText(liveLuns) !== lunsText(w.luns)) risky.push(`LUNs ${lunsText(liveLuns)} -> ${lunsText(w.luns)}`);
    const users = w.incoming.map((u) => u.user);
    const outgoing = (u: string | null) => (u ? [`${u} (outgoing)`] : []);
    if (sorted(live.accounts) !== sorted(users) || live.outgoingAccount !== (w.outgoing?.user ?? null)) {
      risky.push(`CHAP accounts ${list([...live.accounts, ...outgoing(live.outgoingAccount)])} -> ${list([...users, ...outgoing(w.outgoing?.user ?? null)])}`);
    }
    const again = recreate.filter((u) => uses(live, u) || users.includes(u) || w.outgoing?.user === u);
    if (again.length > 0) risky.push(`CHAP account${again.length === 1 ? '' : 's'} ${again.join(', ')} re-created`);
    const acls = [...w.addresses, ...w.names];
    if (sorted(live.acls) !== sorted(acls)) {
      const trap = live.acls.includes('ALL') && !acls.includes('ALL') ? 'ALL is bound, any initiator can log in: ' : '';
      reasons.push(`${trap}ACL ${list(live.acls)} -> ${list(acls)}`);
    }
    if (live.state !== 'ready') reasons.push(`state is ${live.state}`);
    if (risky.length === 0 && reasons.length === 0 && !affected.includes(live)) continue;
    const used = live.sessions.length > 0;
    const cut = live.sessions.filter((s) => !admitted(w, s));
    const danger = [...risky, ...(cut.length > 0 ? [`the new ACL shuts out ${whoText(cut)}`] : [])];
    changes.push({
      summary: `update target ${w.iqn} (tid ${live.tid}): ${[...risky, ...reasons].join('; ') || 'it was put offline'}${used ? `; the sessions of ${whoText(live.sessions)} are dropped first and log in again` : ''}`,
      steps: [...(used ? dropSessions(live) : []), update],
      ...(used && danger.length > 0 ? { destructive: `target ${w.iqn} is in use by ${whoText(live.sessions)}: ${danger.join('; ')}` } : {}),
    });
  }
  for (const o of old) {
    const live = f.targets.find((t) => t.iqn === o.iqn);
    if (live && !wanted.some((w) => w.iqn === o.iqn)) changes.push(deleteTarget(o.iqn, live, `, no longer in ${path}`));
  }
  return changes;
}
