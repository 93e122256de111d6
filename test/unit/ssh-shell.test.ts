/**
 * The one way to write a command (`$`): every value reaches a real bash byte
 * for byte, however hostile; holes are bound by name, never by searching text;
 * an inner shell gets its values as parameters.
 */
import { execFileSync } from 'node:child_process';
import test from 'ava';
import fc from 'fast-check';
import { InternalError } from '../../src/errors.js';
import { $, bashC, Command, hole } from '../../src/ssh/shell.js';
import { wrapCommand } from '../../src/ssh/wrap.js';

/** Runs a command line as sshd would hand it to the login shell; stdout as bytes. */
function sh(line: string): Buffer {
  return execFileSync('sh', ['-c', line], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Prints each argument NUL-terminated: what arrived, byte for byte. */
const printArgs = (values: string[]) => $`printf '%s\\0' ${values}`;

const expected = (values: string[]) => Buffer.from(values.map((v) => `${v}\0`).join(''), 'utf8');

/** Strings a shell would read: quotes, `$()`, backticks, newlines, leading dashes, globs. */
const hostile = fc
  .array(
    fc.constantFrom(
      "'",
      '"',
      '$(',
      ')',
      '`',
      '\\',
      '\n',
      '\r',
      '\t',
      ';',
      '|',
      '&',
      '<',
      '>',
      ' ',
      '-',
      '--',
      '-o',
      '$',
      '${',
      '}',
      '*',
      '?',
      '[',
      ']',
      '~',
      '!',
      '#',
      "$'",
      '%s',
      'é',
      '𝄞',
      'a',
      'touch /tmp/ferry-pwned',
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(''));

/** Any text without NUL that survives UTF-8 (what a JS string can carry to a host). */
const anyText = fc
  .string({ unit: 'binary', maxLength: 40 })
  .filter((s) => !s.includes('\0') && Buffer.from(s, 'utf8').toString('utf8') === s);

const values = fc.array(fc.oneof(hostile, anyText), { minLength: 1, maxLength: 4 });

/**
 * Checks `cases` (each a command line and the bytes it must print) in one
 * shell, the lines one after another; when the whole output differs, each case
 * is run alone to name the first one that broke.
 */
function checkAll(
  t: { is(a: unknown, b: unknown, m?: string): void },
  cases: { line: string; want: Buffer }[],
): void {
  const all = sh(cases.map((c) => c.line).join('\n'));
  if (all.equals(Buffer.concat(cases.map((c) => c.want)))) {
    t.is(cases.length > 0, true);
    return;
  }
  for (const c of cases) {
    const got = sh(c.line);
    if (!got.equals(c.want)) {
      t.is(JSON.stringify(got.toString()), JSON.stringify(c.want.toString()), c.line);
      return;
    }
  }
}

// fast-check draws the values; one shell checks them all (a process per case took minutes).
const RUNS = 250;

test('property: any value reaches bash byte for byte through $ and the SSH wrapper', (t) => {
  const cases = fc.sample(values, { numRuns: RUNS, seed: 7 }).map((vs) => ({
    line: wrapCommand(printArgs(vs), { sudo: false }),
    want: expected(vs),
  }));
  checkAll(t, cases);
});

test('property: an inner bash gets values as parameters, byte for byte', (t) => {
  const cases = fc.sample(values, { numRuns: RUNS, seed: 11 }).map((vs) => ({
    line: wrapCommand($`${bashC(printArgs(vs))}`, { sudo: false }),
    want: expected(vs),
  }));
  checkAll(t, cases);
});

test('property: a hole bound to any value runs as that value', (t) => {
  const cases = fc
    .sample(fc.tuple(hostile, anyText), { numRuns: RUNS, seed: 13 })
    .map(([a, b]) => ({
      line: wrapCommand(
        $`printf '%s\\0' ${hole('app')} ${[hole('x'), 'fixed']}`.bind({ app: a, x: b }),
        { sudo: false },
      ),
      want: expected([a, b, 'fixed']),
    }));
  checkAll(t, cases);
});

test('a crafted address cannot run a command through an inner shell', (t) => {
  const address = 'x; touch /tmp/ferry-pwned-shell #';
  execFileSync('rm', ['-f', '/tmp/ferry-pwned-shell']);
  const probe = bashC($`echo ${address}/${22}`);
  t.is(sh(wrapCommand(probe, { sudo: false })).toString(), `${address}/22\n`);
  t.throws(() => execFileSync('test', ['-e', '/tmp/ferry-pwned-shell']));
  t.is(probe.toString(), `bash -c 'echo "$1"/"$2"' _ 'x; touch /tmp/ferry-pwned-shell #' 22`);
});

test('a plan shows holes as <name>; values are quoted only where needed', (t) => {
  const c = $`dokku ${hole('plugin')}:export ${hole('service')} > ${'/srv/my dir'}/${hole('plugin')}.dump`;
  t.is(c.toString(), "dokku <plugin>:export <service> > '/srv/my dir'/<plugin>.dump");
  t.deepEqual(c.holes(), ['plugin', 'service']);
  t.is(JSON.stringify({ c }), JSON.stringify({ c: c.toString() }));
  const bound = c.bind({ plugin: 'postgres', service: "it's" });
  t.is(bound.render(), "dokku postgres:export 'it'\\''s' > '/srv/my dir'/postgres.dump");
  t.deepEqual(bound.holes(), []);
});

test('an open hole cannot reach a shell; binding a name with no hole is a bug', (t) => {
  const c = $`echo ${hole('app')}`;
  t.throws(() => c.render(), { instanceOf: InternalError, message: /still holds <app>/ });
  t.throws(() => wrapCommand(c, { sudo: false }), { instanceOf: InternalError });
  t.throws(() => c.bind({ apps: 'x' }), { instanceOf: InternalError, message: /no hole <apps>/ });
  t.throws(() => hole('Bad Name'), { instanceOf: InternalError });
});

test('nested commands are shell text; numbers and arrays are words', (t) => {
  const pipe = $`tar -cf - ${['a b', 'c']} | ${$`zstd -1`}`;
  t.is(pipe.render(), "tar -cf - 'a b' c | zstd -1");
  t.is($`head -c ${1000}`.render(), 'head -c 1000');
  t.is($`x ${''}`.render(), "x ''");
  t.is(Command.script('a | b').render(), 'a | b');
});

test('holes inside nested and inner commands bind too', (t) => {
  const inner = bashC($`ls ${hole('dir')}`);
  const outer = $`timeout 3 ${inner}`;
  t.deepEqual(outer.holes(), ['dir']);
  t.is(outer.toString(), `timeout 3 bash -c 'ls "$1"' _ <dir>`);
  t.is(outer.bind({ dir: '/a b' }).render(), `timeout 3 bash -c 'ls "$1"' _ '/a b'`);
});
