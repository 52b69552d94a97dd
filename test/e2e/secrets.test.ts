/**
 * Secrets never appear in any output: test/e2e/playbooks/secrets.ts (a CHAP secret from the inventory in an
 * iscsid.conf, a Secret file content, secrets on stdin and in argv, failures with the secret in argv and in a
 * path) run through the CLI on two real sshd hosts in every output mode: check mode, --diff, -v, --json, a
 * value changed by hand on a host (the old secret in the diff), and listr2's live display on a pseudo-terminal.
 * Every byte printed, and the servers' logs, are searched for each secret (as is, base64 and hex): 0 hits.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startLoopbackHosts, type LoopbackHosts } from '../../lab/loopback/hosts.ts';

const run = promisify(execFile);
const CHAP = 'CHAP-S3cr3t-x9';
const TOKEN = 'tok-4f1d9a7c-never-shown';
const OLD = 'Old-Hand-Set-77';
const BECOME = 'become-pw-0x5eed';

let hosts: LoopbackHosts;
let inventory: string;
test.before(async () => {
  hosts = await startLoopbackHosts(['s1', 's2']);
  inventory = join(hosts.dir, 'secrets.yaml');
  const text = readFileSync(hosts.inventoryFile, 'utf8').replace(
    '  vars:\n',
    `  vars:\n    chap_secret: !secret ${CHAP}\n    ansible_become_password: !secret ${BECOME}\n`,
  );
  writeFileSync(inventory, text);
});
test.after.always(async () => {
  await hosts?.stop();
});

interface Output {
  readonly label: string;
  readonly code: number;
  readonly text: string;
}

async function cli(label: string, args: string[]): Promise<Output> {
  const argv = ['tsx', 'test/e2e/playbooks/secrets.ts', '-i', inventory, ...args];
  const env = { ...process.env, FORCE_COLOR: '0', SANBOOK_TEST_TOKEN: TOKEN };
  return run('npx', argv, { env, maxBuffer: 64 << 20 }).then(
    (r) => ({ label, code: 0, text: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ label, code: e.code, text: e.stdout + e.stderr }),
  );
}

/** The same CLI on a pseudo-terminal 120 columns wide (script(1)), so that listr2 draws the live display. */
async function onTerminal(label: string, args: string[]): Promise<Output> {
  const line = ['stty cols 120 rows 40;', 'npx tsx test/e2e/playbooks/secrets.ts -i', inventory, ...args].join(' ');
  const env = { ...process.env, SANBOOK_TEST_TOKEN: TOKEN, TERM: 'xterm' };
  return run('script', ['-qefc', line, '/dev/null'], { env, maxBuffer: 64 << 20 }).then(
    (r) => ({ label, code: 0, text: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ label, code: e.code, text: e.stdout + e.stderr }),
  );
}

/** Each secret as it could leak: as is, base64 (a file's content in a gather), hex. */
function forms(secret: string): string[] {
  const b = Buffer.from(secret);
  return [secret, b.toString('base64').replace(/=+$/, ''), b.toString('hex')];
}

test.serial('no secret in any output of any mode, nor in the servers\' logs; the hosts get the real values', async (t) => {
  t.timeout(240_000);
  const outputs: Output[] = [];
  const step = async (o: Promise<Output>, code: number): Promise<Output> => {
    const r = await o;
    outputs.push(r);
    t.is(r.code, code, `${r.label}: exit ${r.code}\n${r.text.slice(-2000)}`);
    return r;
  };
  await step(cli('check mode on blank hosts', ['--check', '--diff', '-v']), 0);
  const first = await step(cli('first run', ['--diff', '-v']), 0);
  t.regex(first.text, /\*\*\*/, 'the masked secret shows where it was used');
  t.regex(first.text, /refused \*\*\*/, "the failing command's own message, masked");
  await step(cli('re-run, JSON lines', ['--json', '--diff', '-v']), 0);

  // A secret changed by hand on s1: the diff that puts it back holds the old and the new secret.
  const conf = join(hosts.rootOf('s1'), 'etc/iscsi/iscsid.conf');
  writeFileSync(conf, readFileSync(conf, 'utf8').replace(CHAP, OLD));
  const tampered = await step(cli('check mode after a change by hand', ['--check', '--diff', '-v']), 0);
  t.regex(tampered.text, /s1: changed/);
  await step(cli('JSON lines after a change by hand', ['--check', '--diff', '--json']), 0);
  await step(onTerminal('listr2 on a terminal, putting it back', ['--diff', '-v']), 0);
  await step(cli('only the failing tasks', ['--tags', 'fail', '-v']), 0);

  const logs = hosts.servers.map((s) => ({ label: `sshd log ${s.port}`, code: 0, text: s.log() }));
  let searched = 0;
  for (const o of [...outputs, ...logs]) {
    for (const secret of [CHAP, TOKEN, OLD, BECOME]) {
      for (const form of forms(secret)) {
        searched++;
        t.false(o.text.includes(form), `${o.label}: the secret ${secret} appears (as ${form})`);
      }
    }
  }
  t.true(outputs.some((o) => o.label.startsWith('listr2') && o.text.includes('\u001b[')), 'the terminal run drew the live display');

  // The hosts got the real values, in files only root can read.
  for (const h of hosts.names) {
    const root = hosts.rootOf(h);
    const iscsid = join(root, 'etc/iscsi/iscsid.conf');
    t.regex(readFileSync(iscsid, 'utf8'), new RegExp(`^node\\.session\\.auth\\.password = ${CHAP}$`, 'm'));
    t.is(statSync(iscsid).mode & 0o777, 0o600);
    t.is(readFileSync(join(root, 'etc/token'), 'utf8'), TOKEN);
    t.is(statSync(join(root, 'etc/token')).mode & 0o777, 0o600);
    t.is(readFileSync(join(root, 'stdin-copy'), 'utf8'), CHAP);
  }
  const bytes = [...outputs, ...logs].reduce((n, o) => n + o.text.length, 0);
  t.log(`${outputs.length} runs and ${logs.length} server logs, ${bytes} characters, searched for 4 secrets in 3 forms (${searched} searches): 0 found`);
});
