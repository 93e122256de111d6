/**
 * What a host's address and SSH user may be. Both reach `ssh`, `git` and
 * remote shells as arguments, so they are restricted to what names and
 * addresses really are: nothing that a shell or a command-line parser could
 * read as syntax or as an option. Each rule is a regular expression (the JSON
 * Schema `pattern` editors and ajv check) and a function that says, in words,
 * why a value breaks it; a unit test keeps the two in agreement.
 */
import { isIPv4, isIPv6 } from 'node:net';

const HEX = '[0-9A-Fa-f]{1,4}';
const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const IPV4 = `(?:${OCTET}\\.){3}${OCTET}`;

/**
 * Every way to write an IPv6 address (RFC 4291 2.2): eight groups, or fewer
 * around one `::`, the last two groups optionally as a dotted IPv4 address.
 */
function ipv6Source(): string {
  const forms = [`(?:${HEX}:){7}${HEX}`, `(?:${HEX}:){6}${IPV4}`];
  // n groups before `::`, at most 7 - n after it (`::` stands for one or more).
  for (let n = 0; n <= 7; n++) {
    const left = n === 0 ? ':' : `(?:${HEX}:){${n}}`;
    const room = 7 - n;
    const right: string[] = [];
    if (room >= 1) right.push(`${HEX}(?::${HEX}){0,${room - 1}}`);
    if (room >= 2) right.push(`(?:${HEX}:){0,${room - 2}}${IPV4}`);
    forms.push(`${left}:${right.length ? `(?:${right.join('|')})?` : ''}`);
  }
  return `(?:${forms.join('|')})`;
}

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
// At most 253 characters; all digits and dots would be an IPv4 address, so such a name must be one.
const HOSTNAME = `(?=.{1,253}$)(?![0-9.]+$)${LABEL}(?:\\.${LABEL})*`;
const IPV6 = ipv6Source();

/**
 * An address: a DNS host name (RFC 1123 labels of letters, digits and inner
 * hyphens, at most 63 characters each and 253 in all, no trailing dot), an
 * IPv4 address in dotted-quad form (no leading zeros: some tools read them as
 * octal), or an IPv6 address, bare or in brackets. IPv6 zone ids (`%eth0`)
 * are refused: they name an interface of one machine, not of the controller.
 */
export const ADDRESS_PATTERN = `^(?:${HOSTNAME}|${IPV4}|${IPV6}|\\[${IPV6}\\])$`;

/**
 * An SSH user name: POSIX's portable user name (letters, digits, `.`, `_`,
 * `-`; not starting with `-`), starting with a letter or `_`, at most 32
 * characters. Upper case is allowed: POSIX allows it and directory-service
 * accounts (LDAP, Active Directory through SSSD) often have it; it carries no
 * meaning to a shell. A trailing `$` (Samba machine accounts, which cannot
 * log in) is not.
 */
export const USER_PATTERN = '^[A-Za-z_][A-Za-z0-9._-]{0,31}$';

/** An OpenSSH SHA256 host key fingerprint, as `ssh-keygen -lf` prints it. */
export const HOST_KEY_PATTERN = '^SHA256:[A-Za-z0-9+/]{43}=?$';

/**
 * A path: any text but control characters (a newline in a path is a mistake,
 * and would split a command line). Paths on the controller are made absolute
 * before use, so they never look like an option.
 */
export const PATH_PATTERN = '^[^\\u0000-\\u001f\\u007f]+$';

/** A control character (C0 or DEL), never right in a name, an address or a path. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
export const CONTROL_CHAR = /[\u0000-\u001f\u007f]/;

/** A git remote name: letters, digits, `.`, `_`, `-`, not starting with `-` or `.`. */
export const REMOTE_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$';

const addressRe = new RegExp(ADDRESS_PATTERN, 'u');
const userRe = new RegExp(USER_PATTERN, 'u');

/** The characters of `v` outside `allowed`, each once, as a user reads them. */
function offending(v: string, allowed: RegExp): string[] {
  const out = new Set<string>();
  for (const ch of v) {
    if (allowed.test(ch)) continue;
    out.add(ch === ' ' ? 'a space' : /[\p{Cc}\p{Cf}]/u.test(ch) ? describeChar(ch) : `"${ch}"`);
  }
  return [...out];
}

/** A character by its code point, for characters that do not print. */
export function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  const names: Record<number, string> = {
    0: 'NUL',
    9: 'a tab',
    10: 'a newline',
    13: 'CR',
    27: 'ESC',
  };
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return names[code] ? `${names[code]} (${hex})` : hex;
}

function list(words: string[]): string {
  const shown = words.slice(0, 4);
  const tail = words.length > 4 ? ` and ${words.length - 4} more` : '';
  return shown.length <= 1
    ? `${shown[0] ?? ''}${tail}`
    : `${shown.slice(0, -1).join(', ')}${tail ? `, ${shown.at(-1)}${tail}` : ` and ${shown.at(-1)}`}`;
}

/**
 * Why `v` is not an address ferry accepts, or undefined when it is one.
 * Worded to complete "hosts.old.address: "…" is not a host name or IP address: …".
 */
export function addressProblem(v: string): string | undefined {
  if (addressRe.test(v)) return undefined;
  if (v === '') return 'it is empty';
  if (v.startsWith('-')) return 'it starts with "-", so ssh would read it as an option';
  const bare = v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
  if (bare.includes('%')) return 'IPv6 zone ids (such as %eth0) are not supported';
  if (bare.includes(':') && /^[0-9A-Fa-f:.]+$/.test(bare)) return 'it is not a valid IPv6 address';
  if (/^[^:]+:[0-9]+$/.test(v)) return 'it ends in ":PORT": give the port on its own';
  const bad = offending(bare, /[A-Za-z0-9.-]/);
  if (bad.length > 0)
    return `it holds ${list(bad)}, which neither a host name nor an IP address can`;
  if (v !== bare || v.includes('[') || v.includes(']'))
    return 'brackets may only enclose an IPv6 address';
  if (/^[0-9.]+$/.test(v)) {
    const parts = v.split('.');
    return parts.length === 4 && parts.every((p) => /^[0-9]{1,3}$/.test(p) && Number(p) <= 255)
      ? 'an IPv4 address has no leading zeros (some tools read them as octal)'
      : 'it is not an IPv4 address (four numbers from 0 to 255, separated by dots)';
  }
  if (v.length > 253) return `it is ${v.length} characters long; a host name has at most 253`;
  const labels = v.split('.');
  if (labels.some((l) => l === ''))
    return 'it has an empty label (two dots in a row, or a dot at the start or end)';
  if (labels.some((l) => l.length > 63))
    return 'a label (the text between dots) is longer than 63 characters';
  return 'a label (the text between dots) starts or ends with "-"';
}

/** The address as the SSH layer wants it: an IPv6 address without its brackets. */
export function normaliseAddress(v: string): string {
  return v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
}

/** Whether `v` is an IP address (v4 or v6, bare or bracketed). */
export function isIpAddress(v: string): boolean {
  const bare = normaliseAddress(v);
  return isIPv4(bare) || isIPv6(bare);
}

/**
 * Why `v` is not a user name ferry accepts, or undefined when it is one.
 * Worded to complete "…: "…" is not a user name: …".
 */
export function userProblem(v: string): string | undefined {
  if (userRe.test(v)) return undefined;
  if (v === '') return 'it is empty';
  if (v.startsWith('-')) return 'it starts with "-", so a command would read it as an option';
  const bad = offending(v, /[A-Za-z0-9._-]/);
  if (bad.length > 0) return `it holds ${list(bad)}`;
  if (v.length > 32) return `it is ${v.length} characters long; at most 32`;
  return 'it must start with a letter or "_"';
}
