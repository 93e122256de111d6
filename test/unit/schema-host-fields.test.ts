/**
 * Addresses and user names: the schema's patterns accept exactly the names
 * and addresses that exist (checked against Node's own IP parser over
 * thousands of generated strings), refuse everything a shell or a command
 * line could read as syntax or an option, and explain each refusal.
 */
import { isIPv4, isIPv6 } from 'node:net';
import test from 'ava';
import { validateInventory } from '../../src/inventory/index.js';
import {
  ADDRESS_PATTERN,
  addressProblem,
  normaliseAddress,
  USER_PATTERN,
  userProblem,
} from '../../src/schema/host-fields.js';

const address = new RegExp(ADDRESS_PATTERN, 'u');
const user = new RegExp(USER_PATTERN, 'u');

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('IP literals: the pattern agrees with Node on generated IPv4 and IPv6 strings', (t) => {
  const r = random(1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const octet = () =>
    pick(['0', '1', '9', '10', '99', '100', '199', '200', '249', '250', '255', '256', '300', '01']);
  const group = () => pick(['0', '1', 'ff', 'FFFF', 'abcd', '12345', 'g1', '0db8']);
  let v4 = 0;
  let v6 = 0;
  for (let i = 0; i < 5000; i++) {
    const n = 2 + Math.floor(r() * 8);
    const parts: string[] = [];
    for (let k = 0; k < n; k++) parts.push(r() < 0.15 ? '' : group());
    if (r() < 0.3) parts.push([octet(), octet(), octet(), octet()].join('.'));
    const v6text = parts.join(':');
    const v4text = Array.from({ length: r() < 0.9 ? 4 : 3 + Math.floor(r() * 3) }, octet).join('.');
    for (const s of [v6text, v4text]) {
      const expected = isIPv4(s) || isIPv6(s);
      // A dotted-numbers string the IP parser refuses is not a host name either.
      t.is(address.test(s), expected, s);
      if (expected) s.includes(':') ? v6++ : v4++;
    }
  }
  // The generator must have produced plenty of each, or the test proves little.
  t.true(v4 > 1000 && v6 > 200, `${v4} IPv4, ${v6} IPv6`);
});

test('IPv6 in brackets is accepted and stored bare; zone ids are not', (t) => {
  for (const a of ['[::1]', '[2001:db8::1]', '[::ffff:192.0.2.1]']) {
    t.true(address.test(a), a);
    t.is(normaliseAddress(a), a.slice(1, -1));
  }
  t.false(address.test('fe80::1%eth0'));
  t.false(address.test('[fe80::1%25eth0]'));
  t.regex(addressProblem('fe80::1%eth0') ?? '', /zone ids/);
  const inv = validateInventory(
    'version: 1\nhosts:\n  a:\n    address: "[2001:db8::1]"\n',
    'i.yml',
  );
  t.is(inv.hosts.a!.address, '2001:db8::1');
});

test('host names: RFC 1123 labels, 63 characters each, 253 in all', (t) => {
  const ok = [
    'localhost',
    'old',
    'dokku-1.example.com',
    '1and1.example',
    'xn--bcher-kva.example',
    'A.B.C',
    `${'a'.repeat(63)}.example.com`,
    [1, 2, 3, 4].map(() => 'a'.repeat(62)).join('.'), // 251 characters
  ];
  for (const a of ok) t.is(addressProblem(a), undefined, a);
  const bad: [string, RegExp][] = [
    [`${'a'.repeat(64)}.example.com`, /longer than 63/],
    [[1, 2, 3, 4, 5].map(() => 'a'.repeat(50)).join('.'), /at most 253/],
    ['-old', /option/],
    ['old-', /starts or ends with "-"/],
    ['old..example', /empty label/],
    ['old.example.', /empty label/],
    ['old_host', /"_"/],
    ['old:22', /PORT/],
    ['1.2.3', /not an IPv4 address/],
    ['1.2.3.4.5', /not an IPv4 address/],
    ['01.2.3.4', /leading zeros/],
    ['[old]', /brackets/],
    ['ünïcode.example', /"ü"/],
  ];
  for (const [a, why] of bad) {
    t.false(address.test(a), a);
    t.regex(addressProblem(a) ?? 'accepted', why, a);
  }
});

test('nothing a shell or a command line reads as syntax passes as an address or user', (t) => {
  const hostile = [
    'x; touch /tmp/p #',
    '$(touch /tmp/p)',
    '`id`',
    'a|b',
    'a&b',
    'a>b',
    "a'b",
    'a"b',
    'a b',
    'a\tb',
    'a\nb',
    'a\\b',
    '-oProxyCommand=touch /tmp/p',
    '--',
    '-',
    '*',
    '~root',
    'a\u0000b',
  ];
  for (const h of hostile) {
    t.false(address.test(h), JSON.stringify(h));
    t.truthy(addressProblem(h), JSON.stringify(h));
    t.false(user.test(h), JSON.stringify(h));
    t.truthy(userProblem(h), JSON.stringify(h));
  }
  // Random printable strings: whatever passes holds only name characters.
  const r = random(7);
  for (let i = 0; i < 20000; i++) {
    const s = Array.from({ length: 1 + Math.floor(r() * 12) }, () =>
      String.fromCharCode(32 + Math.floor(r() * 95)),
    ).join('');
    if (address.test(s)) t.regex(s, /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.:-]+)$/, s);
    if (user.test(s)) t.regex(s, /^[A-Za-z_][A-Za-z0-9._-]*$/, s);
    t.is(addressProblem(s) === undefined, address.test(s), s);
    t.is(userProblem(s) === undefined, user.test(s), s);
  }
});

test('user names: POSIX portable, upper case allowed, at most 32, no leading "-"', (t) => {
  for (const u of ['root', 'deploy', 'Deploy', 'john.doe', '_ferry', 'a-b_c.d', 'u'.repeat(32)]) {
    t.is(userProblem(u), undefined, u);
  }
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['-root', /option/],
    ['1deploy', /start with a letter/],
    ['.hidden', /start with a letter/],
    ['machine$', /"\$"/],
    ['u'.repeat(33), /at most 32/],
    ['root user', /a space/],
  ];
  for (const [u, why] of bad) t.regex(userProblem(u) ?? 'accepted', why, u);
});
