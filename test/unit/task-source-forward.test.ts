/** forward: checked before the freeze, started for the TTL and probed through the source, stopped. */
import test from 'ava';
import { StopError } from '../../src/errors.js';
import forward, {
  FORWARD_MARK,
  STOP_FORWARD,
  startForwardCommand,
} from '../../src/tasks/forward.js';
import type { ManifestApp } from '../../src/tasks/manifest.js';
import type { PlanContext } from '../../src/tasks/types.js';
import { manifestOf, runTask, taskInventory } from './task-fake.js';

type ForwardParams = Parameters<typeof forward.plan>[0]['params'];

function ctx(params: Partial<ForwardParams>, ttl?: number): PlanContext<ForwardParams> {
  const inv = taskInventory();
  return {
    step: { id: 'forward', task: 'forward', on: 'source', index: 14 },
    params: { to: 'target', mode: 'start', ...params },
    host: inv.hosts.old,
    roles: { source: inv.hosts.old, target: inv.hosts.new },
    inventory: inv,
    options: { runId: '20261123T100000Z', ...(ttl ? { forward: { ttlSeconds: ttl } } : {}) },
  };
}

const app = (name: string, running: ManifestApp['running']): ManifestApp => ({
  name,
  method: 'git',
  deploySource: 'git-push',
  deploySourceMetadata: null,
  deployed: true,
  running,
  restore: true,
  mounts: [],
});

test('check: only the tools, before anything is frozen; a missing tool stops the run', async (t) => {
  t.deepEqual(
    forward.plan(ctx({ mode: 'check' })).map((a) => a.id),
    ['tools'],
  );
  const missing = await runTask(forward, ctx({ mode: 'check' }), {
    answers: { tools: { code: 1, stdout: 'missing: iptables\n' } },
  });
  t.true(missing.error instanceof StopError);
  t.regex(String((missing.error as Error).message), /old cannot forward: missing: iptables/);
  const ok = await runTask(forward, ctx({ mode: 'check' }));
  t.deepEqual(ok.result, { forwarding: false });
});

test('start: the TTL and the target address in the command; the first running app probed from the target', async (t) => {
  const actions = forward.plan(ctx({}, 3600));
  t.deepEqual(
    actions.map((a) => a.id),
    ['tools', 'start', 'probe'],
  );
  const start = actions.find((a) => a.id === 'start');
  t.true(start?.kind === 'remote' && start.host === 'old');
  t.is(
    start?.kind === 'remote' ? start.command.render() : '',
    startForwardCommand('192.0.2.20', 3600).render(),
  );
  const probe = actions.find((a) => a.id === 'probe');
  t.true(
    probe?.kind === 'remote' && probe.host === 'new',
    'probed as a client would: from elsewhere',
  );
  t.regex(probe?.kind === 'remote' ? probe.command.toString() : '', /http:\/\/192\.0\.2\.10\//);

  const f = await runTask(forward, ctx({}, 3600), {
    manifest: manifestOf({ apps: [app('down', 'false'), app('web', 'true')] }),
    answers: {
      start: { stdout: '{"80": 40001, "443": 40002}\n' },
      probe: { stdout: '200 1024 web.old.lab\n' },
    },
  });
  t.falsy(f.error);
  t.deepEqual(
    f.seen.calls.filter((c) => c.id === 'probe').map((c) => c.vars.app),
    ['web'],
  );
  t.is(f.result?.forwarding, true);
  t.regex(f.seen.logs.join('\n'), /http:\/\/web\.old\.lab\/ at old answered 200 by new/);
  t.regex(
    f.seen.states.at(-1)!,
    /^old: forwarding its ports 80 and 443 to new until .*ferry forward old --stop/,
  );

  const bad = await runTask(forward, ctx({}, 3600), {
    manifest: manifestOf({ apps: [app('web', 'true')] }),
    answers: { probe: { stdout: '502 0 web.old.lab\n' } },
  });
  t.regex(bad.seen.warnings.join('\n'), /answered 502 through the forwarder/);
});

test('the start command removes an earlier forwarding first; stop removes only rules marked ferry-forward', (t) => {
  const cmd = startForwardCommand("10.0.0.2'; rm -rf /", 90).render();
  // Quoted in the wrapper, which is itself quoted into the file it is written to.
  t.true(
    cmd.includes(`target='\\''10.0.0.2'\\''\\'\\'''\\''; rm -rf /'\\''`),
    'the address is quoted',
  );
  t.true(cmd.indexOf('kill -TERM') < cmd.indexOf('setsid bash'), 'an earlier forwarder goes first');
  t.true(STOP_FORWARD.render().includes(`--comment ${FORWARD_MARK}`));
  t.deepEqual(
    forward.plan(ctx({ mode: 'stop', to: undefined })).map((a) => a.id),
    ['stop'],
  );
});
