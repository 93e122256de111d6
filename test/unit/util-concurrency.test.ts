/**
 * inBatches: order and bound kept; the first failure starts nothing more,
 * aborts the items still running and rejects at once, even when one of them
 * hangs until told (it would hang for ever without the cancel); one that
 * ignores its signal is waited for `settleMs` only; an outside abort stops
 * the batch. And the inventory step, whose per-app reads use it, fails fast
 * when one app's read fails while another's hangs. once: callers that
 * come together share one answer; a failed one is asked again.
 */
import test from 'ava';
import { RemoteError } from '../../src/errors.js';
import { inBatches, once } from '../../src/util/concurrency.js';
import { runPlannedStep, taskInventory } from './task-fake.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `signal` aborts; rejects then with its reason. Never on its own. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Races `p` against a deadline, so a regression fails the test instead of hanging it. */
async function within<T>(ms: number, p: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
  });
  try {
    return { value: await Promise.race([p, deadline]) };
  } catch (error) {
    return { error };
  } finally {
    clearTimeout(timer);
  }
}

test('keeps order and runs at most n at a time', async (t) => {
  let running = 0;
  let peak = 0;
  const out = await inBatches([5, 1, 4, 2, 3], 2, async (x) => {
    running++;
    peak = Math.max(peak, running);
    await sleep(x * 5);
    running--;
    return x * 10;
  });
  t.deepEqual(out, [50, 10, 40, 20, 30]);
  t.is(peak, 2);
});

test('the first failure cancels a sibling that hangs, and rejects at once', async (t) => {
  const started: number[] = [];
  const aborted: number[] = [];
  const boom = new Error('item 1 failed');
  const t0 = Date.now();
  const r = await within(
    3000,
    inBatches([0, 1, 2, 3, 4, 5], 3, async (i, signal) => {
      started.push(i);
      if (i === 1) {
        await sleep(30);
        throw boom;
      }
      if (i === 0 || i === 2) {
        // A read that never ends by itself (a FIFO, a half-dead connection).
        signal.addEventListener('abort', () => aborted.push(i), { once: true });
        return untilAborted(signal);
      }
      return i;
    }),
  );
  t.is(r.error, boom, 'the first failure is what the call rejects with');
  t.true(Date.now() - t0 < 1000, `rejected after ${Date.now() - t0} ms`);
  t.deepEqual(aborted.sort(), [0, 2], 'both hanging siblings were told to stop');
  t.deepEqual(started.sort(), [0, 1, 2], 'nothing started after the failure');
});

test('a sibling that ignores its signal is waited for settleMs, not for ever', async (t) => {
  const t0 = Date.now();
  let release: () => void = () => {};
  // Bounds are generous for a loaded machine; without settleMs the stubborn one never ends.
  const r = await within(
    10_000,
    inBatches(
      ['stubborn', 'bad'],
      2,
      async (x) => {
        if (x === 'bad') throw new Error('bad');
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return x;
      },
      { settleMs: 300 },
    ),
  );
  const took = Date.now() - t0;
  release();
  t.is((r.error as Error | undefined)?.message, 'bad');
  t.true(took >= 290 && took < 5000, `rejected after ${took} ms`);
});

test('an outside abort stops the batch and tells the running items', async (t) => {
  const outer = new AbortController();
  const told: string[] = [];
  const p = inBatches(
    ['a', 'b', 'c', 'd'],
    2,
    async (x, signal) => {
      signal.addEventListener('abort', () => told.push(x), { once: true });
      return untilAborted(signal);
    },
    { signal: outer.signal },
  );
  setTimeout(() => outer.abort(new Error('interrupted by the user')), 20);
  const r = await within(3000, p);
  t.regex(String((r.error as Error | undefined)?.message), /interrupted by the user/);
  t.deepEqual(told.sort(), ['a', 'b']);
});

test('inventory: one app failing cancels the reads of the others and fails the step fast', async (t) => {
  const cancelled: string[] = [];
  const started = new Map<string, number>();
  let failedAt = Number.POSITIVE_INFINITY;
  const names = ['api', 'broken', 'slow', 'web', 'a5', 'a6', 'a7', 'a8', 'a9'];
  const t0 = Date.now();
  const run = runPlannedStep('backup', taskInventory(), { source: 'old' }, 'inventory', {
    answers: {
      'host-facts': { stdout: 'dokku version 0.38.27\nx86_64\n1001\n1001\n' },
      'apps-list': { stdout: `${names.join('\n')}\n` },
      'deploy-source': async (call, signal) => {
        const app = call.vars.app ?? '';
        // The runtime refuses a command whose signal already aborted (untilAborted).
        if (signal?.aborted) return { code: 143, stderr: 'not started: the step stopped' };
        started.set(app, Date.now());
        if (app === 'broken') {
          await sleep(20);
          failedAt = Date.now();
          return { code: 1, stderr: 'cat: /var/lib/dokku/config/apps/broken: Input/output error' };
        }
        if (app === 'slow') {
          if (!signal) return { code: 99, stderr: 'the read was given no signal' };
          await untilAborted(signal).catch(() => cancelled.push(app));
          return { code: 143, stderr: 'killed' };
        }
        await sleep(40);
        return { stdout: 'deploy-source=git-push\ndeploy-source-metadata=\n' };
      },
      'ps-report': { stdout: '{"deployed":"true","running":"true","restore":"true"}' },
      'storage-list': { stdout: '[]' },
    },
  });
  const r = await within(10_000, run);
  t.falsy(r.error, 'the step ended (did not hang)');
  const err = r.value?.error;
  t.true(err instanceof RemoteError, String(err));
  t.regex(String((err as Error).message), /Input\/output error/);
  t.deepEqual(cancelled, ['slow'], 'the hanging read was cancelled');
  t.true(Date.now() - t0 < 5000, `failed after ${Date.now() - t0} ms`);
  t.deepEqual(
    [...started].filter(([, at]) => at > failedAt).map(([app]) => app),
    [],
    'no read started after the failure',
  );
  t.is(started.size, 4, [...started.keys()].join());
});

test('once: callers that come while the first waits share its answer; a failure is asked again', async (t) => {
  const cache = new Map<string, Promise<boolean>>();
  let asked = 0;
  const probe = async () => {
    asked++;
    await sleep(20);
    return true;
  };
  const all = await Promise.all([1, 2, 3].map(() => once(cache, 'src→dst', probe)));
  t.deepEqual(all, [true, true, true]);
  t.is(asked, 1, 'three streams started together probe once');
  t.true(await once(cache, 'src→dst', probe));
  t.is(asked, 1, 'a later caller is answered from the cache');
  t.true(await once(cache, 'dst→src', probe));
  t.is(asked, 2, 'another pair is asked');

  let failures = 0;
  const flaky = async () => {
    failures++;
    if (failures === 1) throw new Error('no answer');
    return false;
  };
  await t.throwsAsync(once(cache, 'a→b', flaky), { message: 'no answer' });
  t.false(await once(cache, 'a→b', flaky), 'asked again after the failure');
  t.is(failures, 2);
});
