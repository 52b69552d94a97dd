/** Recorded tool output (test/fixtures/NAME.json, written by lab/record.ts): what parser tests read. */
import { readFileSync } from 'node:fs';
import type { Fixture } from '../../lab/record-kit.ts';

export type Recorded = Fixture;

/** `name` relative to test/fixtures, without .json ('mdadm/detail-raid1-clean'). */
export const fixture = (name: string): Recorded =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}.json`, import.meta.url), 'utf8')) as Recorded;
