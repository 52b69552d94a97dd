import test from 'ava';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { machineBusyMs, measure } from '../../bench/measure.ts';

test('machineBusyMs counts the busy fields of /proc/stat, not idle or iowait', (t) => {
  const stat = readFileSync('/proc/stat', 'utf8');
  const f = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq] = f as [number, number, number, number, number, number, number];
  t.is(machineBusyMs(stat), (user + nice + system + irq + softirq) * 10);
  t.not(machineBusyMs(stat), (user + nice + system + idle + iowait + irq + softirq) * 10);
  t.throws(() => machineBusyMs('intr 1 2 3\ncpu 1 2 3'), { message: /cpu line/ });
});

test('measure: a child that spins for 0.6 s of CPU shows it in its own and in the machine CPU time', async (t) => {
  const spin = 'const end = process.cpuUsage().user + 600000; while (process.cpuUsage().user < end) {}';
  const m = await measure([process.execPath, '-e', spin]);
  t.is(m.exitCode, 0);
  t.true(m.cpuMs >= 550, `own CPU ${m.cpuMs} ms`);
  t.true(m.machineCpuMs >= m.cpuMs - 50, `machine ${m.machineCpuMs} ms against own ${m.cpuMs} ms`);
  t.true(m.machineCpuMs <= m.wallMs * cpus().length + 100, `machine ${m.machineCpuMs} ms in ${m.wallMs} ms on ${cpus().length} cores`);
});
