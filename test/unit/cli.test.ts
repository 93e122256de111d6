/**
 * The command line: each command takes exactly its own flags. A flag another
 * command takes is a usage error (exit 2) naming it, never silently ignored;
 * nothing is read, planned or contacted first.
 */
import test from 'ava';
import { main } from '../../src/cli.js';

async function ferry(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void) =>
    ({
      write: (s: string) => {
        f(s);
        return true;
      },
    }) as unknown as NodeJS.WritableStream;
  const code = await main(argv, {
    stdout: sink((s) => (out += s)),
    stderr: sink((s) => (err += s)),
    env: {},
    stderrIsTty: false,
  });
  return { code, out, err };
}

test('`ferry backup old --route relay` is a usage error naming the flag and who takes it', async (t) => {
  const r = await ferry('backup', 'old', '--route', 'relay', '-i', '/nonexistent/inventory.yml');
  t.is(r.code, 2);
  t.is(r.out, '');
  t.regex(
    r.err,
    /^error: ferry backup does not take --route \(only ferry migrate, ferry restore, ferry drill do\)\n/,
  );
  t.regex(r.err, /hint: Its options: .*--fetch/);
  t.notRegex(r.err, /nonexistent/, 'refused before the inventory is read');
});

test('`ferry plan --force` is a usage error naming the flag', async (t) => {
  const r = await ferry('plan', 'migrate', 'source=old', 'target=new', '--force');
  t.is(r.code, 2);
  t.regex(
    r.err,
    /^error: ferry plan does not take --force \(only ferry migrate, ferry restore do\)\n/,
  );
});

test('every run command refuses the flags of the others', async (t) => {
  const cases: [string[], string][] = [
    [['drill', 'old', '--to', 'scratch', '--force'], '--force'],
    [['backup', 'old', '--force'], '--force'],
    [['migrate', 'old', 'new', '--fetch', '/tmp/x'], '--fetch'],
    [['migrate', 'old', 'new', '--to', 'x'], '--to'],
    [['check', '--dry-run'], '--dry-run'],
    [['check', '--resume'], '--resume'],
  ];
  for (const [argv, flag] of cases) {
    const r = await ferry(...argv);
    t.is(r.code, 2, argv.join(' '));
    t.true(r.err.includes(`does not take ${flag}`), `${argv.join(' ')}: ${r.err}`);
  }
});

test('an unknown flag, a bad value, a missing value: usage errors with the usage line', async (t) => {
  const unknown = await ferry('migrate', 'old', 'new', '--frce');
  t.is(unknown.code, 2);
  t.regex(unknown.err, /unknown option --frce for ferry migrate/);
  const route = await ferry('migrate', 'old', 'new', '--route', 'teleport');
  t.is(route.code, 2);
  t.regex(route.err, /--route must be direct, relay or auto, got "teleport"/);
  const missing = await ferry('backup', 'old', '--fetch');
  t.is(missing.code, 2);
  t.regex(missing.err, /--fetch <value>' argument missing[\s\S]*Usage: ferry backup HOST/);
});

test('help and version; no command is exit 2 with the list', async (t) => {
  const help = await ferry('migrate', '--help');
  t.is(help.code, 0);
  t.regex(help.out, /^Usage: ferry migrate SOURCE TARGET/);
  t.regex(help.out, /--route R/);
  const none = await ferry();
  t.is(none.code, 2);
  t.regex(none.out, /Commands:\n {2}migrate/);
  const version = await ferry('--version');
  t.is(version.code, 0);
  t.regex(version.out, /^\d+\.\d+\.\d+\n$/);
  const typo = await ferry('migrat');
  t.is(typo.code, 2);
  t.regex(typo.err, /Did you mean `ferry migrate`\?/);
});

test('selection and renames: names are checked as the schema checks them, before the inventory is read', async (t) => {
  const inv = ['-i', '/nonexistent/inventory.yml'];
  const cases: [string[], RegExp][] = [
    [
      ['migrate', 'old', 'new', '--app', "x';reboot"],
      /--app x';reboot: not an app name Dokku accepts/,
    ],
    [['backup', 'old', '--service', 'db'], /--service db: expected PLUGIN\/NAME/],
    [
      ['backup', '--all', '--exclude-service', 'postgres/$(id)'],
      /--exclude-service postgres\/\$\(id\)/,
    ],
    [['restore', '/srv/a', 'new', '--rename', 'notes'], /--rename notes: expected OLD=NEW/],
    [
      ['restore', '/srv/a', 'new', '--rename', 'notes=Memo'],
      /--rename notes=Memo: an app name must begin/,
    ],
    [['restore', '/srv/a', 'new', '--app', 'a', '--exclude-app', 'a'], /app a is both taken/],
  ];
  for (const [argv, want] of cases) {
    const r = await ferry(...argv, ...inv);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.err, want);
    t.notRegex(r.err, /nonexistent/, 'refused before the inventory is read');
  }
  // --rename is restore's alone.
  const m = await ferry('migrate', 'old', 'new', '--rename', 'a=b', ...inv);
  t.is(m.code, 2);
  t.regex(m.err, /ferry migrate does not take --rename \(only ferry restore does\)/);
});
