/**
 * Seed 002's diskless machine, with today's tools, in one command:
 *
 *   npx tsx playbooks/iscsi-boot.ts [-i inventory/lab.yaml] [--check] [--diff]
 *
 * boot servers (the hosts the clients' iscsi_boot.server names): an LVM volume group on their disks with one root
 *   volume per client; on it a Debian root filesystem made by debootstrap with the client's hostname, initiator
 *   name, SSH keys and an initramfs that logs in to iSCSI; the client's kernel and initramfs in the TFTP root;
 *   tftpd-hpa on the boot network's address; one iPXE boot entry per client, named after its boot NIC's MAC
 *   (sanbook/52-54-00-5b-33-01.ipxe): classic initramfs parameters (ISCSI_TARGET_NAME, ISCSI_TARGET_IP,
 *   ISCSI_INITIATOR, ISCSI_USERNAME, ISCSI_PASSWORD, ISCSI_TARGET_GROUP) or iPXE's sanboot; and the LIO target
 *   that exports the volume to the client's initiator only, with CHAP.
 * clients (tagged never and verify: run with `--tags verify` once they are up): the root filesystem is the
 *   iSCSI volume of their target.
 *
 * The root volume is built once: a second run finds it built for the same recipe and leaves it (and what the client
 * wrote on it) alone. The target task comes after the build, which needs the volume not to be exported.
 */
import { play, playbook, runIfMain, type Inventory, type Play, type PlaybookFactory, type Task, type TaskContext } from '../lib/index.ts';
import { UserError } from '../lib/errors.ts';
import { file, lvm, pkg, rootfs, service, setting, targetcli, template } from '../modules/index.ts';
import { iscsiBootVerify } from './iscsi-boot/verify.ts';
import {
  BOOT_VARS_SCHEMA, ROOT_PACKAGES, ROOT_SUITE, ROOT_VARIANT, bootClient, bootServer, ipArgument, rootUuid, type BootClient, type BootServer,
} from './iscsi-boot/vars.ts';

export { BOOT_VARS_SCHEMA, ROOT_PACKAGES, bootClient, bootServer, ipArgument, rootUuid, type BootClient, type BootServer } from './iscsi-boot/vars.ts';

/** Where a client's files are, under the TFTP root: its kernel and initramfs, and its boot entry. */
export const clientDir = (client: string): string => `sanbook/${client}`;
export const entryName = (mac: string): string => `sanbook/${mac.replace(/:/g, '-')}.ipxe`;
const lvName = (client: string): string => `${client}-root`;

/** The clients of the inventory, typed, each checked against its server. */
export function bootClients(inv: Inventory): BootClient[] {
  const clients = inv.select('all').flatMap((h) => {
    const c = bootClient(inv.host(h).vars, h);
    return c ? [c] : [];
  });
  for (const c of clients) {
    if (!inv.select('all').includes(c.server)) throw new UserError(`names boot server "${c.server}", which is not in the inventory`, { host: c.host, field: 'iscsi_boot.server' });
    if (!bootServer(inv.host(c.server).vars, c.server)) throw new UserError(`is the boot server of ${c.host} but has no iscsi_boot_server`, { host: c.server, field: 'iscsi_boot_server' });
  }
  return clients;
}

function serverPlay(servers: readonly string[], clients: readonly BootClient[]): Play {
  const server = (ctx: TaskContext): BootServer => {
    const s = bootServer(ctx.vars, ctx.host);
    if (!s) throw new UserError('has no iscsi_boot_server', { host: ctx.host, field: 'iscsi_boot_server' });
    return s;
  };
  const mine = (ctx: TaskContext) => clients.filter((c) => c.server === ctx.host);
  const onServer = (c: BootClient) => ({ when: (ctx: TaskContext) => ctx.host === c.server });
  const roots = clients.map((c) =>
    rootfs.task(`root filesystem of ${c.host}`, (ctx) => {
      const s = server(ctx);
      return {
        device: `/dev/${s.vg}/${lvName(c.host)}`, suite: ROOT_SUITE, variant: ROOT_VARIANT, include: [...ROOT_PACKAGES], source: s.source,
        hostname: c.host, uuid: rootUuid(c.server, c.host), initiatorName: c.initiator, dhcp: [...c.dhcp], authorizedKeys: [...c.authorizedKeys],
        // The boot NIC by its MAC: networkd keeps its address from the moment it starts (the root is behind it).
        addresses: [{ interface: c.bootMac, address: `${c.bootAddress}/${c.bootPrefix}` }],
        ...(c.sshHostKey ? { sshHostKey: c.sshHostKey } : {}), exportDir: `${s.tftpRoot}/${clientDir(c.host)}`,
        // sanboot: GRUB on the volume boots the kernel, whose initramfs logs in with what iPXE left in the iBFT.
        grub: { kernelArgs: ['net.ifnames=0', 'iscsi_auto', ipArgument(c), ...kernelArgs(ctx, c)] },
      };
    }, onServer(c)) as Task,
  );
  const entries = clients.map((c) =>
    template.task(`boot entry of ${c.host}`, (ctx) => {
      const s = server(ctx);
      return {
        path: `${s.tftpRoot}/${entryName(c.bootMac)}`, template: 'ipxe-boot.ipxe.hbs', owner: 'tftp', group: 'root', mode: '0400',
        vars: {
          client: c.host, sanboot: c.mode === 'sanboot', initiator: c.initiator, target: c.target, portal: c.portal, chapUser: c.chapUser, chapSecret: c.chapSecret,
          tftpAddress: s.tftpAddress, dir: clientDir(c.host), uuid: rootUuid(c.server, c.host), ip: ipArgument(c), kernelArgs: kernelArgs(ctx, c),
        },
      };
    }, onServer(c)) as Task,
  );
  return play({
    name: 'boot servers: root volumes, TFTP, iSCSI targets',
    hosts: servers.join(':'),
    tasks: [
      pkg.task('boot server packages', { name: ['lvm2', 'debootstrap', 'parted', 'tftpd-hpa', 'targetcli-fb', 'python3'] }) as Task,
      lvm.task('volume group of the root volumes', (ctx) => {
        const s = server(ctx);
        return { vg: s.vg, pvs: [...s.pvs], lvs: mine(ctx).map((c) => ({ name: lvName(c.host), size: c.rootSize })) };
      }) as Task,
      ...roots,
      // --permissive: tftpd-hpa serves only world-readable files unless told so; the boot entries, which hold the
      // CHAP secret, are tftp's alone (0400). TFTP has no authentication: whoever reaches the boot network can
      // fetch an entry, which is why classic mode's secret is only as private as that network (sanboot's too).
      setting.task('TFTP on the boot network', (ctx) => ({
        path: '/etc/default/tftpd-hpa', separator: '=',
        settings: { TFTP_USERNAME: '"tftp"', TFTP_DIRECTORY: `"${server(ctx).tftpRoot}"`, TFTP_ADDRESS: `"${server(ctx).tftpAddress}:69"`, TFTP_OPTIONS: '"--secure --permissive"' },
      }), { notify: 'restart tftpd-hpa' }) as Task,
      service.task('tftpd-hpa running', { name: 'tftpd-hpa', state: 'started', enabled: true }) as Task,
      file.task('boot entries directory', (ctx) => ({ path: `${server(ctx).tftpRoot}/sanbook`, state: 'directory', mode: '0755' })) as Task,
      ...entries,
      targetcli.task('root volumes exported, one target per client', (ctx) => {
        const s = server(ctx);
        return {
          backstores: mine(ctx).map((c) => ({ name: lvName(c.host), path: `/dev/${s.vg}/${lvName(c.host)}` })),
          targets: mine(ctx).map((c) => ({
            iqn: c.target,
            portals: [{ ip: c.portal }],
            luns: [{ backstore: lvName(c.host) }],
            acls: [{ initiator: c.initiator, chap: { user: c.chapUser, password: c.chapSecret } }],
          })),
        };
      }) as Task,
    ],
    handlers: [service.task('restart tftpd-hpa', { name: 'tftpd-hpa', state: 'restarted' }) as Task],
  });
}

/** Extra kernel arguments of a client (inventory: iscsi_boot_kernel_args, e.g. console=ttyS0,115200). */
function kernelArgs(ctx: TaskContext, c: BootClient): string[] {
  const v = ctx.varsOf(c.host)['iscsi_boot_kernel_args'];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((a): a is string => typeof a === 'string' && /^[^\s'"\\]+$/.test(a))) {
    throw new UserError('must be a list of kernel arguments without spaces or quotes', { host: c.host, field: 'iscsi_boot_kernel_args' });
  }
  return v;
}

function verifyPlay(clients: readonly BootClient[]): Play {
  return play({
    name: 'verify: the clients run from their iSCSI root',
    hosts: clients.map((c) => c.host).join(':'),
    tags: ['never', 'verify'],
    tasks: [
      iscsiBootVerify.task('root filesystem on the iSCSI target', (ctx) => {
        const c = clients.find((x) => x.host === ctx.host);
        if (!c) throw new Error(`${ctx.host} is no diskless client`);
        return { target: c.target, portal: c.portal, uuid: rootUuid(c.server, c.host) };
      }) as Task,
    ],
  });
}

export const iscsiBoot: PlaybookFactory = {
  name: 'iscsi-boot',
  description: "seed 002's diskless machine: a root volume made by debootstrap on LVM, exported by LIO with CHAP, booted by iPXE",
  defaultInventory: 'inventory/lab.yaml',
  build(inv) {
    const clients = bootClients(inv);
    if (clients.length === 0) throw new UserError('no host has iscsi_boot: nothing to boot (see playbooks/iscsi-boot.ts)');
    const servers = [...new Set(clients.map((c) => c.server))];
    return playbook({
      name: 'iscsi-boot',
      description: this.description ?? '',
      varsSchema: BOOT_VARS_SCHEMA,
      plays: [serverPlay(servers, clients), verifyPlay(clients)],
    });
  },
};

await runIfMain(iscsiBoot, import.meta.url);
