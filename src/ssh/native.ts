/**
 * Whether ssh2's optional native crypto binding (sshcrypto.node, built by
 * node-gyp at install) loaded. Without it ssh2 falls back to JavaScript
 * ciphers and a bulk stream takes about twice as long (DESIGN.md).
 *
 * npm 11 keeps a policy of which dependencies may run install scripts
 * (`allowScripts`); a global install or npx has no package.json to hold
 * it, so the build of ssh2 (and cpu-features) is only warned about, and
 * skipped where the policy is strict. {@link nativeCryptoFix} gives the
 * exact command that builds it for the way ferry was installed.
 */

import { createRequire } from 'node:module';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quoteArgv } from './quote.js';

const require = createRequire(import.meta.url);

/** The packages whose install scripts build the binding. */
export const NATIVE_PACKAGES = ['ssh2', 'cpu-features'] as const;

/** True when ssh2 loaded `lib/protocol/crypto/build/Release/sshcrypto.node`. */
export function nativeCryptoAvailable(): boolean {
  try {
    // ssh2 records the outcome of its own `require` of the binding here.
    const crypto = require('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: unknown };
    return crypto.bindingAvailable === true;
  } catch {
    return false;
  }
}

/** The path ssh2 loads the binding from, for messages. */
export function nativeCryptoPath(): string | undefined {
  try {
    return require.resolve('ssh2/lib/protocol/crypto/build/Release/sshcrypto.node');
  } catch {
    return undefined;
  }
}

/**
 * The command that builds the binding for an install of dokku-ferry whose
 * package folder is `packageDir`: a global install (`PREFIX/lib/node_modules/
 * dokku-ferry`: npm rebuild -g with the scripts allowed on the command line,
 * the only place a global install can allow them), npx (its cache), a
 * dependency of another project (the project's own allowScripts), or a clone
 * (whose package.json already allows them).
 */
export function nativeCryptoFixFor(packageDir: string): string {
  const allow = `--allow-scripts=${NATIVE_PACKAGES.join(',')}`;
  const parent = dirname(packageDir);
  if (basename(parent) === 'node_modules') {
    const above = dirname(parent);
    if (packageDir.includes('/_npx/')) {
      return `npx ${allow} dokku-ferry ...  (or: npm config set allow-scripts=${NATIVE_PACKAGES.join(',')} --location=user, then run npx again)`;
    }
    if (basename(above) === 'lib') {
      return `npm rebuild -g --prefix ${quoteArgv([dirname(above)])} ${allow} ${NATIVE_PACKAGES.join(' ')}`;
    }
    return `cd ${quoteArgv([above])} && npm approve-scripts ${NATIVE_PACKAGES.join(' ')} && npm rebuild ${NATIVE_PACKAGES.join(' ')}`;
  }
  return `cd ${quoteArgv([packageDir])} && npm rebuild ${NATIVE_PACKAGES.join(' ')}`;
}

/** {@link nativeCryptoFixFor} this install (dist/src/ssh/native.js is three folders below the package). */
export function nativeCryptoFix(): string {
  return nativeCryptoFixFor(
    fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, ''),
  );
}

/** What to tell the user when the binding is missing: why it matters and the command. */
export function nativeCryptoHint(): string {
  return `ssh2's native crypto binding is not built: copies through this machine run about 2x slower. Build it (needs python3, make and a C++ compiler) with: ${nativeCryptoFix()}`;
}
