/**
 * firewalld: ports, services, sources and interfaces of one zone, in both planes (runtime and permanent) so
 * nothing waits for a reload; state absent removes them; firewalld enabled and running.
 *
 * gather is one round trip and changes nothing (firewalld/gather.ts): `systemctl show firewalld`,
 * `firewall-cmd --state`, the default zone, and the zone as `--list-all` prints it in each plane; when the
 * daemon is stopped, the permanent plane through firewall-offline-cmd (check mode works on a host where
 * firewalld never ran). plan (firewalld/plan.ts) compares each item with each plane, ports by coverage
 * (9420/tcp is open when 9419-9421/tcp is), and changes each plane where it differs: idempotent by
 * construction, never an ALREADY_ENABLED.
 */
import { defineModule } from '../lib/module.ts';
import { IPV4_OCTET } from '../lib/schema.ts';
import { gatherScript, parseGather, type FirewalldFacts, type FirewalldParams } from './firewalld/gather.ts';
import type { ZoneInfo } from './firewalld/parse.ts';
import { planFirewalld } from './firewalld/plan.ts';

export { gatherScript, parseGather, type FirewalldParams, type FirewalldFacts, type PlaneFacts } from './firewalld/gather.ts';
export { parseListAll, parseState, parseDefaultZone, parseNames, parseActiveZones, parseZoneOf, NOT_RUNNING, type ZoneInfo, type ActiveZone } from './firewalld/parse.ts';
export { planFirewalld } from './firewalld/plan.ts';
export { firewallCommand } from './firewalld/steps.ts';
export { parsePort, formatPort, normalize as normalizePorts, type PortRange } from './firewalld/ports.ts';

const PORT = '([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';
const IPV4 = `${IPV4_OCTET}(\\.${IPV4_OCTET}){3}(/([0-9]|[12][0-9]|3[0-2]))?`;
const IPV6 = '[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*(/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))?';

/** What later tasks read: the zone and what it holds in each plane (after apply; before it in check mode). */
export interface FirewalldOutput {
  readonly zone: string;
  readonly defaultZone: string;
  /** firewall-cmd --state said running. */
  readonly running: boolean;
  /** The zone in the runtime; null when firewalld is not running. */
  readonly runtime: ZoneInfo | null;
  /** The zone in the permanent configuration. */
  readonly permanent: ZoneInfo | null;
}

const list = (items: Readonly<Record<string, unknown>>, description: string) => ({ type: 'array', uniqueItems: true, items, description });

export const firewalld = defineModule<FirewalldParams, FirewalldFacts, FirewalldOutput>({
  name: 'firewalld',
  description:
    'Ports, services, sources and interfaces of a firewalld zone, in the runtime and the permanent configuration alike (no reload needed); state absent removes them; firewalld enabled and running. Works with firewall-offline-cmd while firewalld is stopped.',
  examples: [
    { title: "Seed 000's storage hosts (sto1, sto2): the iSCSI portal", params: { ports: ['3260/tcp'] } },
    {
      title: "Seed 000's MooseFS master: metaloggers, chunkservers and clients (9419-9421), the CGI monitor (9425)",
      params: { ports: ['9419-9421/tcp', '9425/tcp'] },
    },
    { title: "Seed 000's chunkservers: clients and other chunkservers connect on 9422", params: { ports: ['9422/tcp'] } },
    {
      title: 'The storage network in the internal zone, by source, with the iSCSI target service',
      params: { zone: 'internal', sources: ['10.3.1.0/24'], services: ['iscsi-target'] },
    },
    { title: 'Close the CGI monitor again', params: { ports: ['9425/tcp'], state: 'absent' } },
  ],
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      zone: {
        type: 'string',
        pattern: '^[A-Za-z0-9_][A-Za-z0-9_-]{0,16}$',
        description: 'The zone (at most 17 characters, as firewalld allows). Default: the default zone, read when the task runs. A zone that does not exist is an error naming the zones that do.',
      },
      ports: list(
        { type: 'string', pattern: `^${PORT}(-${PORT})?/(tcp|udp|sctp|dccp)$` },
        'Ports or port ranges with their protocol: "3260/tcp", "9419-9421/tcp" (1-65535; tcp, udp, sctp or dccp). Compared by coverage: a port inside an open range is open.',
      ),
      services: list(
        { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$' },
        'firewalld services by name (iscsi-target, ssh, nfs). A name firewalld does not know (--get-services) is an error.',
      ),
      sources: list(
        { type: 'string', pattern: `^(${IPV4}|${IPV6})$` },
        'Source addresses or networks (CIDR, IPv4 or IPv6) bound to the zone: their traffic gets its rules. A source bound to another zone is moved.',
      ),
      interfaces: list(
        { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,14}$' },
        'Network interfaces bound to the zone. An interface bound to another zone is moved (--change-interface).',
      ),
      state: {
        enum: ['present', 'absent'],
        default: 'present',
        description: 'present: the listed items are in the zone; absent: they are not (removed from the planes that hold them).',
      },
      running: {
        type: 'boolean',
        default: true,
        description:
          'true: firewalld is enabled and started (when stopped, the permanent configuration is changed with firewall-offline-cmd, then firewalld starts and its runtime loads it). false: firewalld is neither started nor enabled: while it is stopped only the permanent configuration changes, with firewall-offline-cmd; while it runs, both planes change. Stopping firewalld is the service module\'s job.',
      },
      exact: {
        type: 'boolean',
        default: false,
        description:
          'true: the zone holds exactly the listed items of each kind the task lists (ports, services, sources, interfaces): the others of that kind are removed, e.g. ssh when services omits it. false: only the listed items are added, nothing else is removed.',
      },
    },
  },
  async gather(conn, params, ctx) {
    if (!ctx.facts.systemd) throw new Error(`firewalld: systemd is not running on ${ctx.host} (the module reads and starts firewalld.service)`);
    const r = await conn.exec(gatherScript(params));
    if (r.exitCode !== 0) throw new Error(`reading firewalld's state failed on ${ctx.host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseGather(r.stdout, params);
  },
  plan: planFirewalld,
  output: (params, facts) => ({
    zone: params.zone ?? facts.defaultZone,
    defaultZone: facts.defaultZone,
    running: facts.running,
    runtime: facts.runtime?.zone ?? null,
    permanent: facts.permanent.zone,
  }),
});
