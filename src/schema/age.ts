/**
 * age recipients (public keys) that `ferry backup --fetch DIR --encrypt` and
 * the inventory's `backup.encrypt` accept: X25519 (`age1…`, Bech32) and
 * `ssh-ed25519` public keys, the two forms the age CLI encrypts to without a
 * plugin. The exact shape is checked here, so nothing else (an option, a
 * file name, shell syntax) can reach age's command line.
 */

/** Bech32's alphabet (no 1, b, i, o); an X25519 recipient is 58 of them after `age1`. */
const X25519 = /^age1[02-9ac-hj-np-z]{58}$/;
/**
 * The key blob of an ed25519 public key in base64: the type string
 * (`\0\0\0\x0bssh-ed25519`) then a 32-byte key, 51 bytes, 68 characters, so
 * its prefix is fixed and it has no padding.
 */
const SSH_ED25519 = /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}(?: [ -~]*)?$/;

/** The schema pattern of a recipient (an ssh key may keep its comment). */
export const AGE_RECIPIENT_PATTERN =
  '^(age1[02-9ac-hj-np-z]{58}|ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}( [ -~]*)?)$';

/** What a valid recipient is, for messages. */
export const AGE_RECIPIENT_HELP =
  'an age X25519 public key (age1…, from age-keygen) or an ssh-ed25519 public key line (ssh-ed25519 AAAA…)';

/**
 * The recipient as age takes it (an ssh key without its comment), or
 * undefined when `value` is neither form.
 */
export function normaliseRecipient(value: string): string | undefined {
  const v = value.trim();
  if (X25519.test(v)) return v;
  if (SSH_ED25519.test(v)) return v.split(' ').slice(0, 2).join(' ');
  return undefined;
}
