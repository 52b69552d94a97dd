/**
 * The host-key policy: is the key a server offers acceptable, given known_hosts and the checking mode
 * (strict: only known keys; accept-new: record unknown hosts, refuse changed keys; off: anything but a
 * @revoked key)? Returns undefined to accept, or the refusal message.
 */
import { appendKnownHost, checkHostKey, describeKey, hostKeyName, type KnownHostEntry } from './known_hosts.ts';

export type HostKeyChecking = 'strict' | 'accept-new' | 'off';

export interface HostKeyQuestion {
  address: string;
  port: number;
  hostKeyChecking: HostKeyChecking;
  knownHostsFile: string;
  entries: readonly KnownHostEntry[];
  /** The key blob the server offered. */
  key: Buffer;
}

export async function decideHostKey(q: HostKeyQuestion): Promise<string | undefined> {
  const name = hostKeyName(q.address, q.port);
  const verdict = checkHostKey(q.entries, q.address, q.port, q.key);
  const offered = describeKey(q.key);
  switch (verdict.status) {
    case 'match':
      return undefined;
    case 'revoked':
      return `the host key of ${name} (${offered}) is marked @revoked in ${q.knownHostsFile} line ${verdict.line}; connection refused`;
    case 'mismatch':
      if (q.hostKeyChecking === 'off') return undefined;
      return `HOST KEY CHANGED for ${name}: the key offered (${offered}) differs from the one in ${q.knownHostsFile} line ${verdict.line}; this may be a man-in-the-middle attack; connection refused`;
    case 'unknown':
      if (q.hostKeyChecking === 'off') return undefined;
      if (q.hostKeyChecking === 'accept-new') {
        try {
          await appendKnownHost(q.knownHostsFile, q.address, q.port, q.key);
          return undefined;
        } catch (e) {
          return `cannot record the new host key of ${name} in ${q.knownHostsFile}: ${e instanceof Error ? e.message : String(e)}`;
        }
      }
      return (
        `the host key of ${name} (${offered}) is not in ${q.knownHostsFile}` +
        (verdict.knownTypes.length > 0 ? ` (it holds only ${verdict.knownTypes.join(', ')} keys for it)` : '') +
        `; verify it and add it (ssh-keyscan -p ${q.port} ${q.address}), or set host_key_checking: accept-new`
      );
  }
}

/** Host-key algorithms in ssh2's default order. */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;
export type HostKeyAlgorithm = (typeof HOST_KEY_ALGORITHMS)[number];

/**
 * The types known_hosts holds for a host are negotiated first, so that a server with several keys offers
 * the one we know (as OpenSSH does); undefined when known_hosts has none for it.
 */
export function preferredHostKeyAlgorithms(knownTypes: readonly string[]): HostKeyAlgorithm[] | undefined {
  const first = knownTypes.flatMap((t): HostKeyAlgorithm[] =>
    t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : HOST_KEY_ALGORITHMS.filter((a) => a === t),
  );
  if (first.length === 0) return undefined;
  return [...new Set([...first, ...HOST_KEY_ALGORITHMS])];
}
