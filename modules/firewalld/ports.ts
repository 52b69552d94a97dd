/**
 * Port ranges as firewalld writes them ("3260/tcp", "9419-9421/tcp"), and the interval arithmetic the plan
 * needs. firewalld 1.x coalesces overlapping ranges when the daemon adds a port (firewall-offline-cmd does
 * not), and never merges adjacent ones (seed 000 lists 9419/tcp 9420/tcp 9421/tcp): so a port is compared
 * by coverage, never by its text. 9420/tcp is open when 9419-9421/tcp is; 9419-9421/tcp is open when 9419,
 * 9420 and 9421 are, one by one.
 */

export const PROTOCOLS = ['tcp', 'udp', 'sctp', 'dccp'] as const;

export interface PortRange {
  readonly from: number;
  readonly to: number;
  readonly protocol: string;
}

const PORT_TEXT = /^(\d{1,5})(?:-(\d{1,5}))?\/([a-z]+)$/;

/** "9419-9421/tcp" -> {from, to, protocol}; null when it is not of that form (a service name, ...). */
export function tryParsePort(text: string): PortRange | null {
  const m = PORT_TEXT.exec(text);
  if (!m?.[1] || !m[3]) return null;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > 65535 || from > to) return null;
  return { from, to, protocol: m[3] };
}

/** A port of the task: the schema checked its form; this checks what a pattern cannot (the order of a range). */
export function parsePort(text: string): PortRange {
  const m = PORT_TEXT.exec(text);
  if (!m?.[1] || !m[3] || !(PROTOCOLS as readonly string[]).includes(m[3])) {
    throw new Error(`port ${JSON.stringify(text)}: write PORT/PROTOCOL or FIRST-LAST/PROTOCOL, PROTOCOL one of ${PROTOCOLS.join(', ')}`);
  }
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  for (const n of [from, to]) if (n < 1 || n > 65535) throw new Error(`port ${text}: ${n} is not a port number (1-65535)`);
  if (from > to) throw new Error(`port range ${text}: the first port (${from}) is above the last (${to})`);
  return { from, to, protocol: m[3] };
}

export function formatPort(r: PortRange): string {
  return r.from === r.to ? `${r.from}/${r.protocol}` : `${r.from}-${r.to}/${r.protocol}`;
}

/** Sorted (protocol, then first port), overlapping and adjacent ranges merged: one canonical form per set of ports. */
export function normalize(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => (a.protocol === b.protocol ? a.from - b.from : a.protocol < b.protocol ? -1 : 1));
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.protocol === r.protocol && r.from <= last.to + 1) {
      out[out.length - 1] = { ...last, to: Math.max(last.to, r.to) };
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

/** The ports of `a` that are not in `b`. */
export function subtract(a: readonly PortRange[], b: readonly PortRange[]): PortRange[] {
  const cut = normalize(b);
  const out: PortRange[] = [];
  for (const r of normalize(a)) {
    let pieces: PortRange[] = [r];
    for (const c of cut) {
      if (c.protocol !== r.protocol) continue;
      pieces = pieces.flatMap((p) => {
        if (c.to < p.from || c.from > p.to) return [p];
        const left = c.from > p.from ? [{ ...p, to: c.from - 1 }] : [];
        const right = c.to < p.to ? [{ ...p, from: c.to + 1 }] : [];
        return [...left, ...right];
      });
    }
    out.push(...pieces);
  }
  return normalize(out);
}

/** The ports in both `a` and `b`. */
export function intersect(a: readonly PortRange[], b: readonly PortRange[]): PortRange[] {
  return subtract(a, subtract(a, b));
}

export function overlaps(a: PortRange, b: readonly PortRange[]): boolean {
  return intersect([a], b).length > 0;
}
