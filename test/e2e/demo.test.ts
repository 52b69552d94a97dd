/**
 * The plain-module playbook (playbooks/demo.ts) against three real OpenSSH servers on loopback:
 * check mode on fresh hosts changes nothing (checksummed listing before and after) and plans exactly what the
 * real run then does, task by task; the second run changes nothing; the CLI gives the exit codes.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RunEvent } from '../../lib/events.ts';
import { loadInventory } from '../../lib/inventory.ts';
import { runPlaybook } from '../../lib/runner.ts';
import { startLoopbackHosts, type LoopbackHosts } from '../../lab/loopback/hosts.ts';
import { demo } from '../../playbooks/demo.ts';

const run = promisify(execFile);

/** path, type, mode, sha256 or link target of everything under `dir`. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const s = await lstat(p);
      const mode = (s.mode & 0o7777).toString(8);
      if (s.isSymbolicLink()) out.push(`${p} link ${await readlink(p)}`);
      else if (s.isDirectory()) {
        out.push(`${p} dir ${mode}`);
        await walk(p);
      } else out.push(`${p} file ${mode} ${createHash('sha256').update(await readFile(p)).digest('hex')}`);
    }
  };
  await walk(dir);
  return out;
}

/** task -> host -> planned change summaries, from a run's events. */
function plans(events: readonly RunEvent[]): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const e of events) {
    if (e.type !== 'host:end') continue;
    (out[e.task] ??= {})[e.host] = e.changes.map((c) => c.summary);
  }
  return out;
}

function recorder(): { events: RunEvent[]; reporter: { onEvent(e: RunEvent): void; done(): Promise<void> } } {
  const events: RunEvent[] = [];
  return { events, reporter: { onEvent: (e) => void events.push(e), done: async () => {} } };
}

let hosts: LoopbackHosts;
test.before(async () => {
  hosts = await startLoopbackHosts(['node1', 'node2', 'node3']);
});
test.after.always(async () => {
  await hosts?.stop();
});

test.serial('check on fresh hosts changes nothing and plans exactly what the real run does; the second run changes nothing', async (t) => {
  const inventory = await loadInventory(hosts.inventoryFile);
  const before = await listing(join(hosts.dir, 'hosts'));

  const check = recorder();
  const dry = await runPlaybook(demo, { inventory, check: true, reporters: [check.reporter] });
  t.is(dry.exitCode, 0);
  t.deepEqual(await listing(join(hosts.dir, 'hosts')), before, 'check mode touched a host');
  t.true((dry.recap['node1']?.changed ?? 0) >= 8, 'check mode planned the changes');

  const real = recorder();
  const first = await runPlaybook(demo, { inventory, reporters: [real.reporter] });
  t.is(first.exitCode, 0);
  t.deepEqual(plans(real.events), plans(check.events), 'the real run did not do what check mode printed');
  t.deepEqual(first.recap, dry.recap);

  const afterFirst = await listing(join(hosts.dir, 'hosts'));
  const second = await runPlaybook(demo, { inventory });
  t.is(second.exitCode, 0);
  for (const h of hosts.names) t.is(second.recap[h]?.changed, 0, `${h} changed on the second run`);
  t.deepEqual(await listing(join(hosts.dir, 'hosts')), afterFirst);

  // What the playbook made, read back from the files themselves.
  const root = hosts.rootOf('node2');
  t.is(await readFile(join(root, 'etc/sanbook/node-id'), 'utf8'), 'node2\n');
  const conf = await readFile(join(root, 'etc/sanbook/node.conf'), 'utf8');
  t.regex(conf, /initiator = iqn\.2024-12\.tp2\.b3:node2-initiator/);
  t.regex(conf, /peer = node1\npeer = node3\n/);
  t.is(await readFile(join(root, 'etc/iscsi/iscsid.conf'), 'utf8'), 'node.startup = automatic\nnode.session.timeo.replacement_timeout = 15\n');
  t.is(await readlink(join(root, 'etc/sanbook/current.conf')), join(root, 'etc/sanbook/node.conf'));
  // Cross-host results: every host's peers file names each host with the port its own sshd answers on.
  const peers = await readFile(join(root, 'etc/sanbook/peers'), 'utf8');
  t.is(peers, hosts.names.map((n, i) => `${n} 127.0.0.1:${hosts.servers[i]?.port}\n`).join(''));
  // The handler ran once per host, on the first run only.
  const reloaded = await lstat(join(root, 'etc/sanbook/reloaded'));
  t.true(reloaded.isFile());
  // One SSH connection per host per run: 3 runs, 3 logins each.
  for (const s of hosts.servers) t.is(s.acceptedConnections(), 3);
});

test.serial('the CLI: plain output, --check, --limit, exit codes 0 / 1 / 4', async (t) => {
  const cli = (args: string[]) =>
    run('npx', ['tsx', 'playbooks/demo.ts', ...args], { env: { ...process.env, FORCE_COLOR: '0' } }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  const ok = await cli(['-i', hosts.inventoryFile, '--check', '--limit', 'node3']);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /PLAYBOOK demo \(check mode: nothing will be changed\)/);
  // Only node3 ran. Its peers file would lose the other hosts' addresses: they did not run, so their
  // results are unknown (as in Ansible, results exist only for the hosts of the run).
  t.regex(ok.stdout, /^node3 +ok=10 +changed=1 /m);
  t.regex(ok.stdout, /update .*node3\/etc\/sanbook\/peers/);
  t.notRegex(ok.stdout, /node1/);

  const bad = await cli(['-i', hosts.inventoryFile, '--limit', 'nosuch']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^error: no host or group named 'nosuch' in .*inventory.yaml$/m);
  t.notRegex(bad.stderr, /\n\s+at /, 'a stack trace for a user mistake');

  const flags = await cli(['--forks', 'many']);
  t.is(flags.code, 1);
  t.regex(flags.stderr, /--forks must be a whole number/);

  // A host whose port has no server: unreachable, the others finish, exit 4.
  const { writeFile } = await import('node:fs/promises');
  const broken = join(hosts.dir, 'broken.yaml');
  const text = (await readFile(hosts.inventoryFile, 'utf8')).replace(/ansible_port: \d+(, root: "[^"]*node1")/, 'ansible_port: 1$1');
  await writeFile(broken, text);
  const down = await cli(['-i', broken, '--check', '--json']);
  t.is(down.code, 4);
  const events = down.stdout.trim().split('\n').map((l) => JSON.parse(l) as RunEvent & { time: string });
  const end = events.at(-1);
  t.is(end?.type, 'run:end');
  if (end?.type === 'run:end') {
    t.is(end.recap['node1']?.unreachable, 1);
    t.regex(end.recap['node1']?.stoppedAt?.reason ?? '', /cannot connect to .*127\.0\.0\.1:1: connection refused/);
    t.is(end.recap['node2']?.failed, 0);
  }
});

test.serial('--help lists the options and the plays, and runs nothing', async (t) => {
  const r = await run('npx', ['tsx', 'playbooks/demo.ts', '--help']);
  t.regex(r.stdout, /--check/);
  t.regex(r.stdout, /1\. configure each node \[all\]/);
});

test.serial('a reader that stops reading (`| head`) stops the run as Ctrl-C does: exit 130, no stack trace', async (t) => {
  const { spawn } = await import('node:child_process');
  const child = spawn('npx', ['tsx', 'playbooks/demo.ts', '-i', hosts.inventoryFile, '--check', '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  // Read the first event, then close our end of the pipe, as `head -1` does.
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  t.is(code, 130, stderr);
  t.notRegex(stderr, /EPIPE|\n\s+at |internal error/);
});
