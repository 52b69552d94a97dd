/**
 * The failover test's result file (written by the script's report phase, see script.ts) and the figures drawn
 * from it. Pure functions: the file is parsed here, not on the host, except for the few counts the script needs
 * to decide whether it fails.
 *
 *   @@failover v1
 *   @@failover params      "key value" lines (mount, interface, file, blockBytes, ...)
 *   @@failover times       "name ns" lines: start, cut, up, settled, stopped
 *   @@failover flags       settle-timeout, writer-killed, monitor-killed
 *   @@failover paths       "ns active total", every second during the test
 *   @@failover maps-before multipathd show maps json
 *   @@failover maps-after  multipathd show maps json
 *   @@failover writes      "seq block start_ns end_ns exit" (3 fields: killed during that write)
 *   @@failover verify      "seq block ok" | "seq block lost FOUND"
 *   @@failover dd-errors   uniq -c of dd's error messages
 *   @@failover verdict     the script's one-line verdict
 *   @@failover end
 */
import { isActive, parseMapsJson, type MultipathMap } from '../multipath/maps.ts';

const MARK = '@@failover ';

export interface MapPaths {
  readonly name: string;
  readonly active: number;
  readonly total: number;
}

export interface WriteRecord {
  readonly seq: number;
  readonly block: number;
  readonly startNs: bigint;
  /** null: the writer was killed while this write was in flight. */
  readonly endNs: bigint | null;
  readonly exitCode: number | null;
}

export interface LostBlock {
  readonly seq: number;
  readonly block: number;
  /** The first 40 bytes read back (non-printable bytes as ?). */
  readonly found: string;
}

export interface WriteFigures {
  readonly writesAttempted: number;
  /** dd exited 0. */
  readonly writesCompleted: number;
  /** dd exited non-zero (an I/O error reached the application). */
  readonly writesFailed: number;
  /** Still in flight when the writer was killed (it did not finish within the grace time after the test). */
  readonly writesUnfinished: number;
  /** The longest single write (dd start to end). */
  readonly longestWriteMs: number;
  /** The longest time without a completed write: first write's start, each completion, writer stop. */
  readonly longestGapMs: number;
}

export interface FailoverResult extends WriteFigures {
  readonly mount: string;
  /** '' when nothing was cut (a fault made elsewhere). */
  readonly interface: string;
  /** The data file written (removed after the check). */
  readonly file: string;
  readonly blockBytes: number;
  readonly downSeconds: number;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  /** The link cut; with no interface, the first poll that saw a path not active (null: none within downSeconds). */
  readonly cutAt: number | null;
  readonly restoredAt: number | null;
  /** Every path of every map active again (null: not within the settle timeout, or no cut). */
  readonly settledAt: number | null;
  /** Link up (with no interface: the first failed path seen) -> every path active (null: timed out, or no cut). */
  readonly recoveryMs: number | null;
  readonly settleTimedOut: boolean;
  /** No interface was cut and no path failed within downSeconds: the external fault never came (the test fails). */
  readonly noFault: boolean;
  /** Cut -> first poll that saw a path not active (null: none seen). */
  readonly pathFailedAfterMs: number | null;
  /** Fewest active paths (all maps) seen by the once-a-second poll during the test. */
  readonly lowestActivePaths: number | null;
  /** Blocks read back (the latest write of each block that exited 0). */
  readonly blocksVerified: number;
  /** Completed writes whose block read back wrong. */
  readonly lostWrites: number;
  /** The first lost blocks (at most 20). */
  readonly lost: readonly LostBlock[];
  readonly pathsBefore: readonly MapPaths[] | null;
  readonly pathsAfter: readonly MapPaths[] | null;
  /** dd's error messages, most frequent first ("count message"). */
  readonly ddErrors: readonly string[];
  readonly writerKilled: boolean;
  /** No write failed, none unfinished, none lost, at least one completed, every path active in time. */
  readonly passed: boolean;
  /** The script's own verdict line. */
  readonly verdict: string;
}

function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let cur: string[] | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith(MARK)) {
      cur = [];
      out.set(line.slice(MARK.length), cur);
    } else if (cur) {
      cur.push(line);
    }
  }
  for (const lines of out.values()) while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return out;
}

const NS_PER_MS = 1_000_000n;
/** Epoch ns -> epoch ms (integer). */
export const epochMs = (ns: bigint): number => Number(ns / NS_PER_MS);
/** A duration in ns -> ms, rounded. */
export const durationMs = (from: bigint, to: bigint): number => Math.round(Number(to - from) / 1e6);

function int(text: string | undefined, what: string): number {
  const n = Number(text);
  if (text === undefined || text === '' || !Number.isInteger(n)) throw new Error(`failover result: ${what} is not a number: ${String(text)}`);
  return n;
}

function ns(text: string | undefined, what: string): bigint {
  if (text === undefined || !/^\d+$/.test(text)) throw new Error(`failover result: ${what} is not a time in ns: ${String(text)}`);
  return BigInt(text);
}

/** Parse the writer's log. */
export function parseWriteLog(lines: readonly string[]): WriteRecord[] {
  return lines
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const f = line.trim().split(/\s+/);
      if (f.length !== 3 && f.length !== 5) throw new Error(`failover result: bad write log line: ${line}`);
      return {
        seq: int(f[0], 'seq'),
        block: int(f[1], 'block'),
        startNs: ns(f[2], 'write start'),
        endNs: f.length === 5 ? ns(f[3], 'write end') : null,
        exitCode: f.length === 5 ? int(f[4], 'exit code') : null,
      };
    });
}

/** The write figures of a log; `stoppedNs` (the writer stopped) closes the last gap. */
export function writeFigures(writes: readonly WriteRecord[], stoppedNs: bigint | null): WriteFigures {
  let longestWrite = 0;
  for (const w of writes) if (w.endNs !== null) longestWrite = Math.max(longestWrite, durationMs(w.startNs, w.endNs));
  const points: bigint[] = [];
  const first = writes[0];
  if (first) points.push(first.startNs);
  for (const w of writes) if (w.endNs !== null && w.exitCode === 0) points.push(w.endNs);
  if (stoppedNs !== null && first) points.push(stoppedNs);
  points.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let longestGap = 0;
  for (let i = 1; i < points.length; i++) longestGap = Math.max(longestGap, durationMs(points[i - 1] as bigint, points[i] as bigint));
  return {
    writesAttempted: writes.length,
    writesCompleted: writes.filter((w) => w.exitCode === 0).length,
    writesFailed: writes.filter((w) => w.exitCode !== null && w.exitCode !== 0).length,
    writesUnfinished: writes.filter((w) => w.endNs === null).length,
    longestWriteMs: longestWrite,
    longestGapMs: longestGap,
  };
}

/** Active/total paths of each map. */
export function mapPaths(maps: readonly MultipathMap[]): MapPaths[] {
  return maps.map((m) => ({ name: m.name, active: m.paths.filter(isActive).length, total: m.paths.length }));
}

function parseVerify(lines: readonly string[]): { verified: number; lost: LostBlock[] } {
  const lost: LostBlock[] = [];
  let verified = 0;
  for (const line of lines) {
    const m = /^(\d+) (\d+) (ok|lost)(?: (.*))?$/.exec(line);
    if (!m) throw new Error(`failover result: bad verify line: ${line}`);
    verified++;
    if (m[3] === 'lost') lost.push({ seq: int(m[1], 'seq'), block: int(m[2], 'block'), found: (m[4] ?? '').trimEnd() });
  }
  return { verified, lost };
}

/** Every write of a result file (its writes section), in order. */
export function resultWrites(text: string): WriteRecord[] {
  return parseWriteLog(sections(text).get('writes') ?? []);
}

/** Parse a result file. */
export function parseResultFile(text: string): FailoverResult {
  const s = sections(text);
  if (!s.has('v1') || !s.has('end')) throw new Error('failover result: not a complete v1 result file');
  const params = new Map((s.get('params') ?? []).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as const));
  const times = new Map<string, bigint>();
  for (const l of s.get('times') ?? []) {
    const [name, value] = l.split(' ');
    if (name && !times.has(name)) times.set(name, ns(value, name));
  }
  const flags = new Set(s.get('flags') ?? []);
  const maps = (tag: string): MapPaths[] | null => {
    const json = (s.get(tag) ?? []).join('\n').trim();
    return json === '' ? null : mapPaths(parseMapsJson(json));
  };
  const writes = parseWriteLog(s.get('writes') ?? []);
  const verify = parseVerify(s.get('verify') ?? []);
  const start = times.get('start');
  if (start === undefined) throw new Error('failover result: no start time');
  const cut = times.get('cut') ?? null;
  const up = times.get('up') ?? null;
  const settled = times.get('settled') ?? null;
  const samples = (s.get('paths') ?? []).map((l) => l.split(' ')).map(([t, a, n]) => ({ at: ns(t, 'poll time'), active: int(a, 'active'), total: int(n, 'total') }));
  const failedSample = cut === null ? undefined : samples.find((x) => x.at >= cut && x.active < x.total);
  const external = (params.get('interface') ?? '') === '';
  const since = external ? cut : up;
  const settleTimedOut = flags.has('settle-timeout') || (since !== null && settled === null);
  const noFault = flags.has('no-fault');
  const figures = writeFigures(writes, times.get('stopped') ?? null);
  const passed =
    figures.writesCompleted > 0 && figures.writesFailed === 0 && figures.writesUnfinished === 0 && verify.lost.length === 0 && !settleTimedOut && !noFault;
  return {
    mount: params.get('mount') ?? '',
    interface: params.get('interface') ?? '',
    file: params.get('file') ?? '',
    blockBytes: int(params.get('blockBytes'), 'blockBytes'),
    downSeconds: int(params.get('downSeconds'), 'downSeconds'),
    startedAt: epochMs(start),
    cutAt: cut === null ? null : epochMs(cut),
    restoredAt: up === null ? null : epochMs(up),
    settledAt: settled === null ? null : epochMs(settled),
    recoveryMs: since !== null && settled !== null ? durationMs(since, settled) : null,
    settleTimedOut,
    noFault,
    pathFailedAfterMs: failedSample && cut !== null ? durationMs(cut, failedSample.at) : null,
    lowestActivePaths: samples.length === 0 ? null : Math.min(...samples.map((x) => x.active)),
    ...figures,
    blocksVerified: verify.verified,
    lostWrites: verify.lost.length,
    lost: verify.lost.slice(0, 20),
    pathsBefore: maps('maps-before'),
    pathsAfter: maps('maps-after'),
    ddErrors: (s.get('dd-errors') ?? []).map((l) => l.trim()).filter(Boolean),
    writerKilled: flags.has('writer-killed'),
    passed,
    verdict: (s.get('verdict') ?? []).join(' ').trim(),
  };
}

const paths = (p: readonly MapPaths[] | null): string => (p === null ? '?' : p.map((m) => `${m.name} ${m.active}/${m.total}`).join(', ') || 'no map');

/** One line with the figures (the playbook prints it per host). */
export function summarize(r: FailoverResult): string {
  const external = r.interface === '';
  const since = external ? 'the first failed path' : 'the link came back';
  const recovery = r.noFault
    ? `no path failed within ${r.downSeconds} s: the fault did not come`
    : r.cutAt === null
      ? 'no link cut'
      : r.recoveryMs !== null
        ? `paths active again ${r.recoveryMs} ms after ${since}`
        : 'paths NOT all active again in time';
  const failed = r.pathFailedAfterMs !== null && !external ? `, a path failed ${r.pathFailedAfterMs} ms after the cut` : '';
  const fault = external ? 'a fault made elsewhere (nothing cut)' : `${r.interface} down ${r.downSeconds} s`;
  return (
    `${r.passed ? 'passed' : 'FAILED'}: ${fault} under ${r.mount}: ` +
    `${r.writesAttempted} writes, ${r.writesCompleted} completed, ${r.writesFailed} failed, ${r.writesUnfinished} unfinished, ` +
    `${r.lostWrites} lost of ${r.blocksVerified} read back; longest write ${r.longestWriteMs} ms, longest gap ${r.longestGapMs} ms; ` +
    `${recovery}${failed}; paths before [${paths(r.pathsBefore)}] after [${paths(r.pathsAfter)}]`
  );
}
