/**
 * Whether ssh2's optional native crypto binding (sshcrypto.node, built by
 * node-gyp at install) loaded. Without it ssh2 falls back to JavaScript
 * ciphers and a bulk stream takes about twice as long (DESIGN.md).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

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
