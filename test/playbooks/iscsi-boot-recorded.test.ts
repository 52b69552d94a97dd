/**
 * What the boot lab recorded once playbooks/iscsi-boot.ts had built dl1's root volume (lab/record-boot.ts): the
 * rootfs gather on sto1 with the volume exported by LIO. The kept and exported kernel and initramfs agree; a
 * rebuild for another recipe is refused because the volume is in use.
 */
import test from 'ava';
import { Secret } from '../../lib/secret.ts';
import { parseRootfsGather, planRootfs, rootfs } from '../../modules/rootfs.ts';
import { ROOT_PACKAGES, rootUuid } from '../../playbooks/iscsi-boot.ts';
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
