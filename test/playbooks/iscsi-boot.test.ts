/**
 * playbooks/iscsi-boot.ts without any host: built from inventory/boot-example.yaml (documentation addresses,
 * parsed and type-checked here, never contacted) and from broken inventories, which are refused before anything
 * runs with a message naming the host and the field; the boot entry it renders in both modes.
 */
import test from 'ava';
import { HostContexts } from '../../lib/context.ts';
import { loadInventory, limitHosts, type Inventory } from '../../lib/inventory.ts';
import type { Playbook } from '../../lib/playbook.ts';
import { resolveParams } from '../../lib/module.ts';
import { rootfs, type RootfsParams } from '../../modules/rootfs.ts';
import { preflight } from '../../lib/preflight.ts';
import { inventoryWith } from '../helpers/inventory-file.ts';
import { Secret } from '../../lib/secret.ts';
import { renderTemplate } from '../../lib/template.ts';
import { bootClient, bootClients, entryName, ipArgument, iscsiBoot, rootUuid } from '../../playbooks/iscsi-boot.ts';
import { netmask } from '../../playbooks/iscsi-boot/vars.ts';

function check(book: Playbook, inv: Inventory): void {
  preflight(book, inv, book.plays.map((p) => limitHosts(inv, inv.select(p.hosts), undefined)), new HostContexts(inv));
}

test('boot-example.yaml: typed; the server play builds the volume, the root, TFTP, the entry, then the target', async (t) => {
  const inv = await loadInventory('inventory/boot-example.yaml');
  const book = iscsiBoot.build(inv);
  t.notThrows(() => check(book, inv));
  t.deepEqual(book.plays.map((p) => [p.hosts, p.tags ?? []]), [['myhost', []], ['client1', ['never', 'verify']]]);
  t.deepEqual(book.plays[0]?.tasks.map((x) => x.module.name), ['package', 'lvm', 'rootfs', 'setting', 'service', 'file', 'template', 'targetcli']);
  const [c] = bootClients(inv);
  t.like(c, { host: 'client1', server: 'myhost', mode: 'initramfs', bootAddress: '192.0.2.51', bootPrefix: 24, rootSize: '20G', sshHostKey: null });
  t.true(c?.chapSecret instanceof Secret);
  t.is(entryName('00:aa:bb:cc:dd:ee'), 'sanbook/00-aa-bb-cc-dd-ee.ipxe');
});

test('rootUuid: stable, shaped like a version 4 UUID, one per client and server', (t) => {
  const u = rootUuid('sto1', 'dl1');
  t.is(u, rootUuid('sto1', 'dl1'));
  t.regex(u, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.not(u, rootUuid('sto1', 'dl2'));
  t.not(u, rootUuid('sto2', 'dl1'));
  t.is(netmask(24), '255.255.255.0');
  t.is(netmask(20), '255.255.240.0');
});

test("the root volume's params: the boot NIC kept by networkd (by MAC), and GRUB's ip= the same as the classic entry's", async (t) => {
  const inv = await loadInventory('inventory/boot-example.yaml');
  const book = iscsiBoot.build(inv);
  const task = book.plays[0]?.tasks.find((x) => x.module.name === 'rootfs');
  if (!task) return t.fail('no rootfs task');
  const [c] = bootClients(inv);
  if (!c) return t.fail('no client');
  const p = resolveParams(task, new HostContexts(inv).context(c.server, book.plays[0])) as RootfsParams;
  t.deepEqual(p.addresses, [{ interface: c.bootMac, address: `${c.bootAddress}/${c.bootPrefix}` }]);
  t.deepEqual(p.grub?.kernelArgs?.slice(0, 3), ['net.ifnames=0', 'iscsi_auto', ipArgument(c)]);
  t.false(p.grub?.kernelArgs?.includes('ip=off'), 'ip=off makes a catch-all networkd unit that flushes the boot NIC');
  t.notThrows(() => rootfs.validate(p));
});

const dl1 = bootClient({
  iscsi_boot: {
    server: 'sto1', initiator: 'iqn.2024-12.tp2.b3:dl1', target: 'iqn.2024-12.tp2.b3:boot-dl1', portal: '10.3.1.1', chap_user: 'dl1',
    chap_secret: new Secret('entry-secret-1'), boot_mac: '52:54:00:5B:33:01', boot_address: '10.3.1.51/24', boot_interface: 'eth1',
  },
}, 'dl1');
if (!dl1) throw new Error('dl1 is no diskless client');
const DL1 = dl1;

const entry = (sanboot: boolean) =>
  renderTemplate('ipxe-boot.ipxe.hbs', {
    client: 'dl1', sanboot, initiator: 'iqn.2024-12.tp2.b3:dl1', target: 'iqn.2024-12.tp2.b3:boot-dl1', portal: '10.3.1.1', chapUser: 'dl1',
    chapSecret: new Secret('entry-secret-1'), tftpAddress: '10.3.1.1', dir: 'sanbook/dl1', uuid: rootUuid('sto1', 'dl1'),
    ip: ipArgument(DL1), kernelArgs: ['console=ttyS0,115200'],
  });

test("the boot NIC's ip=: static, on its interface, no autoconfiguration; never ip=off", (t) => {
  t.is(ipArgument(DL1), 'ip=10.3.1.51:::255.255.255.0:dl1:eth1:off');
});

test('the boot entry: the classic ISCSI_* parameters, or iPXE sanboot; the secret only in the file, never in its display', (t) => {
  const classic = entry(false);
  const kernel = classic.content.split('\n').find((l) => l.startsWith('kernel '));
  t.is(
    kernel,
    `kernel tftp://10.3.1.1/sanbook/dl1/vmlinuz root=UUID=${rootUuid('sto1', 'dl1')} ro net.ifnames=0 ip=10.3.1.51:::255.255.255.0:dl1:eth1:off ` +
      'ISCSI_INITIATOR=iqn.2024-12.tp2.b3:dl1 ISCSI_TARGET_NAME=iqn.2024-12.tp2.b3:boot-dl1 ISCSI_TARGET_IP=10.3.1.1 ISCSI_TARGET_PORT=3260 ' +
      'ISCSI_TARGET_GROUP=1 ISCSI_USERNAME=dl1 ISCSI_PASSWORD=entry-secret-1 console=ttyS0,115200',
  );
  t.regex(classic.content, /^initrd tftp:\/\/10\.3\.1\.1\/sanbook\/dl1\/initrd\.img$/m);
  t.false(classic.content.includes('sanboot'));
  const san = entry(true);
  t.regex(san.content, /^sanboot iscsi:10\.3\.1\.1::3260:0:iqn\.2024-12\.tp2\.b3:boot-dl1$/m);
  t.regex(san.content, /^set password entry-secret-1$/m);
  t.false(san.content.includes('kernel '));
  for (const r of [classic, san]) {
    t.true(r.content.startsWith('#!ipxe\n'));
    t.false(r.display.includes('entry-secret-1'));
  }
});

const GOOD = `all:
  hosts:
    s: { iscsi_boot_server: { pvs: [/dev/sdb], tftp_address: 10.9.1.1, debootstrap: { mirror: "http://deb.debian.org/debian" } } }
    c:
      iscsi_boot: { server: s, initiator: "iqn.2024-12.tp2.b3:c", target: "iqn.2024-12.tp2.b3:boot-c", portal: 10.9.1.1, chap_user: c, chap_secret: !secret abcdefghijkl12, boot_mac: "52:54:00:00:00:01", boot_address: 10.9.1.50/24, boot_interface: eth1 }
`;

test('bad inventories are refused before anything runs, naming host and field; the secret is never in the message', async (t) => {
  const good = await inventoryWith(t, GOOD);
  t.notThrows(() => check(iscsiBoot.build(good), good));
  const cases: [string, string, RegExp][] = [
    ['server: s,', 'server: nosuch,', /^host c, field iscsi_boot\.server: names boot server "nosuch", which is not in the inventory/],
    ['    s: { iscsi_boot_server: { pvs: [/dev/sdb], tftp_address: 10.9.1.1, debootstrap: { mirror: "http://deb.debian.org/debian" } } }\n', '    s: { ansible_host: 127.0.0.1 }\n', /^host s, field iscsi_boot_server: is the boot server of c but has no iscsi_boot_server/],
    ['"iqn.2024-12.tp2.b3:c"', '"iqn.2024-12.tp2.b3 c"', /host c, field iscsi_boot\.initiator/],
    ['"52:54:00:00:00:01"', '"52:54:00:00:00"', /host c, field iscsi_boot\.boot_mac/],
    ['10.9.1.50/24', '10.9.1.50', /host c, field iscsi_boot\.boot_address/],
    ['abcdefghijkl12', 'short', /host c, field iscsi_boot\.chap_secret/],
    ['pvs: [/dev/sdb]', 'pvs: [sdb]', /host s, field iscsi_boot_server\.pvs/],
    ['boot_interface: eth1 }', 'boot_interface: eth1, root_size: lots }', /host c, field iscsi_boot\.root_size/],
    ['boot_interface: eth1 }', 'boot_interface: eth1, colour: blue }', /host c, field iscsi_boot.*colour/],
    ['boot_interface: eth1 }', 'boot_interface: eth1, dhcp: [eth0, eth1] }', /^host c, field iscsi_boot\.dhcp: names the boot NIC \(eth1\)/],
  ];
  for (const [from, to, message] of cases) {
    t.true(GOOD.includes(from), from);
    const inv = await inventoryWith(t, GOOD.replace(from, to));
    const e = t.throws(() => check(iscsiBoot.build(inv), inv), { message }, to);
    t.false(e?.message.includes('short') ?? true, 'the secret is in the message');
  }
  const none = await inventoryWith(t, 'all:\n  hosts:\n    s: {}\n');
  t.throws(() => iscsiBoot.build(none), { message: /no host has iscsi_boot/ });
});
