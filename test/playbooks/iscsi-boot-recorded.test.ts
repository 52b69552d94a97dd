/**
 * What the boot lab recorded once playbooks/iscsi-boot.ts had built dl1's root volume (lab/record-boot.ts): the
 * rootfs gather on sto1 with the volume exported by LIO. The kept and exported kernel and initramfs agree; a
 * rebuild for another recipe is refused because the volume is in use. And the verify play's gather on dl1, booted
 * by iPXE's sanboot: its root on the session to its target, iscsid running; then with iscsid stopped.
 */
import test from 'ava';
import { Secret } from '../../lib/secret.ts';
import { parseRootfsGather, planRootfs, rootfs } from '../../modules/rootfs.ts';
import { ROOT_PACKAGES, rootUuid } from '../../playbooks/iscsi-boot.ts';
import { iscsiBootVerify, parseVerifyGather, verifyProblems } from '../../playbooks/iscsi-boot/verify.ts';
import { fixture } from '../helpers/fixtures.ts';

test('rootfs on sto1 with the volume built and exported: nothing to do; a rebuild is refused while it is in use', (t) => {
  const f = fixture('rootfs/gather-built-exported');
  const params = (over: Record<string, unknown> = {}) => rootfs.validate({
    device: '/dev/boot/dl1-root', suite: 'bookworm', source: { mirror: 'http://unused' }, hostname: 'dl1', uuid: rootUuid('sto1', 'dl1'),
    include: [...ROOT_PACKAGES], sshHostKey: new Secret('unused'), exportDir: '/srv/tftp/sanbook/dl1', ...over,
  });
  const facts = parseRootfsGather(f.stdout, params(), 'sto1');
  t.like(facts, { exists: true, marker: { state: 'built', uuid: rootUuid('sto1', 'dl1') }, filesystem: { type: 'ext4', uuid: rootUuid('sto1', 'dl1') }, signature: { ptType: 'dos' } });
  t.regex(facts.busy ?? '', /busy/i, 'LIO holds the volume: the exclusive open fails');
  t.is(facts.kept.vmlinuz, facts.exported.vmlinuz);
  t.is(facts.kept.initrd, facts.exported.initrd);
  t.not(facts.kept.vmlinuz, null);
  // The recorded marker's recipe is the lab's (a tarball source, the lab's key): the playbook's own recipe is what
  // the lab test proved converged; here the same facts under another recipe must be refused as in use.
  t.throws(() => planRootfs(params({ hostname: 'dl9' }), facts), { message: /is in use \(Device or resource busy/ });
});

const WANT = { target: 'iqn.2024-12.tp2.b3:boot-dl1', portal: '10.3.1.1', uuid: rootUuid('sto1', 'dl1') };

test('verify on dl1 (sanbooted): the root is the volume of its target on its portal, writable, iscsid active: nothing to say', (t) => {
  const f = parseVerifyGather(fixture('iscsi-boot/verify-gather-dl1').stdout, 'dl1');
  t.like(f, {
    source: '/dev/sda1', uuid: WANT.uuid, disk: 'sda', session: 'session1', targetName: WANT.target, address: WANT.portal,
    rootOptions: 'rw,relatime,errors=remount-ro', iscsid: 'active',
  });
  t.deepEqual(verifyProblems(WANT, f), []);
  t.deepEqual(iscsiBootVerify.plan(WANT, f), []);
  // The same facts against another client's expectations: each difference named.
  t.deepEqual(verifyProblems({ ...WANT, target: 'iqn.2024-12.tp2.b3:boot-dl2', portal: '10.3.2.1' }, f), [
    "the root disk's session session1 is to iqn.2024-12.tp2.b3:boot-dl1, not iqn.2024-12.tp2.b3:boot-dl2",
    "the root disk's session session1 is on 10.3.1.1, not 10.3.2.1",
  ]);
  t.regex(verifyProblems({ ...WANT, uuid: rootUuid('sto1', 'dl2') }, f).join(), /^the root filesystem \(\/dev\/sda1\) has UUID f5692623/);
  // A root ext4 put back read-only after I/O errors (errors=remount-ro) is what session 9's failed sanboot came to.
  t.deepEqual(verifyProblems(WANT, { ...f, rootOptions: 'ro,relatime,errors=remount-ro' }), [
    'the root filesystem is mounted ro,relatime,errors=remount-ro: read-only (ext4 remounts it so after I/O errors)',
  ]);
});

test('verify on dl1 with iscsid stopped: the session still carries the root, but nothing would recover it: the play fails', (t) => {
  const f = parseVerifyGather(fixture('iscsi-boot/verify-gather-dl1-iscsid-stopped').stdout, 'dl1');
  t.like(f, { session: 'session1', targetName: WANT.target, iscsid: 'inactive', rootOptions: 'rw,relatime,errors=remount-ro' });
  t.deepEqual(verifyProblems(WANT, f), ['iscsid is inactive: the session under the root cannot recover from a connection error']);
  t.throws(() => iscsiBootVerify.plan(WANT, f), { message: 'dl1: iscsid is inactive: the session under the root cannot recover from a connection error' });
});
