import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { ListrLogger } from 'listr2';
import { RemoteError } from '../../src/errors.js';
import { findResumable, Journal, readJournal } from '../../src/run/journal.js';
import { CONTROLLER, type RunOptions, runSteps, type Step } from '../../src/run/runner.js';

/** Captures the `test` renderer's serialized events instead of printing them. */
class Capture extends ListrLogger {
  lines: string[] = [];
  override toStdout(message: string | unknown[]): void {
    this.lines.push(String(message));
  }
  override toStderr(message: string | unknown[]): void {
    this.lines.push(String(message));
  }
  events(): { event: string; data: unknown; task?: { title?: string } }[] {
    return this.lines.map((l) => JSON.parse(l) as { event: string; data: unknown });
  }
  /** `STATE` values for the task whose title starts with `title`. */
  states(title: string): unknown[] {
    return this.events()
      .filter((e) => e.event === 'STATE' && String(e.task?.title ?? '').startsWith(title))
      .map((e) => e.data);
  }
  messages(title: string): unknown[] {
    return this.events()
      .filter((e) => e.event === 'MESSAGE' && String(e.task?.title ?? '').startsWith(title))
      .map((e) => e.data);
  }
  outputs(title: string): string[] {
    return this.events()
      .filter((e) => e.event === 'OUTPUT' && String(e.task?.title ?? '').startsWith(title))
      .map((e) => String(e.data));
  }
}

function opts(capture: Capture, extra: Partial<RunOptions<null>> = {}): RunOptions<null> {
  return { shared: null, renderer: 'test', logger: capture, handleSignals: false, ...extra };
}

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runner-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function journalFor(dir: string, steps: Step<null>[], argv = ['migrate', 'old', 'new']): Journal {
  return Journal.create({
    dir,
    command: 'migrate',
    playbook: { path: 'playbooks/migrate.yml', hash: 'sha256:aa' },
    inventory: { path: 'inventory/lab.yml', hash: 'sha256:bb' },
    bindings: { source: 'old', target: 'new' },
    argv,
    steps: steps.map((s) => s.id),
  });
}

test('a failing step stops the run; later steps never start', async (t) => {
  const capture = new Capture();
  let ranC = false;
  const steps: Step<null>[] = [
    { id: 'a', title: 'Step A', host: 'old', run: async () => ({ n: 1 }) },
    {
      id: 'b',
      title: 'Step B',
      host: 'new',
      run: async () => {
        throw new RemoteError({
          host: 'new',
          command: 'tar -x -C /var/lib/dokku',
          code: 2,
          stdout: '',
          stderr: 'tar: short read\ntar: Error is not recoverable: exiting now\n',
        });
      },
    },
    {
      id: 'c',
      title: 'Step C',
      host: 'new',
      run: async () => {
        ranC = true;
      },
    },
  ];
  const result = await runSteps(steps, opts(capture));
  t.is(result.status, 'failed');
  t.false(ranC);
  t.deepEqual(capture.states('Step A'), ['STARTED', 'COMPLETED']);
  t.deepEqual(capture.states('Step B'), ['STARTED', 'FAILED']);
  t.deepEqual(capture.states('Step C'), []);
  t.deepEqual(
    result.steps.map((s) => s.status),
    ['ok', 'failed', 'not-run'],
  );
  t.is(result.failure?.stepId, 'b');
  t.is(result.failure?.host, 'new');
  t.is(result.failure?.command, 'tar -x -C /var/lib/dokku');
  t.is(result.failure?.code, 2);
  t.regex(result.failure?.outputTail ?? '', /Error is not recoverable/);
  t.deepEqual(result.outputs.a, { n: 1 });
});

test('skipped steps report their reason (static and from the context)', async (t) => {
  const capture = new Capture();
  const steps: Step<null>[] = [
    {
      id: 'x',
      title: 'Rewrite remotes',
      host: CONTROLLER,
      skip: 'no repos in the inventory',
      run: async () => {},
    },
    {
      id: 'y',
      title: 'Import datastores',
      host: 'new',
      skip: (ctx) => (Object.keys(ctx.outputs).length === 0 ? 'nothing exported' : false),
      run: async () => {},
    },
    { id: 'z', title: 'Runs', host: 'new', skip: false, run: async () => ({ ok: true }) },
  ];
  const result = await runSteps(steps, opts(capture));
  t.is(result.status, 'ok');
  t.deepEqual(capture.messages('Rewrite remotes'), [{ skip: 'no repos in the inventory' }]);
  t.true(capture.states('Rewrite remotes').includes('SKIPPED'));
  t.deepEqual(capture.messages('Import datastores'), [{ skip: 'nothing exported' }]);
  t.deepEqual(capture.states('Runs'), ['STARTED', 'COMPLETED']);
  t.deepEqual(
    result.steps.map((s) => [s.status, s.reason]),
    [
      ['skipped', 'no repos in the inventory'],
      ['skipped', 'nothing exported'],
      ['ok', undefined],
    ],
  );
});

test('a step can skip itself while running', async (t) => {
  const capture = new Capture();
  const result = await runSteps(
    [
      {
        id: 's',
        title: 'Maybe',
        host: 'old',
        run: async (_c, task) => {
          task.skip('already done on old');
        },
      },
    ],
    opts(capture),
  );
  t.is(result.steps[0]!.status, 'skipped');
  t.is(result.steps[0]!.reason, 'already done on old');
  t.deepEqual(capture.messages('Maybe'), [{ skip: 'already done on old' }]);
});

test('resume: finished steps are skipped with "done in run <id>" and their outputs replayed', async (t) => {
  const dir = tmp(t);
  let fail = true;
  let seen: unknown;
  let archiveRuns = 0;
  const steps: Step<null>[] = [
    {
      id: 'archive',
      title: 'Archive',
      host: 'old',
      run: async (_c, task) => {
        archiveRuns++;
        task.progress(1000, 1000);
        return { path: '/var/lib/dokku-ferry/archives/a.tar', sha256: 'f'.repeat(64) };
      },
    },
    {
      id: 'extract',
      title: 'Extract',
      host: 'new',
      run: async (ctx) => {
        seen = ctx.need<string>('archive', 'path');
        if (fail) throw new Error('disk full');
        return {};
      },
    },
  ];
  const j1 = journalFor(dir, steps);
  const first = await runSteps(steps, opts(new Capture(), { journal: j1 }));
  j1.close();
  t.is(first.status, 'failed');
  t.is(archiveRuns, 1);

  const found = findResumable('migrate', { target: 'new', source: 'old' }, dir);
  t.is(found?.start.runId, j1.runId);
  t.is(found?.failed?.step, 'extract');
  t.is(found?.failed?.message, 'disk full');

  fail = false;
  seen = undefined;
  const capture = new Capture();
  const j2 = journalFor(dir, steps);
  const second = await runSteps(steps, opts(capture, { journal: j2, resume: found! }));
  j2.close();
  t.is(second.status, 'ok');
  t.is(archiveRuns, 1, 'the finished step did not run again');
  t.is(seen, '/var/lib/dokku-ferry/archives/a.tar');
  t.deepEqual(capture.messages('Archive'), [{ skip: `done in run ${j1.runId}` }]);
  t.is(second.steps[0]!.status, 'resumed');
  t.is(second.steps[0]!.bytes, 1000);
  t.is(second.resumed, j1.runId);
  // The second journal carries the replayed outputs forward, so a third resume still has them.
  const rec = readJournal(j2.file).find((r) => r.type === 'step-finished' && r.step === 'archive');
  t.is(rec?.type === 'step-finished' ? rec.doneIn : '', j1.runId);
  t.is(findResumable('migrate', { source: 'old', target: 'new' }, dir), undefined);
});

test('rerunOnResume steps run again', async (t) => {
  const dir = tmp(t);
  let checks = 0;
  const steps: Step<null>[] = [
    {
      id: 'check',
      title: 'Check',
      host: 'old',
      rerunOnResume: true,
      run: async () => void checks++,
    },
    { id: 'boom', title: 'Boom', host: 'old', run: async () => Promise.reject(new Error('x')) },
  ];
  const j1 = journalFor(dir, steps);
  await runSteps(steps, opts(new Capture(), { journal: j1 }));
  const run = findResumable('migrate', { source: 'old', target: 'new' }, dir)!;
  await runSteps(steps, opts(new Capture(), { resume: run }));
  t.is(checks, 2);
});

test('retry: a step that fails once then succeeds is ok, and the journal shows the retry', async (t) => {
  const dir = tmp(t);
  let calls = 0;
  const capture = new Capture();
  const steps: Step<null>[] = [
    {
      id: 'flaky',
      title: 'Flaky',
      host: 'new',
      retry: 1,
      run: async (_c, task) => {
        calls++;
        if (task.attempt === 1) throw new Error('connection reset');
        return { attempt: task.attempt };
      },
    },
  ];
  const j = journalFor(dir, steps);
  const result = await runSteps(steps, opts(capture, { journal: j }));
  t.is(result.status, 'ok');
  t.is(calls, 2);
  t.is(result.steps[0]!.attempts, 2);
  t.true(capture.states('Flaky').includes('RETRY'));
  const failed = readJournal(j.file).filter((r) => r.type === 'step-failed');
  t.is(failed.length, 1);
  t.true(failed[0]?.type === 'step-failed' && failed[0].willRetry === true);
});

test('retry exhausted fails the run', async (t) => {
  let calls = 0;
  const result = await runSteps(
    [
      {
        id: 'f',
        title: 'Always fails',
        host: 'new',
        retry: { tries: 2 },
        run: async () => {
          calls++;
          throw new Error('nope');
        },
      },
    ],
    opts(new Capture()),
  );
  t.is(calls, 3);
  t.is(result.status, 'failed');
  t.is(result.failure?.message, 'nope');
});

test('continueOnError (a playbook step with continue_on_error) goes on after a failure', async (t) => {
  const capture = new Capture();
  const result = await runSteps(
    [
      {
        id: 'soft',
        title: 'Soft',
        host: 'old',
        continueOnError: true,
        run: async () => {
          throw new Error('maintenance page not found');
        },
      },
      { id: 'after', title: 'After', host: 'old', run: async () => ({ fine: true }) },
    ],
    opts(capture),
  );
  t.deepEqual(
    result.steps.map((s) => s.status),
    ['failed', 'ok'],
  );
  t.is(result.status, 'ok');
  t.is(result.failure?.stepId, 'soft');
});

test('progress lines, warnings, host states, bytes; secrets are masked in output', async (t) => {
  const capture = new Capture();
  let clock = 1_000_000;
  const result = await runSteps(
    [
      {
        id: 'copy',
        title: 'Copy',
        host: 'old',
        run: async (_c, task) => {
          clock += 2000;
          task.progress(50_000_000, 100_000_000);
          clock += 2000;
          task.progress(100_000_000, 100_000_000);
          task.log('DATABASE_URL=postgres://postgres:s3cr3tpw@dokku-postgres-db:5432/db');
          task.warn('app web was deployed with git:from-image; SECRET_TOKEN=abc123');
          task.hostState('old', 'apps running; archive kept');
          return {};
        },
      },
    ],
    opts(capture, { now: () => clock, progressInterval: 0 }),
  );
  const out = capture.outputs('Copy');
  t.true(
    out.some((l) => l.startsWith('100 MB / 100 MB (100%)')),
    out.join('\n'),
  );
  t.true(
    out.some((l) => /50\.0 MB \/ 100 MB \(50%\) · 25\.0 MB\/s · ETA 2\.0s/.test(l)),
    out.join('\n'),
  );
  t.false(capture.lines.join('\n').includes('s3cr3tpw'));
  t.is(result.bytes, 100_000_000);
  t.is(result.steps[0]!.bytes, 100_000_000);
  t.deepEqual(result.hostStates, { old: 'apps running; archive kept' });
  t.is(result.warnings[0]!.message, 'app web was deployed with git:from-image; SECRET_TOKEN=***');
});

test('the journal holds no secrets from outputs or failures', async (t) => {
  const dir = tmp(t);
  const steps: Step<null>[] = [
    {
      id: 'manifest',
      title: 'Manifest',
      host: 'old',
      run: async () => ({
        apps: ['web'],
        env: { web: { DATABASE_URL: 'postgres://postgres:hunter22@x:5432/db', PORT: '5000' } },
        dsn: 'postgres://postgres:hunter23@x:5432/db',
      }),
    },
    {
      id: 'fail',
      title: 'Fail',
      host: 'new',
      run: async () => {
        throw new RemoteError({
          host: 'new',
          command: 'dokku config:set web API_KEY=hunter24',
          code: 1,
          stdout: '',
          stderr: 'failed for PASSWORD=hunter25\n',
        });
      },
    },
  ];
  const j = journalFor(dir, steps, ['migrate', 'old', 'new']);
  await runSteps(steps, opts(new Capture(), { journal: j }));
  const text = readFileSync(j.file, 'utf8');
  for (const s of ['hunter22', 'hunter23', 'hunter24', 'hunter25']) t.false(text.includes(s), s);
  t.true(text.includes('"apps":["web"]'));
});

test('duplicate step ids are a bug', async (t) => {
  const s: Step<null> = { id: 'a', title: 'A', host: 'old', run: async () => {} };
  await t.throwsAsync(runSteps([s, s], opts(new Capture())), { message: /two steps share/ });
});

test('need() names a missing output', async (t) => {
  const result = await runSteps(
    [{ id: 'b', title: 'B', host: 'old', run: async (ctx) => ({ v: ctx.need('a', 'path') }) }],
    opts(new Capture()),
  );
  t.is(result.status, 'failed');
  t.regex(result.failure?.message ?? '', /step output a\.path is missing/);
});

test('an abort (Ctrl-C) makes the run "interrupted" and is journaled', async (t) => {
  const dir = tmp(t);
  const abort = new AbortController();
  const steps: Step<null>[] = [
    {
      id: 'long',
      title: 'Long copy',
      host: 'old',
      run: (ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => reject(new Error('copy aborted')));
          setTimeout(() => abort.abort(), 5);
        }),
    },
    { id: 'next', title: 'Next', host: 'new', run: async () => t.fail() },
  ];
  const j = journalFor(dir, steps);
  const result = await runSteps(steps, opts(new Capture(), { journal: j, signal: abort.signal }));
  j.close();
  t.is(result.status, 'interrupted');
  t.is(result.failure?.stepId, 'long');
  const last = readJournal(j.file).at(-1);
  t.deepEqual(last?.type === 'run-finished' ? last.status : undefined, 'interrupted');
  const run = findResumable('migrate', { source: 'old', target: 'new' }, dir);
  t.is(run?.failed?.step, 'long');
});

test('the simple renderer (CI, pipes) prints timestamped lines to the given stream', async (t) => {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream;
  let text = '';
  (stream as unknown as PassThrough).on('data', (d: Buffer) => {
    text += d.toString();
  });
  const result = await runSteps(
    [
      {
        id: 'a',
        title: 'Export datastores',
        host: 'old',
        run: async (_c, task) => task.log('db: 12 MB'),
      },
      {
        id: 'b',
        title: 'Rewrite remotes',
        host: CONTROLLER,
        skip: 'no repos',
        run: async () => {},
      },
    ],
    { shared: null, renderer: 'simple', stream, handleSignals: false },
  );
  t.is(result.status, 'ok');
  t.regex(text, /\[\d{2}:\d{2}:\d{2}\].*Export datastores \[old\]/);
  t.regex(text, /db: 12 MB/);
  t.regex(text, /no repos/);
});

test("stepFromPlan: the plan's skipped reason is the step's skip reason", async (t) => {
  const { stepFromPlan } = await import('../../src/run/steps.js');
  const capture = new Capture();
  const steps = [
    stepFromPlan<null>(
      {
        id: 'fetch',
        task: 'fetch',
        host: CONTROLLER,
        summary: 'Stream the archive here',
        skipped: 'only with --fetch',
      },
      async () => t.fail(),
    ),
    stepFromPlan<null>(
      { id: 'verify-new', task: 'verify-apps', host: 'new', summary: 'Check every app answers' },
      async () => ({ checked: 2 }),
      { retry: 1 },
    ),
  ];
  t.is(steps[1]!.title, 'verify-new: Check every app answers');
  t.is(steps[1]!.retry, 1);
  const result = await runSteps(steps, opts(capture));
  t.deepEqual(capture.messages('Stream the archive here'), [{ skip: 'only with --fetch' }]);
  t.deepEqual(result.outputs['verify-new'], { checked: 2 });
});

test('after an abort, a step that ignored it finishes but nothing new starts', async (t) => {
  const abort = new AbortController();
  let nextRan = false;
  const result = await runSteps(
    [
      {
        id: 'deaf',
        title: 'Ignores the signal',
        host: 'old',
        run: async () => {
          abort.abort();
          return { done: true };
        },
      },
      {
        id: 'next',
        title: 'Next',
        host: 'new',
        run: async () => {
          nextRan = true;
        },
      },
    ],
    opts(new Capture(), { signal: abort.signal }),
  );
  t.false(nextRan);
  t.is(result.status, 'interrupted');
  t.deepEqual(
    result.steps.map((s) => s.status),
    ['ok', 'not-run'],
  );
  t.is(result.failure, undefined);
});

test('undo: a failure inside the range undoes the started steps, each host in reverse order, and resume starts again at `from`', async (t) => {
  const dir = tmp(t);
  const log: string[] = [];
  let failAt: string | undefined = 'rebuild';
  const undo = (id: string) => ({
    from: 'freeze',
    until: 'verify',
    run: async () => {
      log.push(`undo ${id}`);
    },
  });
  const step = (id: string, host: string, withUndo: boolean): Step<null> => ({
    id,
    title: id,
    host,
    run: async () => {
      log.push(`run ${id}`);
      if (failAt === id) throw new Error(`${id} broke`);
      return {};
    },
    ...(withUndo ? { undo: undo(id) } : {}),
  });
  const steps = [
    step('check', 'old', false),
    step('freeze', 'old', true),
    step('copy', 'new', false),
    step('extract', 'new', true),
    step('start', 'new', true),
    step('rebuild', 'new', true),
    step('verify', 'new', false),
    step('remotes', CONTROLLER, false),
  ];
  const j1 = journalFor(dir, steps);
  const first = await runSteps(steps, opts(new Capture(), { journal: j1 }));
  j1.close();
  t.is(first.status, 'failed');
  // rebuild failed half-way: its own undo runs too; new's in reverse, old's beside them.
  t.deepEqual(
    log.filter((l) => l.startsWith('undo') && l !== 'undo freeze'),
    ['undo rebuild', 'undo start', 'undo extract'],
  );
  t.true(log.includes('undo freeze'));
  t.is(first.undoneFrom, 'freeze');
  t.deepEqual(
    first.undone?.map((u) => u.ok),
    [true, true, true, true],
  );
  const found = findResumable('migrate', { source: 'old', target: 'new' }, dir);
  t.is(found?.undoneFrom, 'freeze');
  t.deepEqual(
    [...(found?.finished.keys() ?? [])],
    ['check'],
    'only the step before the range stays done',
  );

  log.length = 0;
  failAt = undefined;
  const j2 = journalFor(dir, steps);
  const second = await runSteps(steps, opts(new Capture(), { journal: j2, resume: found! }));
  j2.close();
  t.is(second.status, 'ok');
  t.deepEqual(log, [
    'run freeze',
    'run copy',
    'run extract',
    'run start',
    'run rebuild',
    'run verify',
    'run remotes',
  ]);
  t.is(second.undone, undefined);
});

test('undo: nothing is undone once `until` finished, and a failing undo does not stop the others', async (t) => {
  const log: string[] = [];
  const mk = (id: string, host: string, opts2: { fail?: boolean; undoFails?: boolean } = {}) =>
    ({
      id,
      title: id,
      host,
      run: async () => {
        if (opts2.fail) throw new Error(`${id} broke`);
        return {};
      },
      undo: {
        from: 'freeze',
        until: 'verify',
        run: async () => {
          log.push(`undo ${id}`);
          if (opts2.undoFails) throw new Error('cannot reach it');
        },
      },
    }) satisfies Step<null>;
  const after = await runSteps(
    [
      mk('freeze', 'old'),
      { id: 'verify', title: 'v', host: 'new', run: async () => ({}) },
      mk('forward', 'old', { fail: true }),
    ],
    opts(new Capture()),
  );
  t.is(after.status, 'failed');
  t.deepEqual(log, [], 'the target was verified: nothing is brought back');

  const broken = await runSteps(
    [
      mk('freeze', 'old'),
      mk('extract', 'new', { undoFails: true }),
      mk('start', 'new', { fail: true }),
      { id: 'verify', title: 'v', host: 'new', run: async () => ({}) },
    ],
    opts(new Capture()),
  );
  t.deepEqual(log.sort(), ['undo extract', 'undo freeze', 'undo start']);
  const byStep = Object.fromEntries((broken.undone ?? []).map((u) => [u.step, u]));
  t.false(byStep.extract?.ok);
  t.regex(byStep.extract?.message ?? '', /cannot reach it/);
  t.true(byStep.freeze?.ok);
});

test('an observer sees each step start and end, in its place, and every line it shows', async (t) => {
  const seen: string[] = [];
  const steps: Step<null>[] = [
    { id: 'a', title: 'first', host: 'old', run: async (_c, task) => task.log('reading') },
    { id: 'b', title: 'second', host: 'old', skip: 'only with --fetch', run: async () => {} },
    {
      id: 'c',
      title: 'third',
      host: 'new',
      run: async () => {
        throw new Error('it broke: token=s3cr3t');
      },
    },
    { id: 'd', title: 'fourth', host: 'new', run: async () => {} },
  ];
  const r = await runSteps(
    steps,
    opts(new Capture(), {
      observer: {
        step: (e) =>
          seen.push(
            `${e.id} ${e.index + 1}/${e.total} ${e.host} ${e.status}${e.reason ? ` (${e.reason})` : ''}`,
          ),
        output: (id, line) => seen.push(`${id}: ${line}`),
      },
    }),
  );
  t.is(r.status, 'failed');
  t.deepEqual(seen, [
    'a 1/4 old started',
    'a: reading',
    'a 1/4 old ok',
    'b 2/4 old skipped (only with --fetch)',
    'c 3/4 new started',
    'c 3/4 new failed (it broke: token=***)',
  ]);
});
