/**
 * What `ferry plan` prints for the shipped playbooks, text and JSON, against
 * test/fixtures/plans/ (first taken before the seams refactor: the refactor
 * left every command byte for byte as it was, and added only the two
 * failure-path cleanups that had run unplanned). A reworded command shows up here.
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
      writeFileSync(`${DIR}${name}.json`, `${JSON.stringify(json, null, 2)}\n`);
    }
    t.is(text, readFileSync(`${DIR}${name}.txt`, 'utf8'));
    t.deepEqual(json, JSON.parse(readFileSync(`${DIR}${name}.json`, 'utf8')));
  });
}
