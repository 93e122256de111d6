/**
 * The broken-file corpus: every file under test/fixtures/broken/ must fail
 * with exactly the text in its sibling .expected file (what `ferry` prints on
 * stderr), exit code 2, and no stack trace. Files are read as bytes and go
 * through the same checks as a file ferry reads (text, size, then YAML or
 * INI); inventories may be ferry's YAML or Ansible's YAML or INI (`.ini`, or
 * no extension).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { report } from '../../src/cli.js';
import { InputError } from '../../src/errors.js';
import { validateInventory } from '../../src/inventory/index.js';
import { validatePlaybook } from '../../src/playbook/index.js';
import { decodeInput } from '../../src/schema/source.js';
import { listWords } from '../../src/schema/suggest.js';
import { TASK_NAMES } from '../../src/tasks/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const HOME = `${ROOT}test/fixtures/home`;

function stderrOf(fn: () => unknown): { text: string; code: number | undefined; error: unknown } {
  let text = '';
  try {
    fn();
  } catch (error) {
    const code = report(error, {
      write: (s: string) => {
        text += s;
        return true;
      },
    } as unknown as NodeJS.WritableStream);
    return { text: text.split(HOME).join('<home>'), code, error };
  }
  return { text: 'NO ERROR\n', code: undefined, error: undefined };
}

const kinds = {
  inventory: (bytes: Uint8Array, file: string) =>
    validateInventory(bytes, file, { home: HOME, fileExists: existsSync }),
  playbook: (bytes: Uint8Array, file: string) =>
    validatePlaybook(decodeInput(bytes, file, 'the playbook'), file),
} as const;

let total = 0;
for (const [kind, validate] of Object.entries(kinds)) {
  const dir = `test/fixtures/broken/${kind}`;
  const files = readdirSync(`${ROOT}${dir}`)
    .filter((f) => !f.endsWith('.expected'))
    .sort();
  total += files.length;
  for (const f of files) {
    const file = `${dir}/${f}`;
    test(`${kind}: ${f}`, (t) => {
      const expectedPath = `${ROOT}${file.replace(/\.(yml|ini)$/, '')}.expected`;
      t.true(existsSync(expectedPath), `${file} needs a sibling .expected file`);
      const got = stderrOf(() => validate(readFileSync(`${ROOT}${file}`), file));
      t.true(got.error instanceof InputError, 'bad input is an InputError');
      t.is(got.code, 2);
      t.notRegex(got.text, /\n\s+at .+:\d+:\d+\)?\n/, 'no stack trace');
      // {{TASKS}}: the catalogue's names, so adding a task does not rewrite the corpus.
      const expected = readFileSync(expectedPath, 'utf8')
        .split('{{TASKS}}')
        .join(listWords(TASK_NAMES));
      t.is(got.text, expected);
    });
  }
}

test('the corpus holds at least 80 broken files', (t) => {
  t.true(total >= 80, `only ${total}`);
});
