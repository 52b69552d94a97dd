/**
 * Seed 000's storage network in one command:
 *
 *   npx tsx playbooks/san.ts [-i inventory/lab.yaml] [--check] [--diff]
 *
 * storage hosts: one RAID 1 array per chunk host from two of their data disks, exported as the LIO target
 *   iqn...:data-<chunk host> on both storage addresses, one ACL (with CHAP) for that chunk host only; 3260/tcp open.
 * chunk hosts: their initiator name, iscsid.conf (seed 000's timeouts), discovery and login on the 4 portals of
 *   their own target, dm-multipath with one alias per storage host (data_chunk1 from the first storage host,
 *   data_chunk2 from the second, ...), a GPT partition and XFS on each, mounted by .mount units on
 *   /mnt/data_chunk1, /mnt/data_chunk2, ...; a MooseFS chunkserver on those mounts; 9422/tcp open.
 * master: the MooseFS master, its web UI (9425), 9419-9421/tcp open, and a client mount on /mnt/mfs.
 * verify: every chunk host has exactly one multipath map per storage host with all its paths active and XFS
 *   mounted on it; MooseFS has every chunkserver connected; a file written on the client reads back the same.
 *   `--check --tags verify` runs only this play (and the storage hosts' target task it reads, in check mode):
 *   a read-only health check of a network already built.
 *
 * What crosses hosts comes from one place: the targets each storage host exports (IQN, portals, the LUN's unit
 * serial and so its WWID) are computed from the inventory by exportsOf(), which builds the storage hosts' tasks
 * and the chunk hosts' login, multipath and mount tasks alike; the verify play then compares what the initiators
 * see with the storage hosts' targetcli results. The WWIDs are known before any LUN exists (targetcli's wwn), so
 * check mode plans the initiators exactly too, up to the tasks on devices that the run itself creates.
 */
import { play, playbook, runIfMain, type Inventory, type Play, type PlaybookFactory, type Task, type TaskContext } from '../lib/index.ts';
import { UserError } from '../lib/errors.ts';
import type { Secret } from '../lib/secret.ts';
import {
  filesystem, firewalld, iscsiadm, lioWwid, mdadm, moosefsCgiserv, moosefsChunkserver, moosefsClient, moosefsFacts, moosefsMaster,
  multipathConf, partition, pkg, systemdMount, targetcli, unitSerial, type PartitionOutput, type TargetcliOutput,
} from '../modules/index.ts';
import { sanVerify } from './san/verify.ts';
import { SAN_VARS_SCHEMA, sanVars, type SanVars } from './san/vars.ts';

export { SAN_VARS_SCHEMA, sanVars, type SanVars } from './san/vars.ts';

/** One storage host's export for one chunk host. */
export interface SanExport {
  readonly storageHost: string;
  readonly chunkHost: string;
  /** data-chunk1: the array, the backstore and the target's name. */
  readonly name: string;
  readonly target: string;
  readonly initiator: string;
  readonly portals: readonly string[];
  readonly devices: readonly string[];
  readonly serial: string;
  readonly wwid: string;
  /** data_chunk1 for the first storage host, data_chunk2 for the second, ... */
  readonly alias: string;
  readonly mountPoint: string;
}

const storageHosts = (inv: Inventory): readonly string[] => inv.select('storage');
const chunkHosts = (inv: Inventory): readonly string[] => inv.select('chunks');

/** Every export of the network, from the inventory: the one source of what crosses hosts. */
export function exportsOf(inv: Inventory): SanExport[] {
  const chunks = chunkHosts(inv);
  return storageHosts(inv).flatMap((s, k) => {
    const v = sanVars(inv.host(s).vars, s);
    if (v.dataDisks.length < 2 * chunks.length) {
      throw new UserError(`lists ${v.dataDisks.length} disks; the ${chunks.length} chunk hosts need ${2 * chunks.length} (two per RAID 1 array)`, { host: s, field: 'data_disks' });
    }
    return chunks.map((c, i) => {
      const name = `data-${c}`;
      const serial = unitSerial(`${s}/${name}`);
      return {
        storageHost: s,
        chunkHost: c,
        name,
        target: `${v.iqnPrefix}:${name}`,
        initiator: `${v.iqnPrefix}:${c}`,
        portals: v.storageIps.map((ip) => `${ip}:3260`),
        devices: v.dataDisks.slice(2 * i, 2 * i + 2),
        serial,
        wwid: lioWwid(serial),
        alias: `data_chunk${k + 1}`,
        mountPoint: `/mnt/data_chunk${k + 1}`,
      };
    });
  });
}

const vars = (ctx: TaskContext): SanVars => sanVars(ctx.vars, ctx.host);
const chap = (ctx: TaskContext, chunk: string): { user: string; password: Secret } => ({ user: chunk, password: vars(ctx).chapSecret });
const byFamily = (ctx: TaskContext, debian: string[], redhat: string[]): string[] => (ctx.facts.os.family === 'redhat' ? redhat : debian);

function storagePlay(inv: Inventory, all: readonly SanExport[], targets: Task): Play {
  const chunks = chunkHosts(inv);
  const mine = (ctx: TaskContext) => all.filter((e) => e.storageHost === ctx.host);
  const arrays = chunks.map((c, i) =>
    mdadm.task(`RAID 1 data-${c}`, (ctx) => {
      const e = mine(ctx).find((x) => x.chunkHost === c);
      if (!e) throw new Error(`no export of ${ctx.host} for ${c}`);
      // update-initramfs once, with the last array (its plan sees an mdadm.conf newer than the initramfs).
      return { name: e.name, level: 1, devices: [...e.devices], updateInitramfs: i === chunks.length - 1 };
    }) as Task,
  );
  return play({
    name: 'storage hosts: RAID 1 arrays exported as iSCSI targets',
    hosts: 'storage',
    tasks: [
      pkg.task('storage packages', (ctx) => ({ name: byFamily(ctx, ['mdadm', 'targetcli-fb', 'firewalld'], ['mdadm', 'targetcli', 'firewalld']) })) as Task,
      firewalld.task('iSCSI port', { ports: ['3260/tcp'] }) as Task,
      ...arrays,
      targets,
    ],
  });
}

/** The storage hosts' targetcli task (the verify play reads its results). */
function targetTask(all: readonly SanExport[]): Task<unknown, TargetcliOutput> {
  const mine = (ctx: TaskContext) => all.filter((e) => e.storageHost === ctx.host);
  // Tagged verify too: the verify play reads its results (`--check --tags verify` is the read-only health check).
  return targetcli.task('iSCSI targets, one per chunk host', (ctx) => ({
    backstores: mine(ctx).map((e) => ({ name: e.name, path: `/dev/md/${e.name}`, wwn: e.serial })),
    targets: mine(ctx).map((e) => ({
      iqn: e.target,
      portals: e.portals.map((p) => ({ ip: p.slice(0, p.lastIndexOf(':')) })),
      luns: [{ backstore: e.name }],
      acls: [{ initiator: e.initiator, chap: chap(ctx, e.chunkHost) }],
    })),
  }), { tags: ['verify'] }) as Task<unknown, TargetcliOutput>;
}

function volumeTasks(e0: SanExport, mine: (ctx: TaskContext) => SanExport[]): Task[] {
  const exp = (ctx: TaskContext): SanExport => {
    const e = mine(ctx).find((x) => x.alias === e0.alias);
    if (!e) throw new Error(`${ctx.host} has no volume ${e0.alias}`);
    return e;
  };
  const gpt = partition.task(`GPT on ${e0.alias}`, (ctx) => ({ device: `/dev/mapper/${exp(ctx).alias}`, partitions: [{ number: 1, name: exp(ctx).alias, start: '1MiB', end: '100%' }] }));
  const node = (ctx: TaskContext): string => {
    const path = ctx.result<PartitionOutput>(gpt as Task<unknown, PartitionOutput>)?.partitions[0]?.path;
    if (!path) throw new Error(`no partition on /dev/mapper/${e0.alias} yet`);
    return path;
  };
  return [
    gpt as Task,
    filesystem.task(`XFS on ${e0.alias}`, (ctx) => ({ device: node(ctx), fstype: 'xfs', label: exp(ctx).alias })) as Task,
    // systemd gives a device 90 s to appear, counted from early boot; the map's partition comes after the iSCSI
    // logins and multipathd, which took longer than that on a loaded lab (chunk1: "Timed out waiting for device",
    // the mount and the chunkserver left down, no unit failed). 5 min covers a slow boot; the logins themselves
    // give up after about 2 min (node.session.initial_login_retry_max).
    systemdMount.task(`mount ${e0.mountPoint}`, (ctx) => ({ where: exp(ctx).mountPoint, what: node(ctx), type: 'xfs', deviceTimeout: 300 })) as Task,
  ];
}

function chunkPlay(inv: Inventory, all: readonly SanExport[]): Play {
  const mine = (ctx: TaskContext) => all.filter((e) => e.chunkHost === ctx.host);
  const first = all.filter((e) => e.chunkHost === chunkHosts(inv)[0]);
  return play({
    name: 'chunk hosts: iSCSI logins over both networks, multipath, XFS, mounts',
    hosts: 'chunks',
    tasks: [
      // The chunkserver's package too: one apt/dnf transaction per host (each costs minutes on a small VM), and a
      // plan that check mode makes exactly (a second package task would update the cache or not, depending on this one).
      pkg.task('chunk host packages', (ctx) => ({
        name: byFamily(ctx, ['open-iscsi', 'multipath-tools', 'kpartx', 'xfsprogs', 'parted', 'firewalld', 'moosefs-chunkserver'], ['iscsi-initiator-utils', 'device-mapper-multipath', 'xfsprogs', 'parted', 'firewalld', 'moosefs-chunkserver']),
      })) as Task,
      // Seed 000 put no_path_retry 100 in defaults, where it never applied: multipath-tools' built-in LIO-ORG entry
      // (no_path_retry 12: one minute of queueing) is nearer the map. A storage host that reboots takes every path
      // of its LUN away for longer than that (about 4 min on the lab), and XFS shuts down on the first failed log
      // write. In overrides, the 100 checks (500 s) hold the I/O until the target is back. Its features line goes:
      // multipathd ignores queue_if_no_path when no_path_retry is set, and says so (the seed's journal).
      multipathConf.task('multipath.conf: seed 000 defaults, one alias per LUN', (ctx) => ({
        defaults: { user_friendly_names: true, find_multipaths: 'yes', path_grouping_policy: 'failover' },
        overrides: { no_path_retry: 100 },
        multipaths: mine(ctx).map((e) => ({ wwid: e.wwid, alias: e.alias })),
      })) as Task,
      iscsiadm.task('initiator name, iscsid.conf, discovery and logins', (ctx) => {
        const m = mine(ctx);
        const v = vars(ctx);
        return {
          initiatorName: `${v.iqnPrefix}:${ctx.host}`,
          settings: { 'node.session.timeo.replacement_timeout': 0, 'node.conn[0].timeo.login_timeout': 15, 'node.conn[0].timeo.noop_out_interval': 5 },
          discovery: { portals: m.flatMap((e) => e.portals) },
          // The same IQN is served by every storage host: one target, all their portals.
          targets: [...new Set(m.map((e) => e.target))].map((iqn) => ({ iqn, portals: m.filter((e) => e.target === iqn).flatMap((e) => e.portals), chap: chap(ctx, ctx.host) })),
        };
      }) as Task,
      ...first.flatMap((e) => volumeTasks(e, mine)),
    ],
  });
}

function moosefsPlays(inv: Inventory, all: readonly SanExport[]): Play[] {
  const master = inv.select('master')[0];
  if (master === undefined) throw new UserError('group master has no host (the MooseFS master)');
  const masterIp = (ctx: TaskContext): string => {
    const ip = sanVars(ctx.varsOf(master), master).storageIps[0];
    if (!ip) throw new Error(`host ${master}: storage_ips is empty`);
    return ip;
  };
  const disks = (ctx: TaskContext) => all.filter((e) => e.chunkHost === ctx.host).map((e) => e.mountPoint);
  return [
    play({
      name: 'MooseFS master and web UI',
      hosts: 'master',
      tasks: [
        pkg.task('MooseFS master packages', { name: ['moosefs-master', 'moosefs-cgi', 'moosefs-cgiserv', 'moosefs-cli', 'moosefs-client', 'fuse3', 'firewalld'] }) as Task,
        firewalld.task('MooseFS master ports', { ports: ['9419-9421/tcp', '9425/tcp'] }) as Task,
        moosefsMaster.task('MooseFS master', { exports: [{ network: '*', path: '/', options: ['rw', 'alldirs', 'maproot=0'] }] }) as Task,
        moosefsCgiserv.task('MooseFS web UI', (ctx) => ({ masterHost: masterIp(ctx) })) as Task,
      ],
    }),
    play({
      name: 'MooseFS chunkservers on the multipath mounts',
      hosts: 'chunks',
      tasks: [
        firewalld.task('MooseFS chunkserver port', { ports: ['9422/tcp'] }) as Task,
        moosefsChunkserver.task('MooseFS chunkserver', (ctx) => ({ masterHost: masterIp(ctx), disks: disks(ctx), leaveSpaceDefault: vars(ctx).moosefsLeaveSpace })) as Task,
      ],
    }),
    play({
      name: 'MooseFS client',
      hosts: 'master',
      tasks: [
        moosefsFacts.task('every chunkserver connected', (ctx) => ({ masterHost: masterIp(ctx), wait: { chunkservers: chunkHosts(inv).length, timeoutSeconds: 300 } })) as Task,
        moosefsClient.task('MooseFS mounted on /mnt/mfs', (ctx) => ({ where: '/mnt/mfs', masterHost: masterIp(ctx) })) as Task,
      ],
    }),
  ];
}

function verifyPlay(inv: Inventory, all: readonly SanExport[], targets: Task<unknown, TargetcliOutput>): Play {
  return play({
    name: 'verify',
    hosts: 'chunks:master',
    tags: ['verify'],
    tasks: [
      sanVerify.task('the network works end to end', (ctx) => {
        const mine = all.filter((e) => e.chunkHost === ctx.host);
        const master = inv.select('master')[0] ?? '';
        // What the storage hosts really export (their targetcli results), not what this playbook asked for.
        const exported = mine.map((e) => {
          const r = ctx.result(targets, e.storageHost);
          const t = r?.targets.find((x) => x.iqn === e.target);
          return { storageHost: e.storageHost, target: e.target, portals: t?.portals ?? [], wwid: r?.backstores.find((b) => b.name === e.name)?.wwid ?? null };
        });
        return ctx.groups.includes('master')
          ? { role: 'master' as const, masterHost: sanVars(ctx.varsOf(master), master).storageIps[0] ?? '', chunkservers: chunkHosts(inv).length, mount: '/mnt/mfs' }
          : { role: 'chunk' as const, volumes: mine.map((e, i) => ({ alias: e.alias, wwid: exported[i]?.wwid ?? e.wwid, mountPoint: e.mountPoint, target: e.target, storageHost: e.storageHost, exported: (exported[i]?.portals.length ?? 0) > 0, paths: e.portals.length })) };
      }) as Task,
    ],
  });
}

export const san: PlaybookFactory = {
  name: 'san',
  description: "seed 000's storage network: RAID, LIO targets, initiators over two networks with multipath, XFS, MooseFS",
  defaultInventory: 'inventory/lab.yaml',
  build(inv) {
    const all = exportsOf(inv);
    const targets = targetTask(all);
    return playbook({
      name: 'san',
      description: this.description ?? '',
      varsSchema: SAN_VARS_SCHEMA,
      plays: [storagePlay(inv, all, targets as Task), chunkPlay(inv, all), ...moosefsPlays(inv, all), verifyPlay(inv, all, targets)],
    });
  },
};

await runIfMain(san, import.meta.url);
