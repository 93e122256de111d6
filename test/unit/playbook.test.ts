/** Playbooks: the shipped ones follow the seed procedure; names and paths resolve. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { InputError } from '../../src/errors.js';
import { loadPlaybook, resolvePlaybook, validatePlaybook } from '../../src/playbook/index.js';
import { SEED_ORDER } from './plan-fixtures.js';

test('migrate follows the seed procedure, step by step', async (t) => {
  const pb = await loadPlaybook('migrate');
  const roleOf = Object.fromEntries(pb.steps.map((s) => [s.task, s.on]));
  t.deepEqual(roleOf, {
    sweep: 'controller',
    'check-quiet': 'source',
    'check-target': 'target',
    inventory: 'source',
    select: 'source',
    'cut-over': 'source',
    transfer: 'target',
    'verify-archive': 'target',
    'carry-images': 'target',
    extract: 'target',
    'clear-stale': 'target',
    'recreate-engine': 'target',
    'remove-unselected': 'target',
    'start-services': 'target',
    'start-proxies': 'target',
    'plugin-triggers': 'target',
    'rewrite-remotes': 'controller',
    'rebuild-apps': 'target',
    'verify-apps': 'target',
    forward: 'source',
    'release-source': 'source',
  });
  t.deepEqual(pb.undo, { from: 'cut-over', until: 'verify-apps' });
  const at = (task: string) => pb.steps.findIndex((s) => s.task === task);
  for (const [a, b] of SEED_ORDER) t.true(at(a) < at(b), `${a} before ${b}`);
  t.is(at('sweep'), 0, "an earlier run's leftovers go first");
  // A selection is known before the cut-over's exports; what it left out goes before anything starts.
  t.true(at('inventory') < at('select') && at('select') < at('cut-over'));
  t.true(at('recreate-engine') < at('remove-unselected'));
  t.true(at('remove-unselected') < at('start-services'));

  t.deepEqual(Object.keys(pb.roles), ['source', 'target']);
  for (const s of pb.steps) t.truthy(s.why, `${s.id} says why`);
});

test('backup, restore and drill load, with defaults filled in', async (t) => {
  const backup = await loadPlaybook('backup');
  t.deepEqual(
    backup.steps.map((s) => s.task),
    [
      'sweep',
      'check-quiet',
      'inventory',
      'select',
      'export-datastores',
      'save-images',
      'archive',
      'retention',
      'fetch',
    ],
  );
  t.is(backup.steps.find((s) => s.task === 'fetch')!.when, 'fetch');
  const restore = await loadPlaybook('restore');
  t.true(restore.roles.source!.optional);
  t.false(restore.roles.target!.optional);
  t.is(restore.steps[0]!.task, 'sweep');
  t.like(restore.steps[2], {
    task: 'transfer',
    params: { data: 'given', route: 'auto' },
  });
  const drill = await loadPlaybook('drill');
  t.is(drill.steps[0]!.task, 'sweep');
  t.is(drill.steps[1]!.id, 'check-scratch');
  t.like(drill.steps[1]!.params, { scratch: true });
  t.is(drill.steps.at(-1)!.task, 'drill-report');
  // restore: the selection is checked right after the transfer, the renames before the rebuild.
  const order = restore.steps.map((s) => s.task);
  t.is(order.indexOf('select'), order.indexOf('transfer') + 1);
  t.like(restore.steps[order.indexOf('select')]!.params, { manifest: 'stage' });
  t.is(order.indexOf('rename'), order.indexOf('rebuild-apps') - 1);
  t.true(order.indexOf('start-services') < order.indexOf('rename'));
  for (const pb of [restore, drill]) {
    t.like(pb.steps.find((s) => s.task === 'remove-unselected')!.params, { archived: true });
  }
});

test('ids default to the task name, numbered when a task repeats', (t) => {
  const pb = validatePlaybook(
    `version: 1
name: twice
roles:
  source: {description: s}
steps:
  - {task: check-quiet, on: source}
  - {task: check-quiet, on: source}
  - {task: check-quiet, on: source, id: third}
`,
    'twice.yml',
  );
  t.deepEqual(
    pb.steps.map((s) => s.id),
    ['check-quiet', 'check-quiet-2', 'third'],
  );
});

test('a playbook is found by name (./playbooks first, then the shipped ones) or by path', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pb-'));
  try {
    t.regex(resolvePlaybook('migrate', dir), /playbooks\/migrate\.yml$/);
    mkdirSync(join(dir, 'playbooks'));
    writeFileSync(join(dir, 'playbooks', 'migrate.yml'), 'x');
    t.is(resolvePlaybook('migrate', dir), join(dir, 'playbooks', 'migrate.yml'));
    t.is(resolvePlaybook('custom/mine.yml', dir), join(dir, 'custom', 'mine.yml'));
    const e = t.throws(() => resolvePlaybook('migrat', dir), { instanceOf: InputError });
    t.regex(e.message, /no playbook named "migrat"; did you mean "migrate"\?/);
    t.regex(
      e.hint ?? '',
      /backup, drill, forward, forward-stop, migrate, migrate-live and restore/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a user copy can add, drop and reorder steps', (t) => {
  const pb = validatePlaybook(
    `version: 1
name: quick-move
roles:
  source: {description: s}
  target: {description: t}
steps:
  - {task: check-target, on: target, params: {scratch: true}}
  - {task: transfer, on: target, params: {from: source, compression: gzip, route: relay}}
  - {task: extract, on: target}
  - {task: verify-archive, on: target, params: {from: source}}
`,
    'quick.yml',
  );
  t.is(pb.steps.length, 4);
  t.like(pb.steps[1]!.params, { compression: 'gzip', route: 'relay', data: 'live' });
});
