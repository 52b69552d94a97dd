/**
 * rootfs: the real build script and gather script run by /bin/sh in a temporary directory, with every storage
 * tool (wipefs, sfdisk, losetup, mkfs.ext4, mount, debootstrap, chroot, ...) replaced by a stub that logs its
 * call, and blkid replaying recordings from the lab. No storage command runs on this machine; the scripts' own
 * shell (order, traps, files written, the marker) runs for real. The chain: build -> gather -> nothing to do; a
 * changed recipe, foreign content, a device in use, an interrupted build.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret } from '../../lib/secret.ts';
import {
  buildSpec, gatherCommand, parseRootfsGather, planRootfs, recipeChanges, recipeOf, rootfs, rootfsOutput, stateDir, type RootfsFacts, type RootfsParams,
} from '../../modules/rootfs.ts';
import { INITRAMFS_HOOK, buildScript, grubConfig, networkUnit, staticNetworkUnit } from '../../modules/rootfs/script.ts';
import { fixture } from '../helpers/fixtures.ts';

const TARBALL = 'the packages of a debootstrap tarball\n';
const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nfake-key-for-the-test\n-----END OPENSSH PRIVATE KEY-----\n';

/** The params, with the UUID of the ext4 filesystem the lab recorded (blkid/ext4): the gather replays it. */
function params(over: Partial<RootfsParams> = {}): RootfsParams {
  return rootfs.validate({
    device: '/dev/boot/dl1-root', suite: 'bookworm', include: ['linux-image-amd64', 'open-iscsi'],
    source: { tarball: 'http://10.0.2.100/debootstrap/bookworm.tgz', sha256: createHash('sha256').update(TARBALL).digest('hex') },
    hostname: 'dl1', uuid: '4276453b-86c3-4b73-a57c-086dd687320d', label: 'other', initiatorName: 'iqn.2024-12.tp2.b3:dl1',
    dhcp: ['eth0', '52:54:00:5B:33:00'], addresses: [{ interface: '52:54:00:5B:33:01', address: '10.3.1.51/24' }], authorizedKeys: ['ssh-ed25519 AAAAC3Nza lab'], sshHostKey: KEY, ...over,
  });
}

/** A sandbox: stub tools on PATH (each logs "name args" to calls.log), a state root, a fake mount table. */
function sandbox(t: ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-rootfs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const tool = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\nprintf '%s\\n' "${name} $*" >> "$SANDBOX/calls.log"\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  for (const name of ['wipefs', 'mkfs.ext4', 'sync']) tool(name, ':');
  tool('parted', ':');
  tool('losetup', '[ "$1" = -f ] && echo /dev/loop7; :');
  tool('mount', 'eval "t=\\${$#}"; echo "$t" >> "$SANDBOX/mounts"');
  tool('umount', 'eval "t=\\${$#}"; grep -vxF "$t" "$SANDBOX/mounts" > "$SANDBOX/mounts.new"; mv "$SANDBOX/mounts.new" "$SANDBOX/mounts"');
  tool('mountpoint', 'grep -qxF "$2" "$SANDBOX/mounts" 2>/dev/null');
  tool('wget', 'while [ "$1" != -O ]; do shift; done; printf "%s" "$TARBALL" > "$2"');
  // debootstrap: fail when asked to, else lay out a kernel and an initramfs the way Debian's packages do.
  tool('debootstrap', `[ -z "$FAIL_DEBOOTSTRAP" ] || { echo "E: Couldn't install the kernel" >&2; exit 1; }
for a; do [ -d "$a" ] && target=$a; done
mkdir -p "$target/boot" "$target/etc/ssh"
printf kernel > "$target/boot/vmlinuz-6.1.0-99-amd64"; printf initramfs > "$target/boot/initrd.img-6.1.0-99-amd64"
ln -s boot/vmlinuz-6.1.0-99-amd64 "$target/vmlinuz"; ln -s boot/initrd.img-6.1.0-99-amd64 "$target/initrd.img"
touch "$target/etc/ssh/ssh_host_rsa_key"`);
  tool('chroot', 'case "$2" in lsinitramfs) echo usr/sbin/iscsistart;; ssh-keygen) echo "ssh-ed25519 AAAApublic root@dl1";; esac');
  tool('python3', '[ -z "$BUSY" ] || { echo "Device or resource busy"; exit 1; }');
  const replay = (name: string) => fixture(name);
  const blkid = { whole: replay('blkid/gpt'), fs: replay('blkid/ext4') };
  tool('blkid', `case "$*" in *-O*) printf '%s' "$BLKID_FS"; exit "$BLKID_FS_RC";; *) printf '%s' "$BLKID_WHOLE"; exit "$BLKID_WHOLE_RC";; esac`);
  const root = join(dir, 'state');
  const env = (extra: Record<string, string> = {}) => ({
    ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}`, SANDBOX: dir, TARBALL,
    BLKID_WHOLE: blkid.whole.stdout, BLKID_WHOLE_RC: String(blkid.whole.exitCode), BLKID_FS: blkid.fs.stdout, BLKID_FS_RC: String(blkid.fs.exitCode), ...extra,
  });
  // `test -b` answers for the loop partition and the device (there is no block device here).
  const prelude = 'test() { case "$1 $2" in "-b /dev/loop7p1"|"-b /dev/boot/dl1-root") return 0;; esac; command test "$@"; }\n';
  const sh = (script: Buffer, extra: Record<string, string> = {}) => {
    try {
      return { code: 0, stdout: execFileSync('/bin/sh', ['-c', prelude + script.toString('utf8')], { env: env(extra), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }), stderr: '' };
    } catch (e) {
      const x = e as { status: number; stdout: string; stderr: string };
      return { code: x.status, stdout: x.stdout, stderr: x.stderr };
    }
  };
  const calls = () => (existsSync(join(dir, 'calls.log')) ? readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n') : []);
  const build = (p: RootfsParams, extra: Record<string, string> = {}) => sh(buildScript(buildSpec(p, root)).script, extra);
  const gather = (p: RootfsParams, extra: Record<string, string> = {}): RootfsFacts => parseRootfsGather(sh(gatherCommand(p, root).script, extra).stdout, p, 'sto1', root);
  return { dir, root, calls, build, gather, mounts: () => readFileSync(join(dir, 'mounts'), 'utf8').trim() };
}

test('build: label, partition, ext4 with the UUID, debootstrap from the checked tarball, identity, kernel kept, marker last', (t) => {
  const s = sandbox(t);
  const p = params();
  const r = s.build(p);
  t.is(r.code, 0, r.stderr);
  const calls = s.calls();
  const mnt = join(stateDir(p.device, s.root), 'mnt');
  const first = (prefix: string) => calls.findIndex((c) => c.startsWith(prefix));
  t.deepEqual(calls.slice(0, 4), ['wipefs -a -q /dev/boot/dl1-root', 'losetup -f --show -P /dev/boot/dl1-root', 'parted -s -a optimal /dev/loop7 mklabel msdos mkpart primary ext4 1MiB 100% set 1 boot on', 'mkfs.ext4 -q -F -U 4276453b-86c3-4b73-a57c-086dd687320d -L other /dev/loop7p1']);
  t.true(calls.includes(`debootstrap --variant=minbase --include=linux-image-amd64,open-iscsi --unpack-tarball=${s.root}/debootstrap-cache/${p.source && 'sha256' in p.source ? p.source.sha256 : ''}.tgz bookworm ${mnt}`));
  t.true(first('wget') < first('debootstrap'));
  t.true(first('losetup -d /dev/loop7') > first('umount'));
  t.is(s.mounts(), '', 'everything it mounted is unmounted');
  const etc = (f: string) => readFileSync(join(mnt, f), 'utf8');
  t.is(etc('etc/hostname'), 'dl1\n');
  t.is(etc('etc/fstab'), 'UUID=4276453b-86c3-4b73-a57c-086dd687320d\t/\text4\terrors=remount-ro\t0\t1\n');
  t.is(etc('etc/iscsi/initiatorname.iscsi'), 'InitiatorName=iqn.2024-12.tp2.b3:dl1\n');
  t.is(etc('etc/initramfs-tools/conf.d/sanbook'), 'MODULES=netboot\nRESUME=none\n');
  t.is(etc('etc/initramfs-tools/hooks/sanbook'), INITRAMFS_HOOK);
  t.is(statSync(join(mnt, 'etc/initramfs-tools/hooks/sanbook')).mode & 0o777, 0o755);
  t.false(existsSync(join(mnt, 'boot/grub/grub.cfg')), 'no boot loader unless asked');
  t.is(etc('etc/systemd/network/10-sanbook-0.network'), networkUnit('eth0'));
  t.is(etc('etc/systemd/network/10-sanbook-1.network'), '[Match]\nMACAddress=52:54:00:5b:33:00\n\n[Network]\nDHCP=ipv4\n');
  // The boot NIC: a fixed address networkd keeps; its unit sorts before systemd-network-generator's (70-*, 71-default).
  const boot = etc('etc/systemd/network/05-sanbook-static-0.network');
  t.is(boot, staticNetworkUnit({ interface: '52:54:00:5B:33:01', address: '10.3.1.51/24' }));
  t.regex(boot, /^\[Match\]\nMACAddress=52:54:00:5b:33:01\n\n\[Network\]\nAddress=10\.3\.1\.51\/24\nKeepConfiguration=yes\n/m);
  t.false(boot.includes('Gateway='));
  t.regex(staticNetworkUnit({ interface: 'eth1', address: '10.3.1.51/24', gateway: '10.3.1.254' }), /^Name=eth1$(.|\n)*^Gateway=10\.3\.1\.254$/m);
  t.is(etc('root/.ssh/authorized_keys'), 'ssh-ed25519 AAAAC3Nza lab\n');
  t.is(etc('etc/ssh/ssh_host_ed25519_key'), KEY);
  t.is(statSync(join(mnt, 'etc/ssh/ssh_host_ed25519_key')).mode & 0o777, 0o600);
  t.is(etc('etc/ssh/ssh_host_ed25519_key.pub'), 'ssh-ed25519 AAAApublic root@dl1\n');
  t.false(existsSync(join(mnt, 'etc/ssh/ssh_host_rsa_key')), 'the keys the package made are gone');
  const state = stateDir(p.device, s.root);
  t.is(readFileSync(join(state, 'vmlinuz'), 'utf8'), 'kernel');
  t.is(readFileSync(join(state, 'initrd.img'), 'utf8'), 'initramfs');
  const marker = JSON.parse(readFileSync(join(state, 'marker.json'), 'utf8')) as { state: string; kernel: string; recipe: Record<string, unknown> };
  t.like(marker, { state: 'built', kernel: '6.1.0-99-amd64' });
  t.false(JSON.stringify(marker).includes('fake-key'), 'the host key is in the marker');
  t.false(buildScript(buildSpec(p)).display.includes('fake-key'), 'the host key is in the shown command');
});

test("grub: the root filesystem's own GRUB in the device's MBR, a grub.cfg by UUID; refused without grub-pc in include", (t) => {
  const s = sandbox(t);
  const args = ['net.ifnames=0', 'iscsi_auto', 'ip=10.3.1.51:::255.255.255.0:dl1:eth1:off'];
  const p = params({ include: ['linux-image-amd64', 'open-iscsi', 'grub-pc'], grub: { kernelArgs: args } });
  t.is(s.build(p).code, 0);
  const mnt = join(stateDir(p.device, s.root), 'mnt');
  t.true(s.calls().includes(`chroot ${mnt} grub-install --target=i386-pc --modules=part_msdos ext2 /dev/loop7`));
  t.is(readFileSync(join(mnt, 'boot/grub/grub.cfg'), 'utf8'), grubConfig(p.uuid, args));
  t.regex(grubConfig(p.uuid, args), /^menuentry '[^']+' \{\n(  .*\n)*  linux \/vmlinuz root=UUID=4276453b-86c3-4b73-a57c-086dd687320d ro net\.ifnames=0 iscsi_auto ip=10\.3\.1\.51:::255\.255\.255\.0:dl1:eth1:off\n  initrd \/initrd\.img\n\}$/m);
  t.regex(grubConfig(p.uuid, args), /^set default=0$/m);
  t.is(readFileSync(join(mnt, 'etc/default/grub.d/sanbook.cfg'), 'utf8'), 'GRUB_CMDLINE_LINUX="net.ifnames=0 iscsi_auto ip=10.3.1.51:::255.255.255.0:dl1:eth1:off"\nGRUB_TIMEOUT=1\n');
  t.deepEqual(recipeChanges(recipeOf(params()), recipeOf(p)), ['include', 'grub']);
  t.throws(() => planRootfs(params({ grub: {} }), s.gather(params())), { message: /add grub-pc to include/ });
});

test('gather after the build: nothing to do; the exports are copied once', (t) => {
  const s = sandbox(t);
  const p = params({ exportDir: '/srv/tftp/sanbook/dl1' });
  t.is(s.build(p).code, 0);
  const f = s.gather(p);
  t.like(f, { exists: true, busy: null, marker: { state: 'built', uuid: p.uuid } });
  t.is(f.kept.vmlinuz, createHash('sha256').update('kernel').digest('hex'));
  t.is(f.exported.vmlinuz, null);
  const plan = planRootfs(p, f);
  t.deepEqual(plan.map((c) => c.summary), ["copy dl1's kernel and initramfs to /srv/tftp/sanbook/dl1"]);
  t.deepEqual(planRootfs(params(), s.gather(params())), [], 'built for this recipe: nothing to do');
  t.like(rootfsOutput(p, f), { built: true, uuid: p.uuid, kernel: '6.1.0-99-amd64', vmlinuz: '/srv/tftp/sanbook/dl1/vmlinuz' });
});

test('another recipe: a destructive rebuild naming what changed; in use: refused even with force', (t) => {
  const s = sandbox(t);
  t.is(s.build(params()).code, 0);
  const changed = params({ hostname: 'dl2', include: ['linux-image-amd64', 'open-iscsi', 'less'] });
  const [c] = planRootfs(changed, s.gather(changed));
  t.regex(c?.summary ?? '', /^build a Debian bookworm root filesystem for dl2 on \/dev\/boot\/dl1-root \(built for another recipe \(include, hostname changed\)\)$/);
  t.is(c?.destructive, '/dev/boot/dl1-root holds the root filesystem built for dl1 (include, hostname changed): rebuilding erases it and whatever the client wrote on it');
  t.throws(() => planRootfs(changed, s.gather(changed, { BUSY: '1' })), { message: /^\/dev\/boot\/dl1-root is in use \(Device or resource busy: .*Remove its LUN or stop the client first$/ });
  t.deepEqual(planRootfs(params(), s.gather(params(), { BUSY: '1' })), [], 'a client running from its own build is no change');
});

test('a failed build unmounts and detaches what it set up, and counts as unfinished: rebuilt without force', (t) => {
  const s = sandbox(t);
  const p = params();
  const r = s.build(p, { FAIL_DEBOOTSTRAP: '1' });
  t.not(r.code, 0);
  t.regex(r.stderr, /Couldn't install the kernel/);
  t.is(s.mounts(), '');
  t.is(s.calls().at(-1), 'losetup -d /dev/loop7');
  const [c] = planRootfs(p, s.gather(p));
  t.regex(c?.summary ?? '', /\(an earlier build did not finish\)$/);
  t.is(c?.destructive, undefined);
});

test('a wrong tarball checksum stops the build before debootstrap', (t) => {
  const s = sandbox(t);
  const r = s.build(params({ source: { tarball: 'http://10.0.2.100/x.tgz', sha256: 'f'.repeat(64) } }));
  t.not(r.code, 0);
  t.regex(r.stderr, /http:\/\/10\.0\.2\.100\/x\.tgz: its sha256 is not f{64}/);
  t.false(s.calls().some((c) => c.startsWith('debootstrap')));
});

test('foreign content is destructive, blank is not; a missing device and missing tools are clear errors', (t) => {
  const s = sandbox(t);
  const p = params();
  const foreign = s.gather(p);
  t.is(foreign.marker, null);
  const [c] = planRootfs(p, foreign);
  t.is(c?.destructive, '/dev/boot/dl1-root holds a gpt partition table and an ext4 filesystem labelled other: building the root filesystem erases it');
  const blank = fixture('blkid/blank');
  const none = s.gather(p, { BLKID_WHOLE: blank.stdout, BLKID_WHOLE_RC: String(blank.exitCode), BLKID_FS: blank.stdout, BLKID_FS_RC: String(blank.exitCode) });
  t.is(planRootfs(p, none)[0]?.destructive, undefined);
  t.throws(() => planRootfs(p, { ...none, missingTools: ['debootstrap'] }), { message: /needs debootstrap on this host/ });
  t.throws(() => planRootfs(p, { ...none, exists: false }), { message: '/dev/boot/dl1-root does not exist (not a block device)' });
  t.throws(() => planRootfs(params({ dhcp: ['eth0', '52:54:00:5b:33:01'] }), none), { message: '52:54:00:5b:33:01 is in both dhcp and addresses: an interface is configured one way' });
  t.throws(() => rootfs.validate({ ...p, addresses: [{ interface: 'eth1', address: '10.3.1.51' }] }), { message: /field addresses\[0\]\.address: must match pattern/ });
});

test('the recipe: every param that changes the image, the host key by its hash', (t) => {
  const r = recipeOf(params());
  t.is(r['sshHostKey'], createHash('sha256').update(KEY).digest('hex'));
  t.deepEqual(recipeChanges(r, recipeOf(params({ sshHostKey: new Secret(`${KEY}x`) }))), ['sshHostKey']);
  t.deepEqual(recipeChanges(r, recipeOf(params({ include: ['open-iscsi', 'linux-image-amd64'] }))), [], 'the order of include does not matter');
  t.deepEqual(recipeChanges(r, recipeOf(params({ exportDir: '/srv/tftp' }))), [], 'exportDir changes no image');
  t.deepEqual(recipeChanges(r, recipeOf(params({ addresses: [{ interface: 'eth1', address: '10.3.1.52/24' }] }))), ['addresses']);
  // A volume built before addresses existed has no unit for its boot NIC: rebuilt (with force), naming why.
  const { addresses: _, ...older } = r;
  t.deepEqual(recipeChanges(older, r), ['addresses']);
  t.is(stateDir('/dev/boot/dl1-root'), '/var/lib/sanbook/rootfs/dev-boot-dl1-root');
});
