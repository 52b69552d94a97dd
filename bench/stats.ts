/** Medians with their range, and the formatting the tables use. */

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function spread(values: readonly number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length };
}

/** `1.23 s (1.10-1.40)` */
export function seconds(s: Spread): string {
  if (s.n === 0) return '-';
  const f = (ms: number): string => (ms / 1000).toFixed(ms < 10_000 ? 2 : 1);
  return `${f(s.median)} s (${f(s.min)}-${f(s.max)})`;
}

/** `12.3x (11.0-14.1)` */
export function times(s: Spread): string {
  if (s.n === 0) return '-';
  const f = (x: number): string => x.toFixed(x < 10 ? 2 : 1);
  return `${f(s.median)}x (${f(s.min)}-${f(s.max)})`;
}

/** `123 MB (120-130)` */
export function megabytes(s: Spread): string {
  if (s.n === 0) return '-';
  return `${s.median.toFixed(0)} MB (${s.min.toFixed(0)}-${s.max.toFixed(0)})`;
}
