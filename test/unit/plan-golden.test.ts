/**
 * What `ferry plan` prints for the shipped playbooks, against the text kept in
 * test/fixtures/plans/ (made before the seams refactor, so a reworded command
 * shows up here). The JSON is compared without the action ids (added later).
 * To accept a deliberate change: FERRY_UPDATE_GOLDEN=1 npx ava dist/test/unit/plan-golden.test.js
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { buildPlan } from '../../src/commands/plan.js';
import { formatPlan } from '../../src/plan/index.js';
import type { PlanOptions } from '../../src/tasks/types.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/plans/', import.meta.url));
const update = process.env.FERRY_UPDATE_GOLDEN === '1';
const cases = JSON.parse(readFileSync(`${DIR}cases.json`, 'utf8')) as Record<
  string,
  { playbook: string; bindings: string[]; options: Partial<PlanOptions> }
>;

/** The plan's JSON without `id` keys: what the golden JSON held before actions had ids. */
function withoutIds(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutIds);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k, x]) => !(k === 'id' && typeof x === 'string' && 'kind' in v))
        .map(([k, x]) => [k, withoutIds(x)]),
    );
  }
  return v;
}

for (const [name, c] of Object.entries(cases)) {
  test(`ferry plan ${name}: unchanged`, async (t) => {
    const { plan, inventory } = await buildPlan({
      ...c,
      inventoryPath: `${DIR}inventory.yml`,
      now: new Date('2026-11-23T10:45:00Z'),
    });
    const text = formatPlan(plan, inventory).split(DIR).join('');
    const json = JSON.parse(JSON.stringify(plan).split(DIR).join('')) as unknown;
    if (update) {
      writeFileSync(`${DIR}${name}.txt`, text);
      writeFileSync(`${DIR}${name}.json`, `${JSON.stringify(withoutIds(json), null, 2)}\n`);
    }
    t.is(text, readFileSync(`${DIR}${name}.txt`, 'utf8'));
    t.deepEqual(withoutIds(json), JSON.parse(readFileSync(`${DIR}${name}.json`, 'utf8')));
  });
}
