/**
 * The terminal reporter's finished tasks, and which reporter a run gets.
 */
import test from 'ava';
import { chooseReporter, parseCli } from '../../lib/cli.ts';
import type { RunEvent } from '../../lib/events.ts';
import { JsonReporter } from '../../lib/report/json.ts';
import { ListrReporter } from '../../lib/report/listr.ts';
import { PlainReporter } from '../../lib/report/plain.ts';

const plain = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

function end(task: string, host: string, status: Extract<RunEvent, { type: 'host:end' }>['status'], more: Partial<Extract<RunEvent, { type: 'host:end' }>> = {}): RunEvent {
  return { type: 'host:end', task, host, status, changes: [], durationMs: 1, commands: 2, ...more };
}

test('tasks whose hosts all ended before the display reached them print as finished lines, in order, with changes', async (t) => {
  let out = '';
  const r = new ListrReporter({ write: (s) => void (out += s) });
  const hosts = ['a', 'b'];
  const events: RunEvent[] = [
    { type: 'run:start', playbook: 'pb', check: true, diff: false, hosts },
    { type: 'play:start', play: 'p', index: 0, hosts, tasks: ['one', 'two'] },
    { type: 'task:start', play: 'p', task: 'one', index: 0, handler: false, hosts },
    end('one', 'a', 'ok'),
    end('one', 'b', 'changed', { changes: [{ summary: 'create directory /srv', commands: ['mkdir /srv'] }] }),
    { type: 'task:end', play: 'p', task: 'one', handler: false },
    { type: 'task:start', play: 'p', task: 'two', index: 1, handler: false, hosts },
    end('two', 'a', 'skipped', { message: 'condition is false' }),
    end('two', 'b', 'failed', { message: 'boom' }),
    { type: 'task:end', play: 'p', task: 'two', handler: false },
    { type: 'play:end', play: 'p' },
    { type: 'run:end', recap: {}, exitCode: 2, durationMs: 5, check: true, interrupted: false },
  ];
  for (const e of events) r.onEvent(e);
  await r.done();
  const text = plain(out);
  const one = text.indexOf('✔ one');
  const two = text.indexOf('two');
  t.true(one > 0 && two > one, text);
  t.regex(text, /✔ a: ok\n/);
  t.regex(text, /✔ b: changed \(would change\)\n\s+› ~ create directory \/srv/);
  t.regex(text, /↓ a: skipped \(condition is false\)/);
  t.regex(text, /✖ b: failed: boom/);
  t.regex(text, /⚠ two/, 'a task with a failed host is marked');
  t.regex(text, /exit 2 after/);
});

test('a reporter for each case: --json, a terminal with a width, a pipe, a terminal with no width', (t) => {
  const options = parseCli([]);
  t.true(chooseReporter(parseCli(['--json']), true, 120) instanceof JsonReporter);
  t.true(chooseReporter(options, true, 120) instanceof ListrReporter);
  t.true(chooseReporter(options, false, 120) instanceof PlainReporter);
  t.true(chooseReporter(options, true, 0) instanceof PlainReporter);
});

test('on many hosts a finished task lists the hosts that are not simply ok, and counts the rest', async (t) => {
  let out = '';
  const r = new ListrReporter({ write: (s) => void (out += s) });
  const hosts = Array.from({ length: 20 }, (_, i) => `h${i + 1}`);
  r.onEvent({ type: 'run:start', playbook: 'pb', check: false, diff: false, hosts });
  r.onEvent({ type: 'task:start', play: 'p', task: 'one', index: 0, handler: false, hosts });
  for (const h of hosts) {
    r.onEvent(h === 'h7' ? end('one', h, 'changed', { changes: [{ summary: 'write /etc/x', commands: [] }] }) : end('one', h, 'ok'));
  }
  r.onEvent({ type: 'run:end', recap: {}, exitCode: 0, durationMs: 5, check: false, interrupted: false });
  await r.done();
  const text = plain(out);
  t.regex(text, /✔ one\n  ✔ ok on 19 hosts\n  ✔ h7: changed\n\s+› ~ write \/etc\/x\n/);
  t.notRegex(text, /h1: ok/);
});
