import test from 'ava';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { andThen, cmd, quote, QuoteError, raw, sh, wrapForHost } from '../../lib/command.ts';
import { Secret } from '../../lib/secret.ts';

/** Run bytes as a real `sh -c` script (dash on Debian) and return its stdout bytes. */
function runSh(script: Buffer, stdin?: Buffer): { stdout: Buffer; status: number | null } {
  // The script travels as an argument, which Node passes as UTF-8: wrapForHost() turns non-UTF-8 scripts into
  // ASCII first, exactly as the connections do.
  const r = spawnSync('/bin/sh', ['-c', script.toString('utf8')], { input: stdin ?? Buffer.alloc(0) });
  return { stdout: r.stdout, status: r.status };
}

const HOSTILE = [
  "'", "''", '"', '\\', '$(touch /tmp/pwned)', '`id`', '; rm -rf /', '&& echo x', '| cat', '\n', 'a\nb',
  '*', '?', '[a-z]', '~', '~root', '-n', '--', '$HOME', '${PATH}', '!', '#', 'a b', '\t', '', ' ', '=x', 'x=y',
  '{a,b}', '>out', '<in', '2>&1', '%', '\r\n', 'ünïcödé', '日本語', '😀',
];

// Arbitrary strings from code points (including control characters, quotes, newlines), never NUL.
const hostileString = fc
  .array(
    fc.oneof(
      fc.constantFrom(...HOSTILE),
      fc.string({ unit: 'binary', maxLength: 8 }),
      fc.string({ unit: 'grapheme-ascii', maxLength: 8 }),
    ),
    { maxLength: 6 },
  )
  .map((parts) => parts.join('').replace(/\0/g, '') /* NUL cannot be an argument */)
  // Lone surrogates cannot be encoded as UTF-8; they are not strings a shell can receive.
  .filter((s) => s.isWellFormed());

const hostileBytes = fc.uint8Array({ minLength: 0, maxLength: 24 }).map((b) => Buffer.from(b.filter((x) => x !== 0)));

test('quote() leaves plain words alone and single-quotes the rest', (t) => {
  t.is(quote('abc/DEF-1.2_x:y@z%,+='), 'abc/DEF-1.2_x:y@z%,+=');
  t.is(quote(''), "''");
  t.is(quote('a b'), "'a b'");
  t.is(quote("it's"), "'it'\\''s'");
  t.is(quote('$(x)'), "'$(x)'");
});

test('a command word with = is quoted so it is not taken for an assignment', (t) => {
  t.is(cmd('x=y', 'a=b').display, "'x=y' a=b");
  t.is(runSh(cmd('x=y').script).status, 127);
});

test('NUL bytes are refused with a clear error', (t) => {
  const e = t.throws(() => quote('a\0b'), { instanceOf: QuoteError });
  t.regex(e?.message ?? '', /NUL byte/);
});

test('property: thousands of hostile strings survive a real sh -c byte for byte', (t) => {
  let runs = 0;
  fc.assert(
    fc.property(fc.array(hostileString, { minLength: 1, maxLength: 5 }), (words) => {
      runs++;
      // printf '%s\0' per word: the output splits back into exactly the words given.
      const script = sh`printf '%s\\000' ${words}`;
      const r = runSh(wrapForHost(script));
      const back = r.stdout.toString('utf8').split('\0').slice(0, -1);
      return r.status === 0 && JSON.stringify(back) === JSON.stringify(words);
    }),
    { numRuns: 1500 },
  );
  t.is(runs, 1500);
});

test('property: non-UTF-8 byte strings survive a real sh -c byte for byte', (t) => {
  fc.assert(
    fc.property(hostileBytes, (bytes) => {
      const r = runSh(wrapForHost(cmd('printf', '%s', bytes)));
      return r.status === 0 && r.stdout.equals(bytes);
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('property: quoting nests (sudo-style sh -c inside sh -c) without losing bytes', (t) => {
  fc.assert(
    fc.property(hostileString, (s) => {
      const inner = cmd('printf', '%s', s);
      const outer = cmd('/bin/sh', '-c', inner.script);
      const r = runSh(wrapForHost(outer));
      return r.stdout.toString('utf8') === s;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('stdin bytes reach the command unchanged', (t) => {
  const data = Buffer.from([0xff, 0x00, 0x27, 0x0a, 0x24]);
  const c = sh`cat`.with({ stdin: data });
  t.true(runSh(wrapForHost(c), c.stdin).stdout.equals(data));
});

test('secrets are revealed in the script and masked in the display', (t) => {
  const pw = new Secret('hunter2-very-secret');
  const c = cmd('iscsiadm', '--value', pw);
  t.true(c.script.toString().includes('hunter2-very-secret'));
  t.false(c.display.includes('hunter2'));
  t.is(c.display, 'iscsiadm --value ***');
  t.is(JSON.stringify({ c }), '{"c":"iscsiadm --value ***"}');
});

test('LC_ALL=C is set for every command', (t) => {
  t.is(runSh(wrapForHost(sh`echo "$LC_ALL"`)).stdout.toString(), 'C\n');
});

test('become wraps with sudo -n and keeps the quoting', (t) => {
  const w = wrapForHost(cmd('id', '-u'), { become: true }).toString();
  t.true(w.startsWith("sudo -n -H -u root -- /bin/sh -c 'LC_ALL=C; export LC_ALL; id -u'"), w);
  t.true(wrapForHost(cmd('id'), { become: 'mfs' }).toString().startsWith('sudo -n -H -u mfs -- '));
});

test('andThen stops at the first failure and keeps each script grouped', (t) => {
  const r = runSh(wrapForHost(andThen(sh`echo a; false`, sh`echo b`)));
  t.is(r.stdout.toString(), 'a\n');
  t.not(r.status, 0);
  const ok = runSh(wrapForHost(andThen(sh`echo a`, sh`echo b ${raw('# comment')}`, sh`echo c`)));
  t.is(ok.stdout.toString(), 'a\nb\nc\n');
});

test('arrays interpolate as one word per element; numbers as words', (t) => {
  const c = sh`printf '[%s]' ${['a b', "c'd", 3]}`;
  t.is(runSh(wrapForHost(c)).stdout.toString(), "[a b][c'd][3]");
  t.throws(() => sh`echo ${Number.NaN}`, { instanceOf: QuoteError });
});
