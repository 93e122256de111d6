/**
 * The schemas: one source of truth. Keywords stay within what the type
 * derivation understands, the published files are current, and editors'
 * schema (with per-task params) accepts the shipped files and rejects bad ones.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import test from 'ava';
import { parse } from 'yaml';
import { SUPPORTED_KEYWORDS } from '../../src/schema/from-schema.js';
import {
  type HostDocument,
  type InventoryDocument,
  inventorySchema,
} from '../../src/schema/inventory.js';
import { playbookSchema, type StepDocument } from '../../src/schema/playbook.js';
import { publishedSchemas, staleSchemas } from '../../src/schema/publish.js';
import { TASKS } from '../../src/tasks/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Keywords used anywhere in a schema (property names under `properties` are not keywords). */
function keywords(schema: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(schema)) {
    for (const s of schema) keywords(s, out);
    return out;
  }
  if (!schema || typeof schema !== 'object') return out;
  for (const [k, v] of Object.entries(schema)) {
    out.add(k);
    if (k === 'properties') for (const sub of Object.values(v as object)) keywords(sub, out);
    else if (
      k === 'enum' ||
      k === 'const' ||
      k === 'default' ||
      k === 'required' ||
      k === 'examples'
    )
      continue;
    else keywords(v, out);
  }
  return out;
}

test('every schema uses only keywords the type derivation understands', (t) => {
  const all = [inventorySchema, playbookSchema, ...Object.values(TASKS).map((task) => task.params)];
  for (const s of all) {
    const unknown = [...keywords(s)].filter(
      (k) => !(SUPPORTED_KEYWORDS as readonly string[]).includes(k),
    );
    t.deepEqual(unknown, []);
  }
});

test('schemas/*.json are generated from the TypeScript schemas and current', async (t) => {
  t.deepEqual(await staleSchemas(`${ROOT}schemas/`), [], 'run `npm run schemas`');
  t.deepEqual(Object.keys(publishedSchemas()).sort(), [
    'inventory.schema.json',
    'playbook.schema.json',
  ]);
});

function editorAjv() {
  // What an editor does: the published file alone, no ferry code.
  return new Ajv({ allErrors: true, strict: false });
}

test('the published inventory schema accepts the shipped inventories', (t) => {
  const validate = editorAjv().compile(
    JSON.parse(readFileSync(`${ROOT}schemas/inventory.schema.json`, 'utf8')),
  );
  for (const f of readdirSync(`${ROOT}inventory`).filter((n) => n.endsWith('.yml'))) {
    t.true(
      validate(parse(readFileSync(`${ROOT}inventory/${f}`, 'utf8'))),
      `${f}: ${JSON.stringify(validate.errors)}`,
    );
  }
  t.false(validate({ version: 1, hosts: { old: { address: 'x', port: '22a' } } }));
});

test("the published playbook schema checks each step's params against its task", (t) => {
  const validate = editorAjv().compile(
    JSON.parse(readFileSync(`${ROOT}schemas/playbook.schema.json`, 'utf8')),
  );
  for (const f of readdirSync(`${ROOT}playbooks`).filter((n) => n.endsWith('.yml'))) {
    t.true(
      validate(parse(readFileSync(`${ROOT}playbooks/${f}`, 'utf8'))),
      `${f}: ${JSON.stringify(validate.errors)}`,
    );
  }
  const doc = (step: object) => ({
    version: 1,
    name: 'x',
    roles: { source: { description: 's' }, target: { description: 't' } },
    steps: [step],
  });
  t.true(
    validate(
      doc({ task: 'transfer', on: 'target', params: { from: 'source', compression: 'gzip' } }),
    ),
  );
  t.false(
    validate(
      doc({ task: 'transfer', on: 'target', params: { from: 'source', compression: 'xz' } }),
    ),
  );
  t.false(validate(doc({ task: 'transfer', on: 'target', params: {} })), 'from is required');
  t.false(validate(doc({ task: 'no-such-task', on: 'target' })));
});

test('every shipped YAML starts with the yaml-language-server schema line', (t) => {
  for (const [dir, schema] of [
    ['inventory', 'inventory'],
    ['playbooks', 'playbook'],
  ] as const) {
    for (const f of readdirSync(`${ROOT}${dir}`).filter((n) => n.endsWith('.yml'))) {
      const first = readFileSync(`${ROOT}${dir}/${f}`, 'utf8').split('\n')[0];
      t.is(
        first,
        `# yaml-language-server: $schema=../schemas/${schema}.schema.json`,
        `${dir}/${f}`,
      );
    }
  }
});

// Compile-time checks of the derived types: these lines fail the build if the derivation drifts.
type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const portType: Equals<HostDocument['port'], number | undefined> = true;
const addressType: Equals<HostDocument['address'], string> = true;
const keepDefaulted: Equals<InventoryDocument['backup']['keep'], number> = true;
const orderType: Equals<InventoryDocument['apps']['order'], string[]> = true;
const whenType: Equals<StepDocument['when'], 'fetch' | 'force' | 'forward' | undefined> = true;
const versionType: Equals<InventoryDocument['version'], 1> = true;

test('derived types (checked at compile time)', (t) => {
  t.true(portType && addressType && keepDefaulted && orderType && whenType && versionType);
});
