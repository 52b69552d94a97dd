/**
 * Schemas: the run compiles them without the meta-schema check (lib/schema.ts, for start-up time), so every
 * schema we ship is checked against the meta-schema here, and the compile-time checks that remain are shown
 * to refuse the usual mistakes.
 */
import test from 'ava';
import { Ajv } from 'ajv';
import * as modules from '../../modules/index.ts';
import { demo } from '../../playbooks/demo.ts';
import { failoverBook } from '../../playbooks/failover.ts';
import { SAN_VARS_SCHEMA } from '../../playbooks/san.ts';
import { validateSchema } from '../../lib/schema.ts';
import { UserError } from '../../lib/errors.ts';
import { workload } from '../../bench/workload.ts';

const shipped: [string, unknown][] = [
  ...Object.entries(modules).flatMap(([name, m]) =>
    typeof m === 'object' && m !== null && 'schema' in m && 'gather' in m ? [[`module ${name}`, (m as { schema: unknown }).schema] as [string, unknown]] : [],
  ),
  ['playbook demo', demo.varsSchema],
  ['playbook failover', failoverBook.varsSchema],
  ['playbook san', SAN_VARS_SCHEMA],
  ['bench workload', workload.varsSchema],
];

test('every module and playbook schema is a valid JSON schema (the meta-schema check the run skips)', (t) => {
  const meta = new Ajv({ strict: true, allowUnionTypes: true });
  meta.addKeyword({ keyword: 'secret', schemaType: ['boolean', 'object'] });
  t.true(shipped.length > 20, 'the modules were found');
  for (const [name, schema] of shipped) {
    t.truthy(schema, name);
    t.true(meta.validateSchema(schema as object), `${name}: ${meta.errorsText(meta.errors)}`);
  }
});

test('without the meta-schema check, a misspelt keyword, a wrong type or a bad keyword value is still refused at compile', (t) => {
  const bad = [
    { type: 'object', properties: { a: { tpye: 'string' } } },
    { type: 'strnig' },
    { type: 'object', properties: { a: { type: 'string', minLength: '3' } } },
    { type: 'object', required: 'a' },
    { enum: 'x' },
  ];
  for (const schema of bad) t.throws(() => validateSchema(schema, {}, {}), undefined, JSON.stringify(schema));
  t.throws(() => validateSchema({ type: 'object', properties: { a: { type: 'string' } } }, { a: 1 }, {}), { instanceOf: UserError });
});
