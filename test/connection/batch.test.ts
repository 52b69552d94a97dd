/**
 * execBatch: several commands in one round trip, on a real OpenSSH server on loopback and on the local
 * connection. Each command's stdout, stderr and exit code must come back exactly as exec() gives them.
 */
import test from 'ava';
import fc from 'fast-check';
import { cmd, sh } from '../../lib/command.ts';
import { LocalConnection } from '../../lib/connection/local.ts';
import type { BatchItem, Connection, ExecResult } from '../../lib/connection/types.ts';
import { sharedSshd } from '../helpers/shared-sshd.ts';

const server = sharedSshd(test);
const local = new LocalConnection();

const pick = (r: ExecResult | undefined): [number, string, string] | undefined =>
  r === undefined ? undefined : [r.exitCode, r.stdoutBytes.toString('hex'), r.stderr];

/** printf of arbitrary bytes, with a chosen exit code. */
function emit(bytes: Buffer, errText: string, code: number): BatchItem {
  return { command: sh`printf %s ${bytes}; printf %s ${errText} >&2; exit ${String(code)}` };
}

for (const [name, conn] of [
  ['ssh', (): Connection => server.ssh],
  ['local', (): Connection => local],
] as const) {
  test.serial(`${name}: each command's stdout, stderr and exit code are those exec() gives, in one round trip`, async (t) => {
    const items: BatchItem[] = [
      { command: sh`echo out; echo err >&2; exit 7` },
      { command: cmd('printf', '%s', 'no newline at the end') },
      { command: cmd('true') },
      { command: sh`printf '\\n\\n'; printf '\\n' >&2` },
      { command: sh`head -c 300000 /dev/zero | tr '\\0' x` },
      { command: cmd('sh', '-c', 'echo "$0"', 'a b') },
    ];
    const c = conn();
    const before = c.commandCount;
    const batch = await c.execBatch!(items);
    t.is(c.commandCount - before, 1, 'one command on the connection');
    const alone: ExecResult[] = [];
    for (const i of items) alone.push(await c.exec(i.command));
    t.deepEqual(batch.map(pick), alone.map(pick));
    t.is(batch[4]?.stdout.length, 300000);
  });

  test.serial(`${name}: arbitrary bytes and exit codes round-trip (property)`, async (t) => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 64 }), fc.string({ maxLength: 20 }), fc.integer({ min: 0, max: 123 })), {
          minLength: 1,
          maxLength: 8,
        }),
        async (specs) => {
          // NUL cannot be an argument: printf %s gets the bytes without it.
          const cases = specs.map(([b, e, code]) => [Buffer.from(b.filter((x) => x !== 0)), e.replace(/\0/g, ''), code] as const);
          const got = await conn().execBatch!(cases.map(([b, e, code]) => emit(b, e, code)));
          t.deepEqual(
            got.map(pick),
            cases.map(([b, e, code]) => [code, b.toString('hex'), e]),
          );
        },
      ),
      { numRuns: 25 },
    );
  });
}

test.serial('a command that prints a boundary-like line does not split the output', async (t) => {
  const fake = 'sanbook-batch-00000000000000000000000000000000 0';
  const [r] = await server.ssh.execBatch([{ command: sh`printf '%s\\n' ${'x'} ${'\n' + fake}` }, { command: cmd('true') }]);
  t.is(r?.stdout, `x\n\n${fake}\n`);
});

test.serial('the batch runs as exec() would: LC_ALL=C, /bin/sh, stdin empty, each command on its own', async (t) => {
  const [lang, shell, stdin, cd] = await server.ssh.execBatch([
    { command: sh`echo "$LC_ALL"` },
    { command: sh`readlink /proc/$$/exe` },
    { command: sh`wc -c` },
    { command: sh`cd /; X=1; echo "$X"` },
  ]);
  const [after] = await server.ssh.execBatch([{ command: sh`pwd; echo "[$X]"` }]);
  t.is(lang?.stdout, 'C\n');
  t.is(shell?.stdout, (await server.ssh.exec(sh`readlink /proc/$$/exe`)).stdout);
  t.is(stdin?.stdout.trim(), '0');
  t.is(cd?.stdout, '1\n');
  t.not(after?.stdout.split('\n')[0], '/', 'a cd in one batch does not carry over');
  t.is(after?.stdout.split('\n')[1], '[]');
});

test.serial('the batch has one timeout, the longest of its commands: what it did not finish is undefined', async (t) => {
  const quick = { timeoutMs: 300 };
  const started = performance.now();
  const r = await server.ssh.execBatch([
    { command: cmd('true'), options: quick },
    { command: cmd('sleep', '5'), options: quick },
    { command: sh`echo after`, options: quick },
  ]);
  t.true(performance.now() - started < 4000, 'the batch was ended by its timeout, not by the sleep');
  t.is(r[0]?.exitCode, 0);
  t.is(r[1], undefined);
  t.is(r[2], undefined);
  const [own] = await server.ssh.execBatch([{ command: sh`exit 124` }, { command: cmd('true') }]);
  t.is(own?.exitCode, 124, "a command's own exit code 124 is its own");
});

test.serial('a syntax error, an exit or a cd in one command stays in it', async (t) => {
  const r = await server.ssh.execBatch([
    { command: sh`echo 'unterminated` },
    { command: sh`exit 3` },
    { command: sh`cd / && pwd` },
    { command: sh`pwd` },
  ]);
  t.is(r[0]?.exitCode, 2);
  t.regex(r[0]?.stderr ?? '', /quote|EOF|unterminated/i);
  t.is(r[1]?.exitCode, 3);
  t.is(r[2]?.stdout, '/\n');
  t.not(r[3]?.stdout, '/\n');
});

test.serial('become runs a command through sudo -n as exec() does', async (t) => {
  // The test user has no sudo rights here: both ways fail alike, with sudo's own message.
  const [batched] = await server.ssh.execBatch([{ command: cmd('id', '-u'), options: { become: true } }, { command: cmd('true') }]);
  const alone = await server.ssh.exec(cmd('id', '-u'), { become: true });
  t.is(batched?.exitCode, alone.exitCode);
  t.is(batched?.stdout, alone.stdout);
  t.is(batched?.stderr, alone.stderr);
});

test.serial('commands the batch never finished are undefined: a shell that dies part way', async (t) => {
  // A subshell's $$ is the batch's shell.
  const killShell = sh`kill -9 $$`;
  const r = await server.ssh.execBatch([{ command: cmd('true') }, { command: killShell }, { command: cmd('echo', 'after') }]);
  t.is(r[0]?.exitCode, 0);
  t.is(r[2], undefined);
});

test.serial('a command with stdin is refused before anything runs', async (t) => {
  const before = server.ssh.commandCount;
  await t.throwsAsync(server.ssh.execBatch([{ command: cmd('cat').with({ stdin: 'x' }) }]), { message: /cannot take stdin/ });
  t.is(server.ssh.commandCount, before);
});

test.serial('quoting keeps the wrapped commands apart (a quote in one cannot end another)', async (t) => {
  const nasty = Buffer.from("'; echo INJECTED; '");
  const [r, s] = await server.ssh.execBatch([{ command: cmd('printf', '%s', nasty) }, { command: cmd('echo', 'next') }]);
  t.is(r?.stdout, nasty.toString());
  t.is(s?.stdout, 'next\n');
});

test.serial('the same command asked several times runs once; each asker gets its output', async (t) => {
  const file = `/tmp/sanbook-batch-dedupe-${process.pid}`;
  t.teardown(() => local.exec(cmd('rm', '-f', '--', file)).then(() => undefined));
  const count = sh`echo run >> ${file}; wc -l < ${file}`;
  const other = sh`echo other; exit 3`;
  const r = await server.ssh.execBatch([{ command: count }, { command: other }, { command: count }, { command: count }, { command: other }]);
  t.deepEqual(r.map((x) => [x?.exitCode, x?.stdout]), [[0, '1\n'], [3, 'other\n'], [0, '1\n'], [0, '1\n'], [3, 'other\n']]);
  t.is((await server.ssh.exec(cmd('wc', '-l', file))).stdout.split(' ')[0], '1', 'the counting command ran once');
  // The same script under become is another command: it runs on its own.
  const withBecome = await server.ssh.execBatch([{ command: cmd('id', '-u') }, { command: cmd('id', '-u'), options: { become: true } }]);
  t.is(withBecome.length, 2);
  t.true(withBecome[0] !== withBecome[1], 'not shared between become and not');
});
