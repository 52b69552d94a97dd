import test from 'ava';
import { readFile } from 'node:fs/promises';
import * as modules from '../modules/index.ts';
import { documented, reference } from '../docs/generate.ts';

test('docs/modules.md is generated from the current schemas (run `npm run docs`)', async (t) => {
  t.is(await readFile(new URL('../docs/modules.md', import.meta.url), 'utf8'), reference());
});

test('every module exported by modules/index.ts is in the reference', (t) => {
  const exported = Object.values(modules).filter(
    (m): m is (typeof documented)[number] => typeof m === 'object' && m !== null && 'plan' in m && 'schema' in m,
  );
  t.true(exported.length >= 8);
  t.deepEqual(exported.map((m) => m.name).sort(), documented.map((m) => m.name).sort());
});

test('every example in the reference is valid for its module', (t) => {
  let n = 0;
  for (const m of documented) {
    for (const e of m.examples ?? []) {
      t.notThrows(() => m.validate(e.params), `${m.name}: ${e.title}`);
      n++;
    }
  }
  t.true(n >= 5);
});
