/**
 * The SSH connection against real OpenSSH servers on loopback (test/helpers/sshd.ts).
 */
import test from 'ava';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cmd, sh } from '../../lib/command.ts';
import { parseKnownHosts, checkHostKey } from '../../lib/connection/known_hosts.ts';
import { connectSsh, type SshConnection, type SshOptions } from '../../lib/connection/ssh.ts';
import { ConnectionError } from '../../lib/connection/types.ts';
import { secret } from '../../lib/secret.ts';
import { generateKey, startSshAgent, startSshd, startSshdHosts, type TestSshd } from '../../lab/loopback/sshd.ts';

let a: TestSshd;
let b: TestSshd;
let conn: SshConnection;

test.before(async () => {
  [a, b] = (await startSshdHosts(2)) as [TestSshd, TestSshd];
  conn = await connectSsh(a.sshOptions());
});

test.after.always(async () => {
  await conn?.close();
  await Promise.all([a?.stop(), b?.stop()]);
});

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sanbook-ssh-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function connectError(options: SshOptions): Promise<{ error: ConnectionError; ms: number }> {
  const started = performance.now();
  try {
    const c = await connectSsh(options);
    await c.close();
  } catch (e) {
    if (e instanceof ConnectionError) return { error: e, ms: performance.now() - started };
    throw e;
  }
  throw new Error('the connection succeeded');
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---- exec ----------------------------------------------------------------------------------------------

test('stdout, stderr and a non-zero exit code come back; a failure does not throw', async (t) => {
  const r = await conn.exec(sh`echo out; echo err >&2; exit 7`);
  t.is(r.exitCode, 7);
  t.is(r.stdout, 'out\n');
  t.is(r.stderr, 'err\n');
  t.false(r.timedOut);
  t.is((await conn.exec(cmd('false'))).exitCode, 1);
  t.is((await conn.exec(cmd('/nonexistent/program'))).exitCode, 127);
});

test('commands run under /bin/sh with LC_ALL=C, as the connecting user', async (t) => {
  const r = await conn.exec(sh`echo "$LC_ALL"; id -un; readlink /proc/$$/exe`);
  const [lc, user, shell] = r.stdout.trim().split('\n');
  t.is(lc, 'C');
  t.is(user, a.user);
  t.regex(shell ?? '', /\/(dash|sh|bash)$/);
});

test('a command killed by a signal reports 128 + the signal number', async (t) => {
  const r = await conn.exec(sh`kill -TERM $$`);
  t.is(r.exitCode, 143);
});

test('stdin is delivered, then closed', async (t) => {
  t.is((await conn.exec(cmd('cat').with({ stdin: 'hello\nworld' }))).stdout, 'hello\nworld');
  t.is((await conn.exec(cmd('cat'))).stdout, '', 'no stdin: cat sees end of file at once');
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
  const r = await conn.exec(cmd('cat').with({ stdin: big }));
  t.true(r.stdoutBytes.equals(big), '3 MiB in and out, byte for byte');
});

test('binary stdout comes back byte-exact', async (t) => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const escapes = [...all].map((b) => `\\0${b.toString(8).padStart(3, '0')}`).join('');
  const r = await conn.exec(cmd('printf', '%b', escapes));
  t.is(r.exitCode, 0, r.stderr);
  t.true(r.stdoutBytes.equals(all));
});

test('20 commands (10 at once) share one SSH connection', async (t) => {
  const sshd = await startSshd();
  t.teardown(() => sshd.stop());
  const c = await connectSsh(sshd.sshOptions());
  t.teardown(() => c.close());
  for (let i = 0; i < 10; i++) t.is((await c.exec(cmd('echo', i))).stdout, `${i}\n`);
  const parallel = await Promise.all(Array.from({ length: 10 }, (_, i) => c.exec(cmd('echo', i + 10))));
  t.deepEqual(parallel.map((r) => r.stdout), Array.from({ length: 10 }, (_, i) => `${i + 10}\n`));
  t.is(c.commandCount, 20);
  t.is(sshd.acceptedConnections(), 1);
});

// NUL can be no program argument; every other byte must survive the quoter, SSH and the remote sh.
const HOSTILE = ["'", '"', '\\', '$(id)', '`id`', '; rm -rf /', '\n', '*', '?', '[a]', '~', '$HOME', '${x}', '%s', '%b', '-n', '!', '#', '\r', ' '];
const hostileValue = fc
  .array(
    fc.oneof(
      fc.constantFrom(...HOSTILE).map((s) => Buffer.from(s)),
      fc.string({ unit: 'binary', maxLength: 6 }).map((s) => Buffer.from(s.replaceAll('\0', ''))),
      fc.uint8Array({ maxLength: 6 }).map((u) => Buffer.from(u.filter((x) => x !== 0))),
    ),
    { maxLength: 6 },
  )
  .map((parts) => new Uint8Array(Buffer.concat(parts)));

test('hostile values (quotes, $(...), backticks, newlines, globs, non-UTF-8 bytes) round-trip byte-exact', async (t) => {
  let checked = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(hostileValue, { minLength: 10, maxLength: 10 }), async (values) => {
      const results = await Promise.all(values.map((v) => conn.exec(cmd('printf', '%s', v))));
      results.forEach((r, i) => {
        if (r.exitCode !== 0 || !r.stdoutBytes.equals(Buffer.from(values[i] as Uint8Array))) {
          throw new Error(`value ${Buffer.from(values[i] as Uint8Array).toString('hex')} came back as ${r.stdoutBytes.toString('hex')} (exit ${r.exitCode}: ${r.stderr})`);
        }
      });
      checked += values.length;
    }),
    { numRuns: 30 },
  );
  t.true(checked >= 300);
  t.log(`${checked} values`);
});

// ---- put -----------------------------------------------------------------------------------------------

test('put() writes atomically with mode and owner, and leaves no temp file', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'conf file.txt');
  writeFileSync(path, 'old');
  const before = statSync(path).ino;
  const content = Buffer.from([0xff, 0x00, 0x27, 0x0a, 0x41]);
  await conn.put(path, content, { mode: 0o640, owner: 'nobody' });
  const st = statSync(path);
  t.true(readFileSync(path).equals(content));
  t.is(st.mode & 0o7777, 0o640);
  t.is(st.uid, Number(execFileSync('id', ['-u', 'nobody']).toString().trim()));
  t.not(st.ino, before, 'a new inode: written aside and renamed over, not rewritten in place');
  t.deepEqual(readdirSync(dir), ['conf file.txt']);
  const err = await t.throwsAsync(conn.put(join(dir, 'missing', 'x'), 'x'));
  t.regex(err?.message ?? '', /cannot write .*missing\/x on sshd-\d+/);
  t.deepEqual(readdirSync(dir), ['conf file.txt']);
});

// ---- timeouts and become -------------------------------------------------------------------------------

function liveProcesses(argv: readonly string[]): number[] {
  const want = `${argv.join('\0')}\0`;
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const state = readFileSync(`/proc/${d}/stat`, 'utf8').replace(/.*\) /s, '')[0];
        return readFileSync(`/proc/${d}/cmdline`, 'latin1') === want && state !== 'Z';
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('a timeout kills the command and returns timedOut soon after the limit, not when the command ends', async (t) => {
  const marker = `30.${process.pid}`; // a sleep nobody else runs
  const started = performance.now();
  const r = await conn.exec(cmd('sleep', marker), { timeoutMs: 1_000 });
  const elapsed = performance.now() - started;
  t.true(r.timedOut);
  t.is(r.exitCode, 124);
  // The upper bound leaves room for a loaded machine (VMs running); without the timeout it would take 30 s.
  t.true(elapsed >= 1_000 && elapsed < 4_000, `took ${Math.round(elapsed)} ms`);
  // The host's `timeout` killed the command's process group.
  const deadline = Date.now() + 5_000;
  while (liveProcesses(['sleep', marker]).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(liveProcesses(['sleep', marker]), [], 'the remote sleep is gone');
  t.is((await conn.exec(cmd('echo', 'still usable'))).stdout, 'still usable\n');
  t.is((await conn.exec(cmd('sleep', '0.1').with({ timeoutMs: 5_000 }))).timedOut, false);
});

test('become runs the command through sudo -n', async (t) => {
  const hasSudo = (await conn.exec(sh`command -v sudo`)).exitCode === 0;
  const r = await conn.exec(sh`id -u`, { become: true });
  if (hasSudo) {
    t.is(r.exitCode, 0, r.stderr);
    t.is(r.stdout, '0\n');
  } else {
    t.log('sudo is not installed on this machine: checking that become fails as a plain non-zero exit instead');
    t.is(r.exitCode, 127);
    t.regex(r.stderr, /sudo/);
  }
});

// ---- host keys -----------------------------------------------------------------------------------------

test('strict refuses an unknown host key with a clear message', async (t) => {
  const knownHostsFile = join(tempDir(t), 'known_hosts');
  const { error, ms } = await connectError(a.sshOptions({ knownHostsFile }));
  t.regex(
    error.message,
    new RegExp(
      `^host sshd-${a.port}: the host key of \\[127\\.0\\.0\\.1\\]:${a.port} \\(ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}\\) is not in ${escape(knownHostsFile)}; verify it and add it \\(ssh-keyscan -p ${a.port} 127\\.0\\.0\\.1\\), or set host_key_checking: accept-new$`,
    ),
  );
  t.is(error.host, `sshd-${a.port}`);
  t.true(ms < 3_000);
});

test('strict refuses a changed host key (another server key under this [host]:port)', async (t) => {
  const knownHostsFile = join(tempDir(t), 'known_hosts');
  writeFileSync(knownHostsFile, `# lab\n\n${b.hostKeyLine.replace(`]:${b.port} `, `]:${a.port} `)}\n`);
  for (const hostKeyChecking of ['strict', 'accept-new'] as const) {
    const { error } = await connectError(a.sshOptions({ knownHostsFile, hostKeyChecking }));
    t.regex(
      error.message,
      new RegExp(
        `HOST KEY CHANGED for \\[127\\.0\\.0\\.1\\]:${a.port}: the key offered \\(ssh-ed25519 SHA256:\\S+\\) differs from the one in ${escape(knownHostsFile)} line 3; this may be a man-in-the-middle attack; connection refused`,
      ),
    );
  }
  t.is(readFileSync(knownHostsFile, 'utf8').split('\n').length, 4, 'accept-new did not record the changed key');
});

test('a hashed known_hosts file (ssh-keygen -H) is honoured', async (t) => {
  const knownHostsFile = join(tempDir(t), 'known_hosts');
  writeFileSync(knownHostsFile, `${a.hostKeyLine}\n`);
  execFileSync('ssh-keygen', ['-q', '-H', '-f', knownHostsFile]);
  t.regex(readFileSync(knownHostsFile, 'utf8'), /^\|1\|/);
  const c = await connectSsh(a.sshOptions({ knownHostsFile }));
  t.teardown(() => c.close());
  t.is((await c.exec(cmd('echo', 'ok'))).stdout, 'ok\n');
});

test('a @revoked host key is refused whatever the policy', async (t) => {
  const knownHostsFile = join(tempDir(t), 'known_hosts');
  const key = a.hostKeyLine.split(' ').slice(1).join(' ');
  writeFileSync(knownHostsFile, `${a.hostKeyLine}\n@revoked * ${key}\n@cert-authority *.lab ${key}\n`);
  for (const hostKeyChecking of ['strict', 'accept-new', 'off'] as const) {
    const { error } = await connectError(a.sshOptions({ knownHostsFile, hostKeyChecking }));
    t.regex(error.message, /is marked @revoked in .* line 2; connection refused/);
  }
});

test('accept-new records an unknown key (0600 file, 0700 dir), then strict works with it', async (t) => {
  const knownHostsFile = join(tempDir(t), 'new', 'known_hosts');
  const c = await connectSsh(a.sshOptions({ knownHostsFile, hostKeyChecking: 'accept-new' }));
  await c.close();
  t.is(readFileSync(knownHostsFile, 'utf8'), `${a.hostKeyLine}\n`);
  t.is(statSync(knownHostsFile).mode & 0o777, 0o600);
  t.is(statSync(join(knownHostsFile, '..')).mode & 0o777, 0o700);
  const strict = await connectSsh(a.sshOptions({ knownHostsFile }));
  t.teardown(() => strict.close());
  t.is((await strict.exec(cmd('echo', 'ok'))).stdout, 'ok\n');
  const again = await connectSsh(a.sshOptions({ knownHostsFile, hostKeyChecking: 'accept-new' }));
  await again.close();
  t.is(readFileSync(knownHostsFile, 'utf8'), `${a.hostKeyLine}\n`, 'a known key is not added twice');
});

test('off connects without a known_hosts file, and creates none', async (t) => {
  const knownHostsFile = join(tempDir(t), 'absent', 'known_hosts');
  const c = await connectSsh(a.sshOptions({ knownHostsFile, hostKeyChecking: 'off' }));
  t.teardown(() => c.close());
  t.is((await c.exec(cmd('echo', 'ok'))).stdout, 'ok\n');
  t.throws(() => statSync(knownHostsFile));
});

test('the host-key types known_hosts holds are negotiated first (an ecdsa-only entry, ed25519 also offered)', async (t) => {
  const dir = tempDir(t);
  const ecdsa = join(dir, 'ssh_host_ecdsa_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', ecdsa]);
  const sshd = await startSshd({ extraConfig: [`HostKey ${ecdsa}`] });
  t.teardown(() => sshd.stop());
  const [type, key] = readFileSync(`${ecdsa}.pub`, 'utf8').split(' ');
  const knownHostsFile = join(dir, 'known_hosts');
  writeFileSync(knownHostsFile, `[127.0.0.1]:${sshd.port} ${type} ${key}\n`);
  const c = await connectSsh(sshd.sshOptions({ knownHostsFile }));
  t.teardown(() => c.close());
  t.is((await c.exec(cmd('echo', 'ok'))).stdout, 'ok\n');
});

test('known_hosts parsing: comma lists, wildcards, negation, default port', (t) => {
  const key = Buffer.from(a.hostKeyLine.split(' ')[2] as string, 'base64');
  const line = (hosts: string): string => `${hosts} ssh-ed25519 ${key.toString('base64')}`;
  const entries = parseKnownHosts([line('web1,10.0.0.5'), line('10.1.*,!10.1.0.9'), line('[10.2.0.1]:2222'), 'garbage line', ''].join('\n'));
  t.is(entries.length, 3);
  t.is(checkHostKey(entries, '10.0.0.5', 22, key).status, 'match');
  t.is(checkHostKey(entries, '10.1.3.4', 22, key).status, 'match');
  t.is(checkHostKey(entries, '10.1.0.9', 22, key).status, 'unknown');
  t.is(checkHostKey(entries, '10.2.0.1', 2222, key).status, 'match');
  t.is(checkHostKey(entries, '10.2.0.1', 22, key).status, 'unknown');
  t.is(checkHostKey(entries, '10.0.0.5', 2222, key).status, 'unknown');
});

// ---- authentication ------------------------------------------------------------------------------------

test('a key file protected by a passphrase works with it, and never shows it', async (t) => {
  const dir = tempDir(t);
  const key = await generateKey(join(dir, 'id_pp'), 'correct horse battery');
  await a.authorizeKey(key.publicKeyLine);
  const c = await connectSsh(a.sshOptions({ privateKeyFile: key.privateKeyFile, passphrase: secret('correct horse battery') }));
  t.teardown(() => c.close());
  t.is((await c.exec(cmd('echo', 'ok'))).stdout, 'ok\n');
  const missing = await connectError(a.sshOptions({ privateKeyFile: key.privateKeyFile }));
  t.regex(missing.error.message, new RegExp(`cannot use the private key ${escape(key.privateKeyFile)} .*no passphrase given`));
  const wrong = await connectError(a.sshOptions({ privateKeyFile: key.privateKeyFile, passphrase: secret('wrong staple 42') }));
  t.regex(wrong.error.message, /bad passphrase/);
  t.false(wrong.error.message.includes('wrong staple 42'));
  t.false(wrong.error.message.includes('correct horse'));
});

test('ssh-agent authentication works with no key file', async (t) => {
  const sshd = await startSshd();
  t.teardown(() => sshd.stop());
  const agent = await startSshAgent([sshd.clientKeyFile]);
  t.teardown(() => agent.stop());
  const c = await connectSsh(sshd.sshOptions({ privateKeyFile: undefined, agent: agent.socket }));
  t.teardown(() => c.close());
  t.is((await c.exec(cmd('echo', 'via agent'))).stdout, 'via agent\n');
  t.is(sshd.acceptedConnections(), 1);
  await agent.stop();
  t.throws(() => process.kill(agent.pid, 0), undefined, 'the agent is gone');
});

test('a key the server does not know gives the authentication failure message', async (t) => {
  const key = await generateKey(join(tempDir(t), 'id_other'));
  const { error } = await connectError(a.sshOptions({ privateKeyFile: key.privateKeyFile, password: secret('hunter2-not-shown') }));
  t.is(
    error.message,
    `host sshd-${a.port}: authentication failed for ${a.user}@127.0.0.1:${a.port} (tried: key file ${key.privateKeyFile}, password)`,
  );
});

// ---- unreachable hosts and lost connections ------------------------------------------------------------

async function listen(onConnection: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return { server, port: typeof address === 'object' && address !== null ? address.port : 0 };
}

test('a closed port is a ConnectionError at once', async (t) => {
  const { server, port } = await listen(() => undefined);
  await new Promise((r) => server.close(r));
  const { error, ms } = await connectError(a.sshOptions({ port, connectTimeoutMs: 3_000 }));
  t.regex(error.message, new RegExp(`cannot connect to ${a.user}@127\\.0\\.0\\.1:${port}: connection refused`));
  t.true(ms < 5_000, `${ms} ms`);
});

test('a server that never speaks SSH is reported within the connect timeout, not after retries', async (t) => {
  const sockets: Socket[] = [];
  const { server, port } = await listen((s) => sockets.push(s));
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    server.close();
  });
  const { error, ms } = await connectError(a.sshOptions({ port, connectTimeoutMs: 3_000 }));
  t.regex(error.message, new RegExp(`cannot connect to ${a.user}@127\\.0\\.0\\.1:${port} within 3 s`));
  // Retries (ssh2-promise's default) would take about 50 s; a loaded machine may add a second or two.
  t.true(ms >= 2_900 && ms < 10_000, `${ms} ms`);
  t.is(sockets.length, 1, 'one attempt, no reconnects');
});

test('a connection that drops is a ConnectionError, during and after a command', async (t) => {
  const sshd = await startSshd();
  t.teardown(() => sshd.stop());
  const c = await connectSsh(sshd.sshOptions());
  t.teardown(() => c.close());
  const running = c.exec(cmd('sleep', '20'));
  await new Promise((r) => setTimeout(r, 500));
  t.is(await sshd.dropConnections(), 1);
  const during = await t.throwsAsync(running, { instanceOf: ConnectionError });
  t.regex(during?.message ?? '', /was lost.*while a command was running/);
  await t.throwsAsync(c.exec(cmd('true')), { instanceOf: ConnectionError, message: /was lost/ });
  const fresh = await connectSsh(sshd.sshOptions());
  t.is((await fresh.exec(cmd('echo', 'new connection'))).stdout, 'new connection\n', 'the server is still up');
  await fresh.close();
  await sshd.stop();
  t.throws(() => process.kill(sshd.pid, 0), undefined, 'stop() killed that sshd');
  t.false(existsSync(sshd.dir), 'stop() removed its dir');
});

test('the harness reports an sshd that cannot start, with its log', async (t) => {
  const error = await t.throwsAsync(startSshd({ extraConfig: ['NoSuchOption yes'] }));
  t.regex(error?.message ?? '', /cannot start a test sshd: sshd exited with status \d+ on 127\.0\.0\.1:\d+; its log .*\n.*NoSuchOption/s);
});

test('connections never share: same target closed, other target closed, the rest still work', async (t) => {
  const first = await connectSsh(b.sshOptions());
  const second = await connectSsh(b.sshOptions());
  const other = await connectSsh(a.sshOptions());
  t.teardown(() => Promise.all([first.close(), second.close(), other.close()]).then(() => undefined));
  const serverPort = async (c: SshConnection): Promise<string> => (await c.exec(sh`echo "$SSH_CONNECTION"`)).stdout.trim().split(' ')[3] ?? '';
  t.is(await serverPort(first), String(b.port));
  t.is(await serverPort(other), String(a.port));
  await first.close();
  await t.throwsAsync(first.exec(cmd('true')), { instanceOf: ConnectionError, message: /is closed/ });
  t.is(await serverPort(second), String(b.port));
  await other.close();
  t.is(await serverPort(second), String(b.port));
  t.is(await serverPort(conn), String(a.port));
});
