/**
 * The connection variables of an inventory (Ansible's names: ansible_host, ansible_port, ansible_user, ...,
 * plus host_key_checking, known_hosts_file, connect_timeout, command_timeout, keepalive_interval): their schema,
 * and how the
 * values merged by precedence become a host's typed ConnectionSpec.
 */
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Secret } from './secret.ts';

import type { HostKeyChecking } from './connection/host-keys.ts';

export type { HostKeyChecking };

export interface ConnectionSpec {
  kind: 'ssh' | 'local';
  address: string;
  port: number;
  user: string;
  privateKeyFile?: string;
  password?: Secret;
  hostKeyChecking: HostKeyChecking;
  knownHostsFile: string;
  /** false, true (root), or the user to become. */
  become: boolean | string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** A keepalive every this many ms; 3 unanswered and the host is unreachable (a paused VM, a dead link). */
  keepaliveIntervalMs: number;
}

const ANSIBLE_BOOL = { enum: [true, false, 'yes', 'no', 'true', 'false'] };
const TEXT = { type: 'string', minLength: 1 };
const SECONDS = { type: 'number', exclusiveMinimum: 0 };

/** Validated one field at a time (so each problem is named by its own field). */
export const CONNECTION_SCHEMA = {
  type: 'object',
  properties: {
    ansible_host: TEXT,
    ansible_port: { type: 'integer', minimum: 1, maximum: 65535 },
    ansible_user: TEXT,
    ansible_connection: { enum: ['ssh', 'local'] },
    ansible_ssh_private_key_file: TEXT,
    ansible_password: { secret: true },
    ansible_ssh_pass: { secret: true },
    ansible_become_password: { secret: true },
    ansible_become_pass: { secret: true },
    ansible_become: ANSIBLE_BOOL,
    ansible_become_user: TEXT,
    host_key_checking: { enum: ['strict', 'accept-new', 'off', true, false] },
    ansible_host_key_checking: ANSIBLE_BOOL,
    known_hosts_file: TEXT,
    connect_timeout: SECONDS,
    command_timeout: SECONDS,
    keepalive_interval: SECONDS,
  },
} as const;
export const CONNECTION_KEYS = new Set(Object.keys(CONNECTION_SCHEMA.properties));

export const GROUP_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { hosts: { type: 'object' }, vars: { type: 'object' }, children: { type: 'object' } },
} as const;

/** The connection settings one vars block makes (aliases folded), to be merged by precedence. */
export interface ConnPart {
  kind?: 'ssh' | 'local';
  address?: string;
  port?: number;
  user?: string;
  privateKeyFile?: string;
  password?: Secret;
  hostKeyChecking?: HostKeyChecking;
  knownHostsFile?: string;
  become?: boolean;
  becomeUser?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  keepaliveIntervalMs?: number;
}

export function connPart(v: Readonly<Record<string, unknown>>): ConnPart {
  const str = (k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const num = (k: string): number | undefined => (typeof v[k] === 'number' ? (v[k] as number) : undefined);
  const bool = (k: string): boolean | undefined =>
    k in v ? v[k] === true || v[k] === 'yes' || v[k] === 'true' : undefined;
  const ms = (k: string): number | undefined => (typeof v[k] === 'number' ? (v[k] as number) * 1000 : undefined);
  const secret = (k: string): Secret | undefined => (v[k] instanceof Secret ? v[k] : undefined);
  // host_key_checking (ours: a mode, or a boolean) wins over Ansible's boolean in the same block.
  const hkc = 'host_key_checking' in v ? v['host_key_checking'] : bool('ansible_host_key_checking');
  const part: ConnPart = {
    kind: str('ansible_connection') as ConnPart['kind'],
    address: str('ansible_host'),
    port: num('ansible_port'),
    user: str('ansible_user'),
    privateKeyFile: str('ansible_ssh_private_key_file'),
    password: secret('ansible_password') ?? secret('ansible_ssh_pass'),
    hostKeyChecking: hkc === true ? 'strict' : hkc === false ? 'off' : (hkc as HostKeyChecking | undefined),
    knownHostsFile: str('known_hosts_file'),
    become: bool('ansible_become'),
    becomeUser: str('ansible_become_user'),
    connectTimeoutMs: ms('connect_timeout'),
    commandTimeoutMs: ms('command_timeout'),
    keepaliveIntervalMs: ms('keepalive_interval'),
  };
  return part;
}

export function mergeConn(into: ConnPart, from: ConnPart): void {
  for (const [k, v] of Object.entries(from)) if (v !== undefined) Object.assign(into, { [k]: v });
}

function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? 'root';
  }
}

export function resolveConnection(name: string, c: ConnPart): ConnectionSpec {
  const spec: ConnectionSpec = {
    kind: c.kind ?? (name === 'localhost' && c.address === undefined ? 'local' : 'ssh'),
    address: c.address ?? name,
    port: c.port ?? 22,
    user: c.user ?? currentUser(),
    hostKeyChecking: c.hostKeyChecking ?? 'strict',
    knownHostsFile: expandHome(c.knownHostsFile ?? '~/.ssh/known_hosts'),
    become: c.become === true ? (c.becomeUser ?? true) : false,
    connectTimeoutMs: c.connectTimeoutMs ?? 20_000,
    commandTimeoutMs: c.commandTimeoutMs ?? 600_000,
    keepaliveIntervalMs: c.keepaliveIntervalMs ?? 15_000,
  };
  if (c.privateKeyFile !== undefined) spec.privateKeyFile = expandHome(c.privateKeyFile);
  if (c.password !== undefined) spec.password = c.password;
  return Object.freeze(spec);
}
