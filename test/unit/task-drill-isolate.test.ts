/**
 * isolate-scratch through the shipped drill playbook and the task fake: the
 * scratch host's apps answer under its own (or the given) suffix, never a
 * production name; letsencrypt auto-renew, cron maintenance, /etc/cron.d
 * entries and the dokku crontab are disabled and listed; drill-report prints
 * the list.
 */
import test from 'ava';
import { StopError } from '../../src/errors.js';
import drillReport, { disabledOf } from '../../src/tasks/drill-report.js';
import { claimsProduction, isDomainName, scratchDomain } from '../../src/tasks/isolate-scratch.js';
import type { StepOutputs } from '../../src/tasks/types.js';
import { app, contextOf, perCommand } from './task-apps-data.js';
import {
  type Answers,
  commandsOf,
  manifestOf,
  runPlannedStep,
  runTask,
  taskInventory,
} from './task-fake.js';

const MANIFEST = manifestOf({ apps: [app('notes'), app('api'), app('worker')] });

/** A restored scratch host: production's VHOSTs, a cron file, a crontab with one task. */
const ANSWERS: Answers = {
  'own-vhost': { stdout: 'scratch.lab\n' },
  'prod-vhost': { stdout: 'old.lab\n' },
  'read-domains': perCommand({
    'cat -- /home/dokku/notes/VHOST 2>/dev/null || true': {
      stdout: 'notes.old.lab\nwww.notes.example\n',
    },
    'cat -- /home/dokku/api/VHOST 2>/dev/null || true': { stdout: 'api.old.lab\n' },
  }),
  autorenew: { stdout: 'disabled\n' },
  'cron-d': { stdout: 'dokku-postgres-notes-db\n' },
  crontab: { stdout: '@daily dokku cron:run notes abc123\n' },
};

function isolate(stepId: string, answers: Answers, domainSuffix?: string) {
  return runPlannedStep('drill', taskInventory(), { source: 'old', scratch: 'scratch' }, stepId, {
    answers,
    manifest: MANIFEST,
    ...(domainSuffix ? { options: { domainSuffix } } : {}),
  });
}

test("isolate-scratch: apps with domains answer <app>.<scratch's own VHOST>; cron and auto-renew disabled and listed", async (t) => {
  const { result, error, seen } = await isolate('isolate-scratch', ANSWERS);
  t.is(error, undefined);
  t.deepEqual(commandsOf(seen, 'set-global'), ['dokku domains:set-global scratch.lab']);
  // worker has no VHOST (no domains): left alone, its vhost stays disabled.
  t.deepEqual(commandsOf(seen, 'set-domains'), [
    'dokku domains:set notes notes.scratch.lab',
    'dokku domains:set api api.scratch.lab',
  ]);
  t.deepEqual(commandsOf(seen, 'cron-maintenance'), ['dokku cron:set --global maintenance true']);
  t.deepEqual(result?.domains, { notes: 'notes.scratch.lab', api: 'api.scratch.lab' });
  t.deepEqual(result?.disabled, [
    'global VHOST old.lab → scratch.lab',
    'domains of notes: notes.old.lab www.notes.example → notes.scratch.lab',
    'domains of api: api.old.lab → api.scratch.lab',
    "letsencrypt auto-renew (the plugin's global autorenew flag)",
    '/etc/cron.d/dokku-postgres-notes-db',
    'dokku crontab entry: @daily dokku cron:run notes abc123',
    'app.json cron tasks (cron:set --global maintenance true)',
  ]);
  t.true(
    seen.states.some((s) => s.includes('/var/lib/dokku-ferry/drill-disabled/20261123T104500Z')),
  );
  // The domains are set before cron is touched; the crontab is saved before
  // cron:set, which rewrites it (Dokku's scheduler-cron-write).
  const order = seen.calls.map((c) => c.id);
  t.true(order.lastIndexOf('set-domains') < order.indexOf('autorenew'));
  t.true(order.indexOf('crontab') < order.indexOf('cron-maintenance'));
  t.is(order.at(-1), 'cron-maintenance');
});

test('isolate-scratch: --domain-suffix is used as given; the own VHOST is not read', async (t) => {
  const { error, seen } = await isolate('isolate-scratch', ANSWERS, 'drill.example.com');
  t.is(error, undefined);
  t.deepEqual(commandsOf(seen, 'own-vhost'), []);
  t.deepEqual(commandsOf(seen, 'set-global'), ['dokku domains:set-global drill.example.com']);
  t.true(commandsOf(seen, 'set-domains').includes('dokku domains:set api api.drill.example.com'));
});

test("isolate-scratch: a suffix under production's global VHOST or naming a production domain stops before any change", async (t) => {
  for (const suffix of ['old.lab', 'x.old.lab', 'notes.example']) {
    const answers: Answers = {
      ...ANSWERS,
      'read-domains': perCommand(
        {
          'cat -- /home/dokku/api/VHOST 2>/dev/null || true': { stdout: 'api.notes.example\n' },
        },
        { stdout: '' },
      ),
    };
    const { error, seen } = await isolate('isolate-scratch', answers, suffix);
    t.true(error instanceof StopError, suffix);
    t.deepEqual(commandsOf(seen, 'set-global'), [], suffix);
    t.deepEqual(commandsOf(seen, 'set-domains'), [], suffix);
  }
});

test('isolate-scratch: a scratch host without a global VHOST needs --domain-suffix', async (t) => {
  const { error, seen } = await isolate('isolate-scratch', {
    ...ANSWERS,
    'own-vhost': { stdout: '' },
  });
  t.true(error instanceof StopError);
  t.regex((error as StopError).hint ?? '', /--domain-suffix/);
  t.deepEqual(commandsOf(seen, 'set-global'), []);
});

test('isolate-scratch-again: only cron, after the rebuild; old Dokku without cron maintenance warns; no crontab(1) is said', async (t) => {
  const { result, error, seen } = await isolate('isolate-scratch-again', {
    'cron-maintenance': { code: 1, stderr: ' !     Invalid property specified' },
    crontab: { stdout: 'ferry-no-crontab\n' },
  });
  t.is(error, undefined);
  for (const id of ['own-vhost', 'prod-vhost', 'read-domains', 'set-global', 'set-domains'])
    t.deepEqual(commandsOf(seen, id), [], id);
  t.deepEqual(result?.disabled, []);
  t.true(seen.warnings.some((w) => w.includes('before 0.36')));
  t.true(seen.logs.some((l) => l.includes('no crontab(1)')));
});

test('domain helpers: names under the suffix; production names and wildcards refused', (t) => {
  t.is(scratchDomain('notes', 'scratch.lab'), 'notes.scratch.lab');
  t.true(isDomainName('notes.scratch.lab'));
  t.false(isDomainName('10.0.0.1'));
  t.false(isDomainName('bad name'));
  const prod = new Set(['www.example.com']);
  t.true(claimsProduction('www.example.com', prod, []));
  t.true(claimsProduction('a.b.old.lab', prod, ['old.lab']));
  t.true(claimsProduction('OLD.lab', prod, ['old.lab']));
  t.false(claimsProduction('notes.scratch.lab', prod, ['old.lab']));
  t.false(claimsProduction('xold.lab', prod, ['old.lab']));
});

test('drill-report lists what earlier steps disabled, once each', async (t) => {
  const outputs: Record<string, StepOutputs> = {
    'isolate-scratch': { disabled: ['/etc/cron.d/dokku-postgres-notes-db', 'x'] },
    'isolate-scratch-again': { disabled: ['x', 'dokku crontab entry: @daily y'] },
    extract: { moved: 3 },
  };
  t.deepEqual(disabledOf(outputs), [
    '/etc/cron.d/dokku-postgres-notes-db',
    'x',
    'dokku crontab entry: @daily y',
  ]);
  const { result, seen } = await runTask(drillReport, contextOf(drillReport, {}), {
    manifest: MANIFEST,
    outputs,
  });
  t.deepEqual(result?.disabled, disabledOf(outputs));
  t.true(seen.logs.some((l) => l.startsWith('disabled on the scratch host: /etc/cron.d/')));
});
