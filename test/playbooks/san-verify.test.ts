/**
 * The verify play of playbooks/san.ts (playbooks/san/verify.ts): its chunk-host gather script run by /bin/sh with
 * multipathd, findmnt and ls replaying what they printed on chunk1 of the lab once playbooks/san.ts had built
 * seed 000's network (lab/record-san.ts), and the volumes computed by the playbook from inventory/tp2.yaml (the
 * same host names as the lab, so the same WWIDs). A network that works plans nothing; an XFS that shut down
 * (still mounted, its directory gives EIO) fails the play naming the host and the mount.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from '../../lib/connection/types.ts';
import { loadInventory } from '../../lib/inventory.ts';
import { fixture, runStubbed, type Reply, type Stubs } from '../helpers/blockdev-stubs.ts';
import { exportsOf } from '../../playbooks/san.ts';
import { sanVerify, type SanVerifyParams } from '../../playbooks/san/verify.ts';

const reply = (name: string): Reply => {
  const f = fixture(name);
  return { stdout: f.stdout, stderr: f.stderr, exitCode: f.exitCode };
};

async function chunk1Params(): Promise<SanVerifyParams> {
  const mine = exportsOf(await loadInventory('inventory/tp2.yaml')).filter((e) => e.chunkHost === 'chunk1');
  return {
    role: 'chunk',
    volumes: mine.map((e) => ({ alias: e.alias, wwid: e.wwid, mountPoint: e.mountPoint, target: e.target, storageHost: e.storageHost, exported: true, paths: e.portals.length })),
  };
}

function conn(t: ExecutionContext, stubs: Stubs): Connection {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-verify-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return {
    host: 'chunk1',
    commandCount: 0,
    exec: async (c) => {
      const stdout = runStubbed(c, stubs, dir);
      return { stdout, stderr: '', exitCode: 0, stdoutBytes: Buffer.from(stdout), signal: null, timedOut: false, durationMs: 0 };
    },
    put: async () => undefined,
    close: async () => undefined,
  };
}

const facts = { os: { id: 'debian', like: ['debian'], versionId: '12', prettyName: 'Debian 12', family: 'debian' as const }, kernel: '', arch: '', uid: 0, user: 'root', hostname: 'chunk1', packageManager: 'apt' as const, systemd: true };

const LAB: Stubs = {
  multipathd: [['show maps json', reply('multipath/maps-json-san')]],
  findmnt: [['-J -o TARGET,SOURCE,FSTYPE', reply('findmnt/chunk1-san')]],
};

test('recorded on chunk1 of the san lab: two aliased maps, their WWIDs those the playbook computes from the host names', async (t) => {
  const p = await chunk1Params();
  t.is(p.role, 'chunk');
  const f = await sanVerify.gather(conn(t, { ...LAB, ls: [['-A -- *', reply('ls/chunk-data-mount')]] }), p, { host: 'chunk1', facts });
  if (p.role !== 'chunk') return;
  t.deepEqual(f.maps.map((m) => [m.name, m.wwid]).sort(), p.volumes.map((v) => [v.alias, v.wwid]).sort());
  t.deepEqual(
    f.mounts.filter((m) => m.target.startsWith('/mnt/data_')).map((m) => [m.target, m.fstype]),
    [['/mnt/data_chunk1', 'xfs'], ['/mnt/data_chunk2', 'xfs']],
  );
  t.deepEqual(f.unreadable, {});
  t.deepEqual(sanVerify.plan(p, f), [], 'the network of the recording works: nothing to report');
});

test('an XFS that shut down is still mounted: its directory gives EIO and the play fails naming host and mount', async (t) => {
  const p = await chunk1Params();
  const f = await sanVerify.gather(
    conn(t, { ...LAB, ls: [['-A -- /mnt/data_chunk2', reply('ls/xfs-shut-down')], ['-A -- *', reply('ls/chunk-data-mount')]] }),
    p,
    { host: 'chunk1', facts },
  );
  t.deepEqual(Object.keys(f.unreadable), ['/mnt/data_chunk2']);
  t.regex(f.unreadable['/mnt/data_chunk2'] ?? '', /Input\/output error/);
  const e = t.throws(() => sanVerify.plan(p, f));
  t.regex(e?.message ?? '', /^chunk1: \/mnt\/data_chunk2 cannot be read \(.*Input\/output error\): the filesystem may have shut down after I\/O errors \(see dmesg\)$/);
});
