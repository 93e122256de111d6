/**
 * The command `ferry check` gives when ssh2's native binding is missing,
 * for each way ferry can be installed. The global form is run for real by
 * test/e2e/install.test.ts.
 */
import test from 'ava';
import { nativeCryptoFixFor } from '../../src/ssh/native.js';

test('a global install: npm rebuild -g into its own prefix, scripts allowed on the command line', (t) => {
  t.is(
    nativeCryptoFixFor('/usr/local/lib/node_modules/dokku-ferry'),
    'npm rebuild -g --prefix /usr/local --allow-scripts=ssh2,cpu-features ssh2 cpu-features',
  );
  t.is(
    nativeCryptoFixFor("/home/o'neil/.npm global/lib/node_modules/dokku-ferry"),
    "npm rebuild -g --prefix '/home/o'\\''neil/.npm global' --allow-scripts=ssh2,cpu-features ssh2 cpu-features",
  );
});

test('npx: allow the scripts for npx itself', (t) => {
  t.regex(
    nativeCryptoFixFor('/root/.npm/_npx/3c1a9a1f0e2b/node_modules/dokku-ferry'),
    /^npx --allow-scripts=ssh2,cpu-features dokku-ferry/,
  );
});

test("a dependency of another project: that project's allowScripts, then rebuild", (t) => {
  t.is(
    nativeCryptoFixFor('/srv/ops/node_modules/dokku-ferry'),
    'cd /srv/ops && npm approve-scripts ssh2 cpu-features && npm rebuild ssh2 cpu-features',
  );
});

test('a clone: its package.json already allows them', (t) => {
  t.is(
    nativeCryptoFixFor('/work/dokku-ferry'),
    'cd /work/dokku-ferry && npm rebuild ssh2 cpu-features',
  );
});
