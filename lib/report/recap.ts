/** The recap printed at the end of a run: one line per host, then the hosts that stopped and why. */
import type { HostRecap } from '../events.ts';

export function formatRecap(recap: Record<string, HostRecap>, color = false): string {
  const names = Object.keys(recap);
  const width = Math.max(4, ...names.map((n) => n.length));
  const paint = (code: number, text: string, on: boolean): string => (color && on ? `\x1b[${code}m${text}\x1b[0m` : text);
  const lines = ['RECAP'];
  for (const name of names) {
    const r = recap[name] as HostRecap;
    const bad = r.failed > 0 || r.unreachable > 0;
    lines.push(
      [
        paint(bad ? 31 : r.changed > 0 ? 33 : 32, name.padEnd(width), true),
        `ok=${r.ok}`.padEnd(6),
        paint(33, `changed=${r.changed}`.padEnd(10), r.changed > 0),
        paint(31, `unreachable=${r.unreachable}`.padEnd(14), r.unreachable > 0),
        paint(31, `failed=${r.failed}`.padEnd(9), r.failed > 0),
        `skipped=${r.skipped}`.padEnd(10),
        `ignored=${r.ignored}`,
      ].join(' '),
    );
  }
  for (const name of names) {
    const stop = recap[name]?.stoppedAt;
    if (stop) lines.push(`${name} stopped at "${stop.task}": ${stop.reason}`);
  }
  return lines.join('\n');
}

export function totals(recap: Record<string, HostRecap>): HostRecap {
  const t: HostRecap = { ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0 };
  for (const r of Object.values(recap)) {
    t.ok += r.ok;
    t.changed += r.changed;
    t.failed += r.failed;
    t.skipped += r.skipped;
    t.unreachable += r.unreachable;
    t.ignored += r.ignored;
  }
  return t;
}
