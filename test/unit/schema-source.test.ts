/**
 * Hostile input files: refused in one line, before they cost anything.
 * Not regular files, too large, not UTF-8 text, alias bombs, deep nesting,
 * tags; and what is legitimate (a BOM, CRLF, `---`, merge keys, core tags)
 * still reads.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { InputError } from '../../src/errors.js';
import { loadInventory, validateInventory } from '../../src/inventory/index.js';
import { loadPlaybook } from '../../src/playbook/index.js';
import {
  decodeInput,
  MAX_DEPTH,
  MAX_INPUT_BYTES,
  parseSource,
  readInput,
} from '../../src/schema/source.js';

const INV = 'version: 1\nhosts:\n  old:\n    address: 192.0.2.1\n';

function inDir(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-source-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The one line an InputError prints, for files that must fail in one line. */
function oneLine(e: unknown): string {
  if (!(e instanceof InputError)) throw e;
  if (e.diagnostics.length !== 1 || e.message.includes('\n'))
    throw new Error(`not one line: ${e.message}`);
  return e.message;
}

test('readInput refuses what is not a regular file, without waiting or reading', async (t) => {
  const dir = inDir(t);
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  for (const [path, why] of [
    [dir, /is a directory/],
    [fifo, /not a regular file/],
    ['/dev/zero', /not a regular file/],
  ] as const) {
    // Opening the FIFO would wait for a writer forever: the timer says so instead.
    const timeout = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error(`${path}: still waiting`)), 5000).unref();
    });
    const e = await t.throwsAsync(Promise.race([readInput(path, 'x.yml'), timeout]));
    t.regex(oneLine(e), why);
  }
  // File-system errors are left for the caller to word.
  const missing = await t.throwsAsync(readInput(join(dir, 'nope')));
  t.is((missing as NodeJS.ErrnoException).code, 'ENOENT');
});

test(`files over ${MAX_INPUT_BYTES} bytes are refused before parsing`, async (t) => {
  const dir = inDir(t);
  const big = join(dir, 'big.yml');
  const filler = `${INV}# ${'x'.repeat(MAX_INPUT_BYTES)}\n`;
  writeFileSync(big, filler);
  const e = await t.throwsAsync(loadInventory(big, { checkIdentity: false }));
  t.is(oneLine(e), `${big}: it is 1.0 MiB; ferry reads files of at most 1.0 MiB`);
  // Just under the limit reads (a comment, however long, is fine).
  const edge = `${INV}# ${'x'.repeat(MAX_INPUT_BYTES - INV.length - 3)}\n`;
  t.is(Buffer.byteLength(edge), MAX_INPUT_BYTES);
  writeFileSync(big, edge);
  const inv = await loadInventory(big, { checkIdentity: false });
  t.is(inv.hosts.old!.address, '192.0.2.1');
  // Text handed over directly is held to the same limit.
  t.throws(() => validateInventory(filler, 'big.yml'), { message: /at most 1\.0 MiB/ });
});

test('decodeInput: a UTF-8 BOM is dropped, UTF-16 and invalid UTF-8 are refused with where', (t) => {
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(INV)]);
  t.is(decodeInput(bom, 'x'), INV);
  t.is(validateInventory(bom, 'x.yml').hosts.old!.address, '192.0.2.1');
  for (const [bytes, want] of [
    [Buffer.from(INV, 'utf16le'), /x:1:1: .*UTF-16/],
    [Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('\0v')]), /x:1:1: .*UTF-16/],
    [Buffer.from([0x61, 0x0a, 0x62, 0xc0, 0x80]), /x:2:2: byte 0xC0 is not UTF-8/], // overlong NUL
    [Buffer.from([0x61, 0xed, 0xa0, 0x80]), /x:1:2: byte 0xED is not UTF-8/], // a surrogate
    [Buffer.from([0xf4, 0x90, 0x80, 0x80]), /x:1:1: byte 0xF4 is not UTF-8/], // past U+10FFFF
    [Buffer.from([0x61, 0x62, 0xe2, 0x82]), /x:1:3: byte 0xE2 is not UTF-8/], // cut short
    [Buffer.from('é\n  ü: \0'), /x:2:6: it holds a NUL byte/],
    [Buffer.from('a: "\u0085"'), /x:1:5: .*control character U\+0085/],
  ] as const) {
    t.regex(oneLine(t.throws(() => decodeInput(bytes, 'x'))), want);
  }
});

test('decodeInput accepts exactly the UTF-8 text without control characters (fuzzed)', (t) => {
  let seed = 42;
  const next = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let good = 0;
  for (let i = 0; i < 5000; i++) {
    // Mostly ASCII with some high bytes and valid multi-byte characters.
    const parts: number[] = [];
    for (let k = 0; k < 12; k++) {
      const r = next() % 10;
      if (r < 6) parts.push(0x20 + (next() % 95));
      else if (r < 8) parts.push(...Buffer.from(String.fromCodePoint(0xa0 + (next() % 0x3000))));
      else parts.push(0x80 + (next() % 128));
    }
    const bytes = Uint8Array.from(parts);
    let expected = true;
    try {
      const s = strict.decode(bytes);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
      if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(s)) expected = false;
      if (s.startsWith('\ufeff')) expected = true;
    } catch {
      expected = false;
    }
    let got = true;
    try {
      decodeInput(bytes, 'x');
    } catch (e) {
      t.true(e instanceof InputError);
      got = false;
    }
    t.is(got, expected, Buffer.from(bytes).toString('hex'));
    if (got) good++;
  }
  t.true(good > 100 && good < 4900, `${good} of 5000 valid`);
});

test('alias bombs are refused quickly, at the alias that expands too far', (t) => {
  const lines = ['version: 1', 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 30; i++)
    lines.push(
      `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    );
  const started = Date.now();
  const e = t.throws(() => validateInventory(`${lines.join('\n')}\n`, 'bomb.yml'));
  t.true(Date.now() - started < 5000, `${Date.now() - started} ms`);
  t.regex(oneLine(e), /^bomb\.yml:4:9: YAML aliases here expand to too much data/);
  // A few aliases, as a real file has them, are fine.
  const inv = validateInventory(
    'version: 1\ndefaults:\n  user: &u admin\nhosts:\n  old:\n    address: 192.0.2.1\n    user: *u\n',
    'ok.yml',
  );
  t.is(inv.hosts.old!.user, 'admin');
});

test(`nesting: ${MAX_DEPTH} levels read, one more is refused; thousands never reach the parser`, (t) => {
  const flow = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
  t.true(parseSource(flow(MAX_DEPTH), 'x').syntaxOk);
  const over = parseSource(flow(MAX_DEPTH + 1), 'x');
  t.false(over.syntaxOk);
  t.regex(over.diagnostics[0]!.message, /nested more than 64 levels deep/);
  t.is(over.diagnostics[0]!.column, MAX_DEPTH + 1);
  for (const text of [
    flow(100000),
    Array.from({ length: 1000 }, (_, i) => `${' '.repeat(i)}k:`).join('\n'),
    `${'- '.repeat(5000)}x`,
    `a: ${'{b: '.repeat(50000)}`,
  ]) {
    const r = parseSource(text, 'x');
    t.false(r.syntaxOk);
    t.is(r.diagnostics.length, 1);
    t.regex(r.diagnostics[0]!.message, /nested more than 64 levels deep/);
  }
});

test('legitimate YAML still reads: ---, ..., CRLF, BOM, merge keys, core tags', (t) => {
  const crlf = `\ufeff---\r\nversion: 1\r\nhosts:\r\n  base: &base\r\n    address: 192.0.2.1\r\n    port: !!int "2222"\r\n  other:\r\n    <<: *base\r\n    address: !!str 192.0.2.2\r\n...\r\n`;
  const inv = validateInventory(crlf, 'x.yml');
  t.like(inv.hosts.other, { address: '192.0.2.2', port: 2222 });
  t.like(inv.hosts.base, { address: '192.0.2.1', port: 2222 });
  // Positions count CRLF lines right.
  const bad = t.throws(() => validateInventory(crlf.replace('"2222"', '"70000"'), 'x.yml'), {
    instanceOf: InputError,
  });
  // The base's port, and the other host's through the merge (line 8).
  t.deepEqual(
    bad.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`),
    [
      '6:17 hosts.base.port must be a number between 1 and 65535, got 70000',
      '8:5 hosts.other.port must be a number between 1 and 65535, got 70000',
    ],
  );
});

test('a binary playbook is refused in one line by loadPlaybook', async (t) => {
  const dir = inDir(t);
  const file = join(dir, 'bin.yml');
  writeFileSync(file, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]));
  const e = await t.throwsAsync(loadPlaybook(file, dir));
  t.is(
    oneLine(e),
    'bin.yml:1:1: byte 0x89 is not UTF-8: this is not a text file, or not saved as UTF-8',
  );
});
