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
import {
  ferryAllVarSchema,
  ferryGroupVarSchema,
  ferryHostVarSchema,
} from '../../src/schema/ansible-inventory.js';
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
  const all = [
    inventorySchema,
    playbookSchema,
    ferryAllVarSchema,
    ferryGroupVarSchema,
    ferryHostVarSchema,
    ...Object.values(TASKS).map((task) => task.params),
  ];
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
    'ansible-inventory.schema.json',
    'inventory.schema.json',
    'playbook.schema.json',
  ]);
});

function editorAjv() {
  // What an editor does: the published file alone, no ferry code.
  return new Ajv({ allErrors: true, strict: false });
}

/** The schema a shipped YAML names on its first line. */
function schemaOf(file: string): string {
  const m = /\$schema=\.\.\/schemas\/([a-z-]+\.schema\.json)/.exec(
    readFileSync(file, 'utf8').split('\n')[0] ?? '',
  );
  return m?.[1] ?? 'none';
}

test('the published inventory schemas accept the shipped inventories', (t) => {
  let checked = 0;
  for (const f of readdirSync(`${ROOT}inventory`).filter((n) => n.endsWith('.yml'))) {
    const validate = editorAjv().compile(
      JSON.parse(readFileSync(`${ROOT}schemas/${schemaOf(`${ROOT}inventory/${f}`)}`, 'utf8')),
    );
    t.true(
      validate(parse(readFileSync(`${ROOT}inventory/${f}`, 'utf8'))),
      `${f}: ${JSON.stringify(validate.errors)}`,
    );
    checked++;
  }
  t.true(checked >= 3);
  const ferry = editorAjv().compile(
    JSON.parse(readFileSync(`${ROOT}schemas/inventory.schema.json`, 'utf8')),
  );
  t.false(ferry({ version: 1, hosts: { old: { address: 'x', port: '22a' } } }));
  t.false(ferry({ version: 1, hosts: { old: { address: 'x; touch /tmp/p #' } } }));
  t.false(ferry({ version: 1, hosts: { old: { address: '-oProxyCommand=sh' } } }));
  t.false(ferry({ version: 1, hosts: { old: { address: 'x', user: '-oProxyCommand=sh' } } }));
  t.true(ferry({ version: 1, hosts: { old: { address: '[2001:db8::1]', user: 'Deploy.User' } } }));
});

test('the published Ansible inventory schema checks what ferry reads, and no more', (t) => {
  const validate = editorAjv().compile(
    JSON.parse(readFileSync(`${ROOT}schemas/ansible-inventory.schema.json`, 'utf8')),
  );
  const inv = (hostVars: object, allVars: object = {}) => ({
    all: { vars: allVars, children: { dokku: { hosts: { old: hostVars, new: null } } } },
  });
  t.true(validate(inv({ ansible_host: '203.0.113.10', ansible_port: '2222', anything: [1] })));
  t.false(validate(inv({ ansible_host: 'x; touch /tmp/p' })));
  t.false(validate(inv({ ansible_user: '-oProxyCommand=sh' })));
  t.false(validate(inv({ ansible_port: 70000 })));
  t.false(validate(inv({ ansible_become_method: 'su' })));
  t.true(validate(inv({ dokku_ferry: { host_key: `SHA256:${'A'.repeat(43)}` } })));
  t.false(validate(inv({ dokku_ferry: { host_key: 'ssh-ed25519 AAAA' } })));
  // Where each dokku_ferry key may be: backup on all only, host_key on a host only.
  t.true(validate(inv({}, { dokku_ferry: { backup: { keep: 3 } } })));
  t.false(validate(inv({ dokku_ferry: { backup: { keep: 3 } } })));
  t.false(validate(inv({}, { dokku_ferry: { host_key: `SHA256:${'A'.repeat(43)}` } })));
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
      // Ansible inventories have their own schema.
      const name = f.startsWith('ansible') ? 'ansible-inventory' : schema;
      t.is(first, `# yaml-language-server: $schema=../schemas/${name}.schema.json`, `${dir}/${f}`);
    }
  }
});

// Compile-time checks of the derived types: these lines fail the build if the derivation drifts.
type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const portType: Equals<HostDocument['port'], number | undefined> = true;
const addressType: Equals<HostDocument['address'], string | undefined> = true;
const keepDefaulted: Equals<InventoryDocument['backup']['keep'], number> = true;
const orderType: Equals<InventoryDocument['apps']['order'], string[]> = true;
const whenType: Equals<StepDocument['when'], 'fetch' | 'force' | 'forward' | undefined> = true;
const versionType: Equals<InventoryDocument['version'], 1> = true;

test('derived types (checked at compile time)', (t) => {
  t.true(portType && addressType && keepDefaulted && orderType && whenType && versionType);
});
