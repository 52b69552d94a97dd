import test from 'ava';
import { command, copy, file, pkg, query, service, setting, template } from '../../modules/index.ts';

const modules = { command, copy, file, package: pkg, query, service, setting, template };

for (const [name, m] of Object.entries(modules)) {
  test(`${name}: the schema documents every param (closed object, camelCase, a description on each)`, (t) => {
    t.is(m.name, name);
    t.true(m.description.length > 20);
    const schema = m.schema as { type?: string; additionalProperties?: unknown; properties?: Record<string, { description?: unknown }> };
    t.is(schema.type, 'object');
    t.is(schema.additionalProperties, false);
    const props = Object.entries(schema.properties ?? {});
    t.true(props.length > 0);
    for (const [key, prop] of props) {
      t.regex(key, /^[a-z][a-zA-Z0-9]*$/, `${name}.${key} is camelCase`);
      t.true(typeof prop.description === 'string' && prop.description.length > 10, `${name}.${key} has a description`);
    }
  });
}
