/**
 * The GitHub Actions workflow in examples/ parses, runs on a schedule (and by
 * hand), installs ferry with ssh2's build allowed, writes the key and the
 * pinned host keys from exactly the secrets its header documents (through
 * the environment, never spliced into a script), runs `ferry drill` with a
 * JUnit file and uploads that file even when the drill fails. The systemd
 * pair is run against the lab by test/e2e/fleet.test.ts.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parse } from 'yaml';
import { main } from '../../src/cli.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const file = `${root}examples/github-actions/ferry-drill.yml`;
const text = readFileSync(file, 'utf8');

interface StepDoc {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface WorkflowDoc {
  name: string;
  on: { schedule?: { cron: string }[]; workflow_dispatch?: unknown };
  permissions?: Record<string, string>;
  jobs: Record<string, { 'runs-on': string; env?: Record<string, string>; steps: StepDoc[] }>;
}

const wf = parse(text) as WorkflowDoc;
const [job] = Object.values(wf.jobs);
const steps = job!.steps;

/** `$NAME` / `"$NAME"` in a run script, from the step's and the job's env. */
function expand(script: string, step: StepDoc): string {
  const env = { ...job!.env, ...step.env };
  return script.replace(/"?\$([A-Z_]+)"?/g, (m, name: string) => env[name] ?? m);
}

test('it runs every night and by hand, reading only what it needs', (t) => {
  const cron = wf.on.schedule?.[0]?.cron ?? '';
  t.regex(cron, /^(\S+\s+){4}\S+$/, 'five cron fields');
  const [minute, hour] = cron.split(/\s+/).map(Number);
  t.true(minute! >= 0 && minute! < 60 && hour! >= 0 && hour! < 24, cron);
  t.true('workflow_dispatch' in wf.on);
  t.deepEqual(wf.permissions, { contents: 'read' });
  for (const s of steps.filter((x) => x.uses)) {
    t.regex(s.uses!, /^[\w.-]+\/[\w.-]+@(v\d+|[0-9a-f]{40})$/, `${s.uses} is pinned`);
  }
});

test('the secrets it reads are exactly those its header documents, and only through env', (t) => {
  const documented = [...text.matchAll(/^# {3}(FERRY_[A-Z_]+) /gm)].map((m) => m[1]);
  const used = [
    ...new Set([...text.matchAll(/\$\{\{\s*secrets\.([A-Z_]+)\s*\}\}/g)].map((m) => m[1])),
  ];
  t.deepEqual(used.sort(), documented.sort());
  t.deepEqual(documented.sort(), ['FERRY_KNOWN_HOSTS', 'FERRY_SSH_KEY']);
  for (const s of steps) {
    t.false((s.run ?? '').includes('${{'), `${s.name}: no expression spliced into a script`);
  }
  const keys = steps.find((s) => s.env?.FERRY_SSH_KEY)!;
  const secret = (name: string): string => `\${{ secrets.${name} }}`;
  t.is(keys.env!.FERRY_SSH_KEY, secret('FERRY_SSH_KEY'));
  t.is(keys.env!.FERRY_KNOWN_HOSTS, secret('FERRY_KNOWN_HOSTS'));
  // Written private (umask 077) where the documented inventory looks for them.
  t.regex(keys.run!, /umask 077/);
  t.regex(keys.run!, /"\$FERRY_SSH_KEY" > ~\/\.ssh\/ferry_ed25519/);
  t.regex(keys.run!, /"\$FERRY_KNOWN_HOSTS" > ~\/\.ssh\/known_hosts/);
  t.regex(text, /identity: ~\/\.ssh\/ferry_ed25519/);
  // No step trusts unknown host keys: they are pinned.
  for (const s of steps) t.notRegex(s.run ?? '', /accept-new-host-keys/);
});

test('it installs ferry with the build allowed, drills with JUnit, and uploads it whatever happened', async (t) => {
  const names = steps.map((s) => s.uses?.split('@')[0] ?? 'run');
  t.deepEqual(names.slice(0, 2), ['actions/checkout', 'actions/setup-node']);
  t.true(Number(steps[1]!.with?.['node-version']) >= 20);
  const install = steps.find((s) => /npm install -g/.test(s.run ?? ''))!;
  t.regex(install.run!, /--allow-scripts=ssh2,cpu-features dokku-ferry/);

  const drill = steps.find((s) => /\bferry drill\b/.test(s.run ?? ''))!;
  const argv = expand(drill.run!, drill).trim().split(/\s+/);
  t.deepEqual(argv.slice(0, 2), ['ferry', 'drill']);
  const junit = argv[argv.indexOf('--junit') + 1];
  t.truthy(junit);
  // The command line is one ferry accepts (its parser, not a guess): --dry-run plans only.
  const order = steps.indexOf(drill);
  const check = steps.find((s) => /\bferry check\b/.test(s.run ?? ''))!;
  t.true(steps.indexOf(check) < order, 'check before the drill');
  const upload = steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
  t.is(upload.if, 'always()');
  t.is(upload.with?.path, junit);
  t.true(steps.indexOf(upload) > order);
  const cleanup = steps.at(-1)!;
  t.is(cleanup.if, 'always()');
  t.regex(cleanup.run!, /rm -f ~\/\.ssh\/ferry_ed25519/);

  const out: string[] = [];
  const sink = { write: (s: string) => out.push(s) } as unknown as NodeJS.WritableStream;
  const code = await main(argv.slice(1).concat('--help'), {
    stdout: sink,
    stderr: sink,
    env: {},
    stderrIsTty: false,
  });
  t.is(code, 0, out.join(''));
});
