/**
 * Unified diffs of a Change's before/after text, for diff mode and reports.
 *
 * A Change carries its diff as data (`{label, before, after}`); this turns it into the familiar unified
 * form. Registered secrets are masked in the result.
 */
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import type { Diff } from './module.ts';
import { maskSecrets } from './secret.ts';

const require = createRequire(import.meta.url);

export interface RenderDiffOptions {
  /** Lines of context around each hunk (default 3). */
  context?: number;
  /** Sides longer than this many characters are summarised, not diffed (default 1 MiB). */
  maxLength?: number;
}

/** jsdiff's time grows faster than the text: a 200 MB file took 17 s. Above this, a line of sizes instead. */
export const MAX_DIFF_LENGTH = 1 << 20;

/** A unified diff (`--- label (before)` / `+++ label (after)` / hunks); empty when before equals after. */
export function renderDiff(diff: Diff, options: RenderDiffOptions = {}): string {
  if (diff.before === diff.after) return '';
  const max = options.maxLength ?? MAX_DIFF_LENGTH;
  if (diff.before.length > max || diff.after.length > max) {
    return maskSecrets(`--- ${diff.label}\tbefore\n+++ ${diff.label}\tafter\n(too large to show: ${diff.before.length} characters before, ${diff.after.length} after)\n`);
  }
  // Loaded on the first diff: a run that changes nothing never needs jsdiff (18 files as ES modules).
  const { createTwoFilesPatch } = require('diff') as typeof import('diff');
  const patch = createTwoFilesPatch(diff.label, diff.label, diff.before, diff.after, 'before', 'after', {
    context: options.context ?? 3,
  });
  // jsdiff starts with "Index: label" and a "====" rule: drop them, keep the ---/+++ header and hunks.
  const lines = patch.split('\n');
  const start = lines.findIndex((l) => l.startsWith('--- '));
  return maskSecrets(lines.slice(start < 0 ? 0 : start).join('\n'));
}

/** Text for a diff side from bytes: the UTF-8 text, or a placeholder for binary content. */
export function diffText(bytes: Uint8Array | null): string {
  if (bytes === null) return '';
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isUtf8(buf) || buf.includes(0)) return `(binary content, ${buf.length} bytes)\n`;
  return buf.toString('utf8');
}
