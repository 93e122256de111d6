/** The planner: pure, exact, quoted; bindings checked before anything. */
import { execFileSync } from 'node:child_process';
import test from 'ava';
import { main } from '../../src/cli.js';
import { InputError, InternalError } from '../../src/errors.js';
import { type Inventory, validateInventory } from '../../src/inventory/index.js';
import { checkActions, formatPlan, type Plan, parseBindings, plan } from '../../src/plan/index.js';
import { loadPlaybook } from '../../src/playbook/index.js';
import { $, hole } from '../../src/ssh/shell.js';
import type { PlannedAction } from '../../src/tasks/types.js';
import { runIdFor } from '../../src/util/run-id.js';
import { SEED_ORDER } from './plan-fixtures.js';

const RUN = '20261123T100000Z';

const NASTY_REPO = '/home/u/code/it\'s my "app" $(rm -rf ~)';
const NASTY_DIR = "/srv/ferry archives/it's";

function inventory(extra = ''): Inventory {
  return validateInventory(
    `version: 1
hosts:
  old: {address: 192.0.2.10}
  new: {address: 192.0.2.20, port: 2222}
  alias: {address: 192.0.2.10}
apps:
  order: [db-migrator, api]
repos:
  - path: ${JSON.stringify(NASTY_REPO)}
    app: web
backup:
  dir: ${JSON.stringify(NASTY_DIR)}
  keep: 3
${extra}`,
    '/tmp/inv.yml',
    { home: '/home/u' },
  );
}

/** What a POSIX shell makes of a command's words (runs `sh` here, never a host). */
function words(command: string): string[] {
  const out = execFileSync('sh', ['-c', `set -- ${command}; printf '%s\\0' "$@"`], {
    encoding: 'utf8',
  });
  return out.split('\0').slice(0, -1);
}

/** Whether position `at` of a shell command line lies inside single quotes. */
function insideSingleQuotes(command: string, at: number): boolean {
  let inside = false;
  for (let i = 0; i < at; i++) {
    const ch = command[i];
    if (!inside && ch === '\\') i++;
    else if (ch === "'") inside = !inside;
  }
  return inside;
}

function commands(p: Plan): { step: string; host: string; command: string }[] {
  const out: { step: string; host: string; command: string }[] = [];
  const add = (step: string, a: PlannedAction) => {
    if (a.kind === 'stream') {
      out.push(
        { step, host: a.from, command: a.send.toString() },
        { step, host: a.to, command: a.receive.toString() },
      );
    } else {
      out.push({
        step,
        host: a.kind === 'remote' ? a.host : 'controller',
        command: a.command.toString(),
      });
      for (const f of a.fallback ?? []) add(step, f);
    }
  };
  for (const s of p.steps) for (const a of s.actions) add(s.id, a);
  return out;
}

test('migrate old→new: every step in order, each on the right host', async (t) => {
  const pb = await loadPlaybook('migrate');
  const inv = inventory();
  const p = plan(pb, inv, parseBindings(['source=old', 'target=new'], pb, inv), { runId: RUN });
  t.is(p.version, 1);
  t.deepEqual(p.bindings.source, {
    host: 'old',
    address: '192.0.2.10',
    user: 'root',
    port: 22,
    sudo: false,
  });
  const hostOf = Object.fromEntries(p.steps.map((s) => [s.task, s.host]));
  t.like(hostOf, {
    'check-quiet': 'old',
    'check-target': 'new',
    inventory: 'old',
    'cut-over': 'old',
    transfer: 'new',
    'verify-archive': 'new',
    extract: 'new',
    'clear-stale': 'new',
    'recreate-engine': 'new',
    'start-services': 'new',
    'plugin-triggers': 'new',
    'rewrite-remotes': 'controller',
    'rebuild-apps': 'new',
    'verify-apps': 'new',
    'release-source': 'old',
  });
  // The seed's order: what must come before what.
  const at = (task: string) => p.steps.findIndex((s) => s.task === task);
  for (const [a, b] of SEED_ORDER) t.true(at(a) >= 0 && at(a) < at(b), `${a} before ${b}`);

  // What changes the source is only its own run folder (manifest, exports, stream checksum),
  // and the sweep, which removes only what an earlier ferry run left there (pull keys, temp files).
  t.is(p.steps[0]!.task, 'sweep');
  // Besides, the source's own run folder (manifest, exports, stream checksum),
  // the cut-over's freeze, each change with its undo planned, and what becomes of it after.
  const undoOf: Record<string, string> = {
    'maintenance-on': 'maintenance-off',
    'ps-stop': 'ps-start',
    'stop-service': 'start-service',
  };
  for (const s of p.steps) {
    const ids = new Set(s.actions.map((a) => a.id));
    for (const a of s.actions) {
      if (a.kind === 'remote' && a.host === 'old' && a.changes && !a.only) {
        const text = a.command.toString();
        if (s.task === 'sweep') {
          t.regex(text, /ferry-direct/);
          continue;
        }
        if (s.task === 'release-source') continue;
        if (undoOf[a.id]) {
          t.is(s.task, 'cut-over');
          t.true(ids.has(undoOf[a.id]!), `${a.id} has its undo ${undoOf[a.id]}`);
          continue;
        }
        t.true(text.includes(`${NASTY_DIR.replace("'", "'\\''")}/old-${RUN}`), text);
      }
    }
  }
  t.deepEqual(p.undo, { from: 'cut-over', until: 'verify-apps' });
  const transfer = p.steps.find((s) => s.task === 'transfer')!;
  const stream = transfer.actions.find((a) => a.kind === 'stream')!;
  t.like(stream, { kind: 'stream', from: 'old', to: 'new', route: 'auto' });
  const rebuild = p.steps.find((s) => s.task === 'rebuild-apps')!;
  const psRebuild = rebuild.actions.find((a) => a.id === 'rebuild-git');
  t.is(psRebuild?.kind === 'remote' ? psRebuild.command.toString() : '', 'dokku ps:rebuild <app>');
  t.like(psRebuild, { forEach: 'app', items: ['db-migrator', 'api'] });
});

test('untrusted parts of every command are quoted: a repo path and a backup dir with quotes, spaces, $()', async (t) => {
  const pb = await loadPlaybook('migrate');
  const inv = inventory();
  const p = plan(pb, inv, { source: 'old', target: 'new' }, { runId: RUN });
  const rewrite = p.steps.find((s) => s.task === 'rewrite-remotes')!;
  const [get, set, ls] = rewrite.actions;
  t.deepEqual(words(get!.kind === 'local' ? get!.command.toString() : ''), [
    'git',
    '-C',
    NASTY_REPO,
    'remote',
    'get-url',
    'dokku',
  ]);
  t.deepEqual(words(set!.kind === 'local' ? set!.command.toString() : ''), [
    'git',
    '-C',
    NASTY_REPO,
    'remote',
    'set-url',
    'dokku',
    'ssh://dokku@192.0.2.20:2222/web',
  ]);
  t.deepEqual(words(ls!.kind === 'local' ? ls!.command.toString() : ''), [
    'git',
    '-C',
    NASTY_REPO,
    'ls-remote',
    '--heads',
    'dokku',
  ]);

  const inv2 = p.steps.find((s) => s.task === 'inventory')!;
  const mk = inv2.actions.find((a) => a.id === 'run-dirs')!;
  t.deepEqual(words(mk.kind === 'remote' ? mk.command.toString() : ''), [
    'install',
    '-d',
    '-m',
    '0700',
    NASTY_DIR,
    `${NASTY_DIR}/old-${RUN}`,
  ]);
  // Wherever the dangerous text reaches a command, it is inside single quotes.
  let seen = 0;
  for (const c of commands(p)) {
    for (const needle of ['$(rm -rf ~)', 'ferry archives', 's my "app"']) {
      for (let i = c.command.indexOf(needle); i >= 0; i = c.command.indexOf(needle, i + 1)) {
        seen++;
        t.true(insideSingleQuotes(c.command, i), `${c.step}: ${c.command}`);
      }
    }
  }
  t.true(seen > 10);
});

test('every command of every shipped playbook is valid bash (placeholders filled)', async (t) => {
  const inv = inventory();
  const cases = [
    ['migrate', { source: 'old', target: 'new' }, { force: true }],
    ['backup', { source: 'old' }, { fetch: '/tmp/x y' }],
    ['restore', { target: 'new', source: 'old' }, { archive: { path: '/b/old-1' } }],
    ['drill', { source: 'old', scratch: 'new' }, {}],
  ] as const;
  let n = 0;
  for (const [name, bindings, opts] of cases) {
    const p = plan(await loadPlaybook(name), inv, { ...bindings }, { runId: RUN, ...opts });
    const all = commands(p).map((c) => c.command.replace(/<([a-z-]+)>/g, 'PLACEHOLDER_$1'));
    n += all.length;
    // One bash for all (each command in its own subshell); on failure, find the culprit.
    const script = all.map((c) => `(\n${c}\n)`).join('\n');
    try {
      execFileSync('bash', ['-n', '-c', script], { stdio: 'pipe' });
      t.pass();
    } catch {
      for (const c of all)
        t.notThrows(
          () => execFileSync('bash', ['-n', '-c', c], { stdio: 'pipe' }),
          `${name}: ${c}`,
        );
    }
  }
  t.true(n > 100, `${n} commands`);
});

test('source equal to the target is refused, by name or by address', async (t) => {
  const pb = await loadPlaybook('migrate');
  const inv = inventory();
  const same = t.throws(() => plan(pb, inv, { source: 'old', target: 'old' }, { runId: RUN }), {
    instanceOf: InputError,
  });
  t.regex(same.message, /source and target are the same host \(old\)/);
  const alias = t.throws(() => plan(pb, inv, { source: 'old', target: 'alias' }, { runId: RUN }), {
    instanceOf: InputError,
  });
  t.regex(alias.message, /same machine: both are 192\.0\.2\.10:22/);
});

test('unknown roles and hosts are refused with the known ones; a missing role too', async (t) => {
  const pb = await loadPlaybook('migrate');
  const inv = inventory();
  const e = t.throws(() => parseBindings(['source=olde', 'targt=new', 'oops'], pb, inv), {
    instanceOf: InputError,
  });
  t.is(e.diagnostics.length, 3);
  t.regex(e.message, /unknown host "olde"; did you mean "old"\?/);
  t.regex(e.message, /hosts in \/tmp\/inv\.yml: old, new and alias/);
  t.regex(e.message, /migrate has no role "targt"; did you mean "target"\?/);
  t.regex(e.message, /oops: expected ROLE=HOST/);
  const missing = t.throws(() => plan(pb, inv, { source: 'old' }, { runId: RUN }), {
    instanceOf: InputError,
  });
  t.regex(missing.message, /role "target" is not bound to a host/);
});

test('backup: fetch runs only with --fetch; retention keeps backup.keep', async (t) => {
  const pb = await loadPlaybook('backup');
  const inv = inventory();
  const without = plan(pb, inv, { source: 'old' }, { runId: RUN });
  t.is(without.steps.at(-1)!.skipped, 'only with --fetch');
  t.deepEqual(without.steps.at(-1)!.actions, []);
  const withFetch = plan(pb, inv, { source: 'old' }, { runId: RUN, fetch: '/tmp/my backups' });
  const fetch = withFetch.steps.at(-1)!;
  t.is(fetch.skipped, undefined);
  t.like(fetch.actions[0], { kind: 'stream', from: 'old', to: 'controller' });
  const retention = withFetch.steps.find((s) => s.task === 'retention')!;
  t.regex(
    retention.actions[0]!.kind === 'remote' ? retention.actions[0]!.command.toString() : '',
    /tail -n \+4 /,
  );
});

test('--force takes a safety archive of the target before anything else changes it', async (t) => {
  const pb = await loadPlaybook('migrate');
  const inv = inventory();
  const p = plan(pb, inv, { source: 'old', target: 'new' }, { runId: RUN, force: true });
  const check = p.steps.find((s) => s.task === 'check-target')!;
  t.true(
    check.actions.some(
      (a) =>
        a.id === 'create-archive' &&
        a.kind === 'remote' &&
        a.command.toString().includes(`new-pre-ferry-${RUN}`),
    ),
  );
  const plain = plan(pb, inv, { source: 'old', target: 'new' }, { runId: RUN });
  t.false(plain.steps.find((s) => s.task === 'check-target')!.actions.some((a) => a.changes));
});

test('restore from an archive here streams from the controller; drill finds the latest', async (t) => {
  const inv = inventory();
  const restore = await loadPlaybook('restore');
  const p = plan(
    restore,
    inv,
    { target: 'new' },
    { runId: RUN, archive: { path: '/backups/old-1/dokku.tar.gz' } },
  );
  const stream = p.steps
    .find((s) => s.task === 'transfer')!
    .actions.find((a) => a.id === 'archive')!;
  t.like(stream, { from: 'controller', to: 'new', route: 'relay', item: 'gzip' });
  t.is(
    stream.kind === 'stream' ? stream.send.toString() : '',
    'cat -- /backups/old-1/dokku.tar.gz',
  );
  t.regex(stream.kind === 'stream' ? stream.receive.toString() : '', /gzip -dc/);
  const drill = await loadPlaybook('drill');
  const d = plan(drill, inv, { source: 'old', scratch: 'new' }, { runId: RUN });
  const first = d.steps
    .find((s) => s.task === 'transfer')!
    .actions.find((a) => a.id === 'latest-archive');
  t.like(first, { kind: 'remote', host: 'old', capture: 'archive-dir' });
});

test('plan is pure: the same input gives the same plan, as JSON and as text', async (t) => {
  const pb = await loadPlaybook('migrate');
  const inv = inventory();
  const a = plan(pb, inv, { source: 'old', target: 'new' }, { runId: RUN });
  const b = plan(pb, inv, { source: 'old', target: 'new' }, { runId: RUN });
  t.deepEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));
  t.is(formatPlan(a, inv), formatPlan(b, inv));
  t.is(runIdFor(new Date('2026-11-23T10:00:00.123Z')), RUN);
});

function capture() {
  let text = '';
  return {
    stream: {
      write: (s: string) => {
        text += s;
        return true;
      },
    } as unknown as NodeJS.WritableStream,
    text: () => text,
  };
}

test('`ferry plan migrate source=old target=new -i inventory/lab.yml` works without the lab key', async (t) => {
  const out = capture();
  const err = capture();
  const code = await main(
    ['plan', 'migrate', 'source=old', 'target=new', '-i', 'inventory/lab.yml', '--json'],
    { stdout: out.stream, stderr: err.stream, env: {}, stderrIsTty: false },
  );
  t.is(code, 0, err.text());
  const doc = JSON.parse(out.text()) as Plan;
  t.is(doc.version, 1);
  t.is(doc.playbook.name, 'migrate');
  t.is(doc.steps.length, 22);
  t.deepEqual(Object.keys(doc.steps[0]!), [
    'id',
    'task',
    'role',
    'host',
    'summary',
    'why',
    'actions',
  ]);
});

test('`ferry plan` with an unknown host exits 2 with the known hosts, no stack trace', async (t) => {
  const out = capture();
  const err = capture();
  const code = await main(
    ['plan', 'migrate', 'source=old', 'target=nwe', '-i', 'inventory/lab.yml'],
    { stdout: out.stream, stderr: err.stream, env: {}, stderrIsTty: false },
  );
  t.is(code, 2);
  t.is(
    err.text(),
    'target=nwe: unknown host "nwe"; did you mean "new"?\n    hosts in inventory/lab.yml: old, new and scratch\n',
  );
  t.is(out.text(), '');
});

test("a task's plan keeps its contract: declared ids, one action per id and item, holes it declares", (t) => {
  const cmd = $`dokku ps:report ${hole('app')}`;
  const spec = { report: ['app'], probe: [] } as const;
  const a = (id: string, extra: Partial<PlannedAction> = {}): PlannedAction =>
    ({ kind: 'remote', id, host: 'old', command: cmd, ...extra }) as PlannedAction;
  t.notThrows(() => checkActions('x', spec, [a('report')]));
  t.throws(() => checkActions('x', spec, [a('other')]), {
    instanceOf: InternalError,
    message: /undeclared action "other"/,
  });
  t.throws(() => checkActions('x', spec, [a('probe')]), {
    instanceOf: InternalError,
    message: /<app> is not among its declared values \(none\)/,
  });
  t.throws(
    () =>
      checkActions('x', spec, [
        a('report'),
        a('report', { command: $`dokku ps:stop ${hole('app')}` }),
      ]),
    { instanceOf: InternalError, message: /two different "report"/ },
  );
  t.notThrows(() =>
    checkActions('x', spec, [a('report', { item: 'a' }), a('report', { item: 'b' })]),
  );
  t.throws(
    () => checkActions('x', spec, [a('probe', { command: $`true`, fallback: [a('nope')] })]),
    { message: /undeclared action "nope"/ },
  );
});
