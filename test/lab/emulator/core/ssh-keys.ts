/**
 * ssh-keys:list [--format text|json] [NAME] (D plugins/ssh-keys subcommands/list
 * over sshcommand's `list`): the dokku user's authorized_keys lines written by
 * sshcommand, as `FINGERPRINT NAME="..." SSHCOMMAND_ALLOWED_KEYS="..."` or
 * JSON. Releases differ by their sshcommand: 0.16.0 (Dokku 0.30), 0.18.0
 * (0.34), 0.20.0 (0.37), 0.20.2 (0.38); before 0.37 Dokku itself first checks
 * the file (verify_ssh_key_file).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Command,
  DOKKU_ROOT,
  ENGINE_ROOT,
  eprintln,
  exit,
  fail,
  println,
  versionAtLeast,
} from '../lib.js';

interface KeyLine {
  fingerprint: string;
  name: string;
  allowed: string;
  publicKey: string;
}

/** sshcommand's sed: `command="FINGERPRINT=F NAME=N `...`",OPTIONS KEY`. */
function parseLine(line: string): KeyLine | null {
  const m = /^command="FINGERPRINT=(\S+) NAME=(\\"|)(.*)\2 `.*",(\S+)(?: (.*))?$/.exec(line);
  if (m === null) return null;
  return {
    fingerprint: m[1] ?? '',
    name: m[3] ?? '',
    allowed: m[4] ?? '',
    publicKey: m[5] ?? '',
  };
}

/** The line numbers (1-based) ssh-keygen -lf refuses. */
function badLines(lines: string[], skipComments: boolean): number[] {
  const dir = mkdtempSync(join(ENGINE_ROOT, 'tmp', 'ssh-keys-'));
  try {
    const bad: number[] = [];
    lines.forEach((key, i) => {
      if (key.trim() === '' || (skipComments && key.startsWith('#'))) return;
      const f = join(dir, 'key');
      writeFileSync(f, `${key}\n`);
      if (spawnSync('ssh-keygen', ['-lf', f], { stdio: 'ignore' }).status !== 0) bad.push(i + 1);
    });
    return bad;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const list: Command = async (args) => {
  let name = args[0] ?? '';
  let format = 'text';
  if (name === '--format') {
    format = args[1] ?? '';
    name = args[2] ?? '';
  }
  if (format !== 'text' && format !== 'json') {
    fail('Invalid output format specified, supported formats: json, text');
  }
  const file = join(DOKKU_ROOT, '.ssh', 'authorized_keys');
  let text: string | null;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    text = null;
  }
  const lines = (text ?? '').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const sshcommand = versionAtLeast('0.37.0') ? '0.20' : versionAtLeast('0.34.0') ? '0.18' : '0.16';
  if (sshcommand !== '0.20') {
    // verify_ssh_key_file
    if (text === null || text === '') fail('No public keys found.');
    const bad = badLines(lines, false);
    if (bad.length > 0) fail(`${file} line ${bad[0]} failed ssh-keygen check.`);
  } else {
    if (text === null) {
      eprintln('authorized_keys not found for dokku');
      exit(1);
    }
    if (text === '') {
      eprintln('authorized_keys is empty for dokku');
      exit(1);
    }
    const bad = badLines(lines, true);
    for (const n of bad) eprintln(`${file} line ${n} failed ssh-keygen check.`);
    if (bad.length > 0) exit(1);
  }
  const keys = lines.map(parseLine).filter((k): k is KeyLine => k !== null);
  if (format === 'json') {
    const items = keys.map((k) =>
      sshcommand === '0.20'
        ? `{ "fingerprint": "${k.fingerprint}", "name": "${k.name}", "SSHCOMMAND_ALLOWED_KEYS": "${k.allowed}", "public-key": "${k.publicKey}" }`
        : `{ "fingerprint": "${k.fingerprint}", "name": "${k.name}", "SSHCOMMAND_ALLOWED_KEYS": "${k.allowed}" }`,
    );
    const raw = `[${items.join(',')}]`;
    if (name === '') {
      println(raw);
      return;
    }
    // `jq -cM "[.[] | select(.name == \"NAME\")]"`
    const parsed = JSON.parse(raw) as Array<{ name: string }>;
    println(JSON.stringify(parsed.filter((k) => k.name === name)));
    return;
  }
  const out = keys.map(
    (k) => `${k.fingerprint} NAME="${k.name}" SSHCOMMAND_ALLOWED_KEYS="${k.allowed}"`,
  );
  if (name === '') {
    println(out.join('\n'));
    return;
  }
  // `echo "$OUTPUT" | grep "NAME=\"$NAME\""`: no match is grep's exit 1
  const hits = out.filter((l) => l.includes(`NAME="${name}"`));
  if (hits.length === 0) exit(1);
  println(hits.join('\n'));
};

export const commands: Record<string, Command> = { 'ssh-keys:list': list };
