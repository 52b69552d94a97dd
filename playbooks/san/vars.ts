/**
 * The inventory variables of playbooks/san.ts, typed: their schema (checked before anything runs, each problem
 * named by host and field) and the typed view the plays read.
 */
import { IPV4_PATTERN, validateSchema } from '../../lib/schema.ts';
import type { Secret } from '../../lib/secret.ts';


export const SAN_VARS_SCHEMA = {
  type: 'object',
  required: ['storage_ips', 'san_chap_secret'],
  properties: {
    storage_ips: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', pattern: IPV4_PATTERN },
      description: "The host's address on each storage network (seed 000: 10.3.1.X and 10.3.2.X); targets listen on these, initiators log in to them.",
    },
    data_disks: {
      type: 'array',
      uniqueItems: true,
      items: { type: 'string', pattern: '^/dev/[^\\s]+$' },
      description: 'Storage hosts: the blank disks for the RAID 1 arrays, two per chunk host, in order (/dev/sdb ... or /dev/disk/by-id/...).',
    },
    san_iqn_prefix: {
      type: 'string',
      pattern: '^iqn\\.[0-9]{4}-(0[1-9]|1[0-2])\\.[a-z0-9-]+(\\.[a-z0-9-]+)+$',
      description: 'IQN prefix of targets and initiators (default iqn.2024-12.tp2.b3: targets iqn.2024-12.tp2.b3:data-chunk1, initiators iqn.2024-12.tp2.b3:chunk1).',
    },
    san_chap_secret: {
      secret: { minLength: 12, maxLength: 16, pattern: '^[A-Za-z0-9._~:@+!%^*,/-]+$' },
      description: 'CHAP secret of the chunk hosts (user: the chunk host name); 12 to 16 characters, mark it !secret in YAML.',
    },
    moosefs_leave_space: {
      type: 'string',
      pattern: '^[0-9]+(B|KiB|MiB|GiB|kB|MB|GB)?$',
      description: "Chunkservers: HDD_LEAVE_SPACE_DEFAULT, the space kept free on each disk (MooseFS's default 256MiB; small lab disks need less).",
    },
  },
} as const;

export interface SanVars {
  readonly storageIps: readonly string[];
  readonly dataDisks: readonly string[];
  readonly iqnPrefix: string;
  readonly chapSecret: Secret;
  readonly moosefsLeaveSpace: string;
}

interface RawVars {
  storage_ips: string[];
  data_disks?: string[];
  san_iqn_prefix?: string;
  /** The schema's `secret` keyword wraps a plain string too. */
  san_chap_secret: Secret;
  moosefs_leave_space?: string;
}

/** A host's variables, checked and typed (a UserError names the host and the field). */
export function sanVars(vars: Readonly<Record<string, unknown>>, host: string): SanVars {
  const v = validateSchema<RawVars>(SAN_VARS_SCHEMA, vars, { host });
  return {
    storageIps: v.storage_ips,
    dataDisks: v.data_disks ?? [],
    iqnPrefix: v.san_iqn_prefix ?? 'iqn.2024-12.tp2.b3',
    chapSecret: v.san_chap_secret,
    moosefsLeaveSpace: v.moosefs_leave_space ?? '256MiB',
  };
}
