/**
 * The tgt module's params and facts, and what the task wants: the targets as the conf file declares them
 * and as tgtd will show them (validated), rendered with templates/tgt-target.conf.hbs.
 */
import { fileURLToPath } from 'node:url';
import type { Secret } from '../../lib/secret.ts';
import { renderTemplate, type Rendered } from '../../lib/template.ts';
import type { TgtTarget } from './parse.ts';

export interface ChapUser {
  user: string;
  password: Secret;
}

export interface TgtTargetParams {
  iqn: string;
  backingStores: string[];
  initiatorNames?: string[];
  initiatorAddresses?: string[];
  incomingUsers?: ChapUser[];
  outgoingUser?: ChapUser;
  allowAll?: boolean;
}

export interface TgtParams {
  name: string;
  targets?: TgtTargetParams[];
  ipv6Portal?: boolean;
  state?: 'present' | 'absent';
}

export interface TgtFacts {
  /** The conf file: its text and octal mode ("600"), or null when there is none. */
  readonly conf: { readonly text: string; readonly mode: string } | null;
  /** tgtd answered `tgtadm --op show`; when not, `error` says what tgtadm said. */
  readonly running: boolean;
  readonly error: string;
  readonly targets: readonly TgtTarget[];
  /** `systemctl is-active tgt` / `is-enabled tgt` ('' when systemctl said nothing). */
  readonly service: { readonly active: string; readonly enabled: string };
  /** When ipv6Portal is given: the drop-in's text (null: none) and tgtd's portals ("[::]:3260"). */
  readonly dropIn?: string | null;
  readonly portals?: readonly string[];
  /** What each backing store path is on the host: block, file, directory or missing. */
  readonly stores: Readonly<Record<string, string>>;
}

/** A target as the conf file declares it and as tgtd will show it. */
export interface WantedTarget {
  readonly iqn: string;
  readonly luns: readonly { readonly lun: number; readonly path: string }[];
  readonly incoming: readonly ChapUser[];
  readonly outgoing: ChapUser | null;
  /** initiator-address lines (ALL for allowAll, 0.0.0.0/32 for a name-only target, then the task's). */
  readonly addresses: readonly string[];
  readonly names: readonly string[];
  /** 0.0.0.0/32 was added (the file says why). */
  readonly guard: boolean;
}

export const confPath = (name: string): string => `/etc/tgt/conf.d/${name}.conf`;
export const DROP_IN = '/etc/systemd/system/tgt.service.d/sanbook-ipv4-only.conf';
export const IPV6_PORTAL = '[::]:3260';
export const NO_PEER = '0.0.0.0/32';
export const DROP_IN_TEXT = `# Managed by sanbook (tgt module, ipv6Portal: false). tgtd listens on 0.0.0.0:3260 and [::]:3260 by
# default: drop the IPv6 wildcard portal once it has started ("-": no failure on a host without IPv6).
[Service]
ExecStartPost=-/usr/sbin/tgtadm --lld iscsi --op delete --mode portal --param portal=${IPV6_PORTAL}
`;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Check the task's targets and turn them into what the conf file says and tgtd will show. */
export function wantedTargets(targets: readonly TgtTargetParams[]): WantedTarget[] {
  const seen = new Map<string, string>();
  const passwords = new Map<string, Secret>();
  const iqns = new Set<string>();
  return targets.map((t) => {
    if (iqns.has(t.iqn)) throw new Error(`target ${t.iqn} is listed twice`);
    iqns.add(t.iqn);
    if (t.backingStores.length === 0) throw new Error(`target ${t.iqn}: backingStores is empty`);
    for (const path of t.backingStores) {
      const other = seen.get(path);
      if (other !== undefined) throw new Error(`backing store ${path} is exported twice (${other} and ${t.iqn}): tgt-admin skips a device in use`);
      seen.set(path, t.iqn);
    }
    const names = t.initiatorNames ?? [];
    const given = t.initiatorAddresses ?? [];
    if (!t.allowAll && names.length === 0 && given.length === 0) {
      throw new Error(
        `target ${t.iqn}: give initiatorNames and/or initiatorAddresses, or allowAll: true: tgt-admin binds ALL to a target without initiator-address, which lets every initiator in`,
      );
    }
    const users = [...(t.incomingUsers ?? []), ...(t.outgoingUser ? [t.outgoingUser] : [])];
    const incoming = new Set<string>();
    for (const u of t.incomingUsers ?? []) {
      if (incoming.has(u.user)) throw new Error(`target ${t.iqn}: incoming user ${u.user} is listed twice`);
      incoming.add(u.user);
    }
    if (t.outgoingUser && incoming.has(t.outgoingUser.user)) throw new Error(`target ${t.iqn}: ${t.outgoingUser.user} cannot be both an incoming and the outgoing user`);
    for (const u of users) {
      const pw = passwords.get(u.user);
      if (pw && !pw.equals(u.password)) throw new Error(`CHAP user ${u.user} has two passwords: tgtd accounts are global (one password per user name)`);
      passwords.set(u.user, u.password);
    }
    const guard = !t.allowAll && given.length === 0;
    return {
      iqn: t.iqn,
      luns: t.backingStores.map((path, i) => ({ lun: i + 1, path })),
      incoming: t.incomingUsers ?? [],
      outgoing: t.outgoingUser ?? null,
      addresses: [...(t.allowAll ? ['ALL'] : []), ...(guard ? [NO_PEER] : []), ...given],
      names,
      guard,
    };
  });
}

/** The conf file for the wanted targets (content with secrets, display with ***). */
export function renderConf(name: string, wanted: readonly WantedTarget[]): Rendered {
  return renderTemplate('tgt-target.conf', { name, targets: wanted }, { root: ROOT });
}

