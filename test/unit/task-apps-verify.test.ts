import test from 'ava';
import { FerryError } from '../../src/errors.js';
import verifyApps, { answered, parseHttpLine, run } from '../../src/tasks/verify-apps.js';
import { app, fakeRuntime, manifest, psJson, type Reply } from './task-apps-fake.js';

const SERVICES = [
  { plugin: 'postgres', name: 'db', image: 'postgres', imageVersion: '15', links: ['web', 'api'] },
];

function answers(map: Record<string, Reply>): (cmd: string) => Reply {
  return (cmd) => {
    for (const [k, v] of Object.entries(map)) if (cmd.includes(k)) return v;
    return {};
  };
}

test('parseHttpLine and answered', (t) => {
  t.deepEqual(parseHttpLine('200 web.example.com\n'), { code: 200, vhost: 'web.example.com' });
  t.deepEqual(parseHttpLine('000 web.example.com\n'), { code: 0, vhost: 'web.example.com' });
  t.is(parseHttpLine('- -\n'), undefined);
  t.true(answered(200));
  t.true(answered(302));
  t.true(answered(404));
  t.false(answered(502));
  t.false(answered(0));
});

test('all good: per-app and per-service results; a worker without web is not requested', async (t) => {
  const m = manifest(
    [app('web'), app('api'), app('worker'), app('draft', { deployed: false, running: 'false' })],
    { services: SERVICES },
  );
  const f = fakeRuntime(
    verifyApps,
    { http: true, timeout: 5 },
    m,
    answers({
      'ps:report worker': { stdout: psJson('true', false) },
      'ps:report': { stdout: psJson('true') },
      '/home/dokku/web/VHOST': { stdout: '200 web.new.lab\n' },
      '/home/dokku/api/VHOST': { stdout: '- -\n' },
      'postgres:info': { stdout: 'running\n' },
      'postgres:linked': { code: 0 },
    }),
  );
  const out = await run(f.rt);
  const apps = out?.apps as Record<string, Record<string, unknown>>;
  t.is(apps.web?.http, 200);
  t.is(apps.api?.http, 'no domain');
  t.is(apps.worker?.http, undefined);
  t.false(f.commands.some((c) => c.includes('/home/dokku/worker/VHOST')));
  t.is(apps.draft?.checked, false);
  t.deepEqual(out?.services, {
    'postgres/db': { status: 'running', linked: { web: true, api: true } },
  });
  t.true(f.commands.includes('dokku postgres:linked db web'));
  t.true(f.commands.includes('dokku postgres:info db --status'));
});

test('every problem is reported at once; a stopped-on-source app may be stopped', async (t) => {
  const m = manifest([app('web'), app('api'), app('off', { running: 'false' })], {
    services: SERVICES,
  });
  const f = fakeRuntime(
    verifyApps,
    { http: true, timeout: 1 },
    m,
    answers({
      'ps:report web': { stdout: psJson('true') },
      'ps:report api': { stdout: psJson('mixed') },
      'ps:report off': { stdout: psJson('false') },
      '/home/dokku/web/VHOST': { stdout: '502 web.new.lab\n' },
      '/home/dokku/api/VHOST': { stdout: '200 api.new.lab\n' },
      'postgres:info': { stdout: 'exited\n' },
      'postgres:linked db api': { code: 1, stderr: ' !     Service db is not linked to api\n' },
    }),
  );
  const e = await t.throwsAsync(run(f.rt), { instanceOf: FerryError });
  t.regex(e.message, /^4 check\(s\) failed on new/);
  t.regex(e.message, /api: not running here \(Running: mixed/);
  t.regex(e.message, /web: http:\/\/web\.new\.lab\/ through the proxy answered 502/);
  t.regex(e.message, /postgres db: not linked to api here/);
  t.regex(e.message, /postgres db: status exited/);
  t.notRegex(e.message, /off:/);
  t.is(
    f.commands.filter((c) => c.includes('/home/dokku/web/VHOST')).length,
    3,
    'a 5xx is tried 3 times',
  );
});

test('an app missing here is one problem among the others, not an abort', async (t) => {
  const m = manifest([app('gone'), app('web')], { services: SERVICES });
  const f = fakeRuntime(
    verifyApps,
    { http: false, timeout: 1 },
    m,
    answers({
      'ps:report gone': { code: 20, stderr: ' !     App gone does not exist\n' },
      'ps:report web': { stdout: psJson('true') },
      'postgres:info': { stdout: 'running\n' },
      'postgres:linked db api': { code: 20, stderr: ' !     App api does not exist\n' },
    }),
  );
  const e = await t.throwsAsync(run(f.rt), { instanceOf: FerryError });
  t.regex(e.message, /^2 check\(s\) failed/);
  t.regex(e.message, /gone: no process report here/);
  t.regex(e.message, /postgres db: not linked to api here/);
  t.false(
    f.commands.some((c) => c.includes('curl')),
    'http: false requests nothing',
  );
});
