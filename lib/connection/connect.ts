/**
 * From an inventory host to an open connection (local, or SSH opened once and reused for the whole run).
 */
import type { InventoryHost } from '../inventory.ts';
import { LocalConnection } from './local.ts';
import { connectSsh } from './ssh.ts';
import type { Connection } from './types.ts';

export type Connector = (host: InventoryHost) => Promise<Connection>;

export const connectHost: Connector = async (host) => {
  const spec = host.connection;
  if (spec.kind === 'local') {
    return new LocalConnection({ host: host.name, become: spec.become, commandTimeoutMs: spec.commandTimeoutMs });
  }
  return connectSsh({
    host: host.name,
    address: spec.address,
    port: spec.port,
    user: spec.user,
    ...(spec.privateKeyFile !== undefined ? { privateKeyFile: spec.privateKeyFile } : {}),
    ...(spec.password !== undefined ? { password: spec.password } : {}),
    hostKeyChecking: spec.hostKeyChecking,
    knownHostsFile: spec.knownHostsFile,
    connectTimeoutMs: spec.connectTimeoutMs,
    commandTimeoutMs: spec.commandTimeoutMs,
    keepaliveIntervalMs: spec.keepaliveIntervalMs,
    become: spec.become,
  });
};
