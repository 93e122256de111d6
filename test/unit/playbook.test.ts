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
    'check-quiet': 'source',
    'check-target': 'target',
    inventory: 'source',
    'cut-over': 'source',
    transfer: 'target',
    'verify-archive': 'target',
    extract: 'target',
    'clear-stale': 'target',
    'recreate-engine': 'target',
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

  t.deepEqual(Object.keys(pb.roles), ['source', 'target']);
  for (const s of pb.steps) t.truthy(s.why, `${s.id} says why`);
});

test('backup, restore and drill load, with defaults filled in', async (t) => {
  const backup = await loadPlaybook('backup');
  t.deepEqual(
    backup.steps.map((s) => s.task),
    ['check-quiet', 'inventory', 'export-datastores', 'archive', 'retention', 'fetch'],
  );
  t.is(backup.steps.find((s) => s.task === 'fetch')!.when, 'fetch');
  const restore = await loadPlaybook('restore');
  t.true(restore.roles.source!.optional);
  t.false(restore.roles.target!.optional);
  t.like(restore.steps[1], {
    task: 'transfer',
    params: { data: 'given', route: 'auto' },
  });
  const drill = await loadPlaybook('drill');
  t.is(drill.steps[0]!.id, 'check-scratch');
  t.like(drill.steps[0]!.params, { scratch: true });
  t.is(drill.steps.at(-1)!.task, 'drill-report');
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
