import test from 'ava';
import { FerryError } from '../../src/errors.js';
import type { Manifest } from '../../src/tasks/manifest.js';
import verifyApps, {
  answered,
  httpCommand,
  notTheApp,
  parseHttpLine,
} from '../../src/tasks/verify-apps.js';
import { app, contextOf, manifest, perCommand, psJson } from './task-apps-data.js';
import { type Answers, commandsOf, runTask } from './task-fake.js';

const SERVICES = [
  { plugin: 'postgres', name: 'db', image: 'postgres', imageVersion: '15', links: ['web', 'api'] },
];

function verify(m: Manifest, params: { http: boolean; timeout: number }, answers: Answers) {
  return runTask(verifyApps, contextOf(verifyApps, params), { manifest: m, answers });
}

/** Rethrows what a run failed with, for t.throws. */
const rethrow = (e: unknown) => () => {
  throw e;
};

test('parseHttpLine, answered, and the proxy answering for the app itself', (t) => {
  t.deepEqual(parseHttpLine('200 512 web.example.com 200 512\n'), {
    code: 200,
    bytes: 512,
    vhost: 'web.example.com',
    own: { code: 200, bytes: 512 },
  });
  t.deepEqual(parseHttpLine('000 0 web.example.com - -\n'), {
    code: 0,
    bytes: 0,
    vhost: 'web.example.com',
  });
  t.is(parseHttpLine('- -\n'), undefined);
  t.true(answered(200));
  t.true(answered(302));
  t.true(answered(404));
  t.false(answered(502));
  t.false(answered(0));
  const line = (s: string) => notTheApp(parseHttpLine(s)!);
  t.is(line('200 512 w 200 512'), undefined);
  t.is(line('404 30 w 404 30'), undefined, "the app's own 404 is its answer");
  t.is(line('200 10 w - -'), undefined, 'no address recorded: the status alone decides');
  t.is(
    line('404 153 w 200 512'),
    'answered 404 where the app itself answers 200: the proxy does not route it',
    "nginx's 404 for an app it has no config for",
  );
  t.is(
    line('200 0 w 200 512'),
    'answered an empty page where the app itself answers 512 bytes: the proxy does not route it',
    "caddy's empty 200 for a host it does not know",
  );
  t.is(line('502 0 w 200 5'), 'answered 502');
});

test('all good: per-app and per-service results; a worker without web is not requested', async (t) => {
  const m = manifest(
    [app('web'), app('api'), app('worker'), app('draft', { deployed: false, running: 'false' })],
    { services: SERVICES },
  );
  const f = await verify(
    m,
    { http: true, timeout: 5 },
    {
      running: perCommand(
        { 'dokku ps:report worker --format json': { stdout: psJson('true', false) } },
        { stdout: psJson('true') },
      ),
      http: perCommand({
        [httpCommand('web', 5).render()]: { stdout: '200 40 web.new.lab 200 40\n' },
        [httpCommand('api', 5).render()]: { stdout: '- -\n' },
      }),
      'service-status': { stdout: 'running\n' },
      linked: { code: 0 },
    },
  );
  t.is(f.error, undefined);
  const out = f.result;
  const apps = out?.apps as Record<string, Record<string, unknown>>;
  t.is(apps.web?.http, 200);
  t.is(apps.api?.http, 'no domain');
  t.is(apps.worker?.http, undefined);
  t.regex(httpCommand('worker', 5).render(), /\/home\/dokku\/worker\/VHOST/);
  t.false(f.seen.calls.some((c) => c.command.includes('/home/dokku/worker/VHOST')));
  t.deepEqual(
    commandsOf(f.seen, 'http'),
    [httpCommand('web', 5).render(), httpCommand('api', 5).render()],
    'web apps only, each once',
  );
  t.is(apps.draft?.checked, false);
  t.deepEqual(out?.services, {
    'postgres/db': { status: 'running', linked: { web: true, api: true } },
  });
  t.deepEqual(commandsOf(f.seen, 'linked'), [
    'dokku postgres:linked db web',
    'dokku postgres:linked db api',
  ]);
  t.deepEqual(commandsOf(f.seen, 'service-status'), ['dokku postgres:info db --status']);
});

test('every problem is reported at once; a stopped-on-source app may be stopped', async (t) => {
  const m = manifest([app('web'), app('api'), app('off', { running: 'false' })], {
    services: SERVICES,
  });
  const f = await verify(
    m,
    { http: true, timeout: 1 },
    {
      running: perCommand({
        'dokku ps:report web --format json': { stdout: psJson('true') },
        'dokku ps:report api --format json': { stdout: psJson('mixed') },
        'dokku ps:report off --format json': { stdout: psJson('false') },
      }),
      http: perCommand({
        [httpCommand('web', 1).render()]: { stdout: '502 0 web.new.lab 200 40\n' },
        [httpCommand('api', 1).render()]: { stdout: '200 40 api.new.lab 200 40\n' },
      }),
      'service-status': { stdout: 'exited\n' },
      linked: perCommand({
        'dokku postgres:linked db api': {
          code: 1,
          stderr: ' !     Service db is not linked to api\n',
        },
      }),
    },
  );
  const e = t.throws(rethrow(f.error), { instanceOf: FerryError });
  t.regex(e!.message, /^4 check\(s\) failed on new/);
  t.regex(e!.message, /api: not running here \(Running: mixed/);
  t.regex(e!.message, /web: http:\/\/web\.new\.lab\/ through the proxy answered 502/);
  t.regex(e!.message, /postgres db: not linked to api here/);
  t.regex(e!.message, /postgres db: status exited/);
  t.notRegex(e!.message, /off:/);
  t.is(
    commandsOf(f.seen, 'http').filter((c) => c === httpCommand('web', 1).render()).length,
    3,
    'a 5xx is tried 3 times',
  );
});

test('an app missing here is one problem among the others, not an abort', async (t) => {
  const m = manifest([app('gone'), app('web')], { services: SERVICES });
  const f = await verify(
    m,
    { http: false, timeout: 1 },
    {
      running: perCommand({
        'dokku ps:report gone --format json': {
          code: 20,
          stderr: ' !     App gone does not exist\n',
        },
        'dokku ps:report web --format json': { stdout: psJson('true') },
      }),
      'service-status': { stdout: 'running\n' },
      linked: perCommand({
        'dokku postgres:linked db api': { code: 20, stderr: ' !     App api does not exist\n' },
      }),
    },
  );
  const e = t.throws(rethrow(f.error), { instanceOf: FerryError });
  t.regex(e!.message, /^2 check\(s\) failed/);
  t.regex(e!.message, /gone: no process report here/);
  t.regex(e!.message, /postgres db: not linked to api here/);
  t.false(
    f.seen.calls.some((c) => c.command.includes('curl')),
    'http: false requests nothing',
  );
  t.false(
    f.seen.calls.some((c) => c.id === 'http'),
    'and plans no request',
  );
});
