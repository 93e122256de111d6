/**
 * Ansible host patterns, as its inventories write hosts: `web1`,
 * `web1:2222` (a port), `[2001:db8::1]:2222`, and ranges that stand for
 * several hosts, `web[01:03].example.com` (zero-padded), `db-[a:c]`,
 * `node[0:10:5]` (a step), several per name. Written from Ansible's
 * documentation and its `parse_address` and `expand_hostname_range`
 * (lib/ansible/parsing/utils/addresses.py, lib/ansible/plugins/inventory/__init__.py).
 */

/** At most this many hosts from one pattern: `web[0:99999999]` is a mistake, not a fleet. */
export const MAX_RANGE_HOSTS = 10_000;

/** A pattern's hosts, or the reason it cannot be read. */
export type Expanded = { names: string[]; port?: number } | { problem: string };

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Splits off a `:port` (`host:22`, `[v6 or host]:22`); a bare IPv6 address keeps its colons. */
function splitPort(pattern: string): { host: string; port?: number } {
  const bracketed = /^\[(.+)\]:([0-9]+)$/.exec(pattern);
  if (bracketed) return { host: bracketed[1]!, port: Number(bracketed[2]) };
  // Colons outside range brackets: one, followed by digits only, is a port.
  const plain = /^((?:[^:[\]]|\[[^\]]*\])*):([0-9]+)$/.exec(pattern);
  if (plain) return { host: plain[1]!, port: Number(plain[2]) };
  return { host: pattern };
}

function expandOnce(name: string, budget: number): string[] | string {
  const open = name.indexOf('[');
  if (open === -1) return [name];
  const close = name.indexOf(']', open);
  if (close === -1) return `"[" without "]" in ${JSON.stringify(name)}`;
  const head = name.slice(0, open);
  const tail = name.slice(close + 1);
  const bounds = name.slice(open + 1, close).split(':');
  if (bounds.length !== 2 && bounds.length !== 3) {
    return `a host range is [begin:end] or [begin:end:step], got [${bounds.join(':')}]`;
  }
  const beg = bounds[0] || '0';
  const end = bounds[1] ?? '';
  const stepText = bounds[2] ?? '1';
  if (!end) return 'a host range needs an end value';
  if (!/^[1-9][0-9]*$/.test(stepText))
    return `a host range step must be a positive number, got "${stepText}"`;
  const step = Number(stepText);
  let values: string[];
  const bi = LETTERS.indexOf(beg);
  if (beg.length === 1 && end.length === 1 && bi !== -1 && LETTERS.includes(end)) {
    const ei = LETTERS.indexOf(end);
    if (bi > ei) return `a host range must have begin <= end, got [${beg}:${end}]`;
    values = [];
    for (let i = bi; i <= ei; i += step) values.push(LETTERS[i]!);
  } else {
    if (!/^[0-9]+$/.test(beg) || !/^[0-9]+$/.test(end)) {
      return `a host range is numbers (01:10) or single letters (a:f), got [${bounds.join(':')}]`;
    }
    const width = beg.length > 1 && beg.startsWith('0') ? beg.length : 0;
    if (width && end.length !== width) {
      return `a zero-padded host range needs begin and end of the same length, got [${beg}:${end}]`;
    }
    const from = Number(beg);
    const to = Number(end);
    if (from > to) return `a host range must have begin <= end, got [${beg}:${end}]`;
    if ((to - from) / step + 1 > budget) {
      return `it expands to more than ${MAX_RANGE_HOSTS} hosts`;
    }
    values = [];
    for (let i = from; i <= to; i += step)
      values.push(width ? String(i).padStart(width, '0') : String(i));
  }
  const out: string[] = [];
  for (const v of values) {
    const rest = expandOnce(`${head}${v}${tail}`, Math.floor(budget / values.length) || 1);
    if (typeof rest === 'string') return rest;
    out.push(...rest);
    if (out.length > budget) return `it expands to more than ${MAX_RANGE_HOSTS} hosts`;
  }
  return out;
}

/** The hosts (and port) a pattern stands for. */
export function expandHostPattern(pattern: string): Expanded {
  const { host, port } = splitPort(pattern.trim());
  if (host === '') return { problem: 'empty host name' };
  if (pattern.trim().endsWith(':') && port === undefined) {
    return { problem: 'a host pattern cannot end in ":" (it introduces a port)' };
  }
  if (port !== undefined && (port < 1 || port > 65535)) {
    return { problem: `port ${port} is not between 1 and 65535` };
  }
  // A bare IPv6 address is not a range: its brackets only ever come with a port, handled above.
  const names = expandOnce(host, MAX_RANGE_HOSTS);
  if (typeof names === 'string') return { problem: names };
  return port === undefined ? { names } : { names, port };
}
