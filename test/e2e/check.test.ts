/**
 * `ferry check` against a 2-host lab: all good (exit 0), a changed host key
 * (exit 1, MISMATCH with both fingerprints), an unknown one refused then
 * accepted on request, and bad input (exit 2) before any host is contacted.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parse, stringify } from 'yaml';
import { main } from '../../src/cli.js';
import type { CheckReport } from '../../src/commands/check-report.js';
import { labTest, useLab } from '../lab/ava.js';

const lab = useLab({ instance: 'check-test', hosts: ['old', 'new'] });

async function ferry(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks: Buffer[] = [];
  const errChunks: Buffer[] = [];
  out.on('data', (b: Buffer) => chunks.push(b));
  err.on('data', (b: Buffer) => errChunks.push(b));
  const code = await main(argv, {
    stdout: out,
    stderr: err,
    env: {},
    stderrIsTty: false,
  });
  return {
    code,
    stdout: Buffer.concat(chunks).toString('utf8'),
    stderr: Buffer.concat(errChunks).toString('utf8'),
  };
}

type InventoryDoc = {
  defaults: Record<string, unknown>;
  hosts: Record<string, Record<string, unknown>>;
};

async function inventoryCopy(
  dir: string,
  name: string,
  edit: (doc: InventoryDoc) => void,
): Promise<string> {
  const doc = parse(await readFile(lab().inventoryPath, 'utf8')) as InventoryDoc;
  edit(doc);
  const file = join(dir, name);
  await writeFile(file, stringify(doc));
  return file;
}

labTest('ferry check passes against the lab and reports every column', async (t) => {
  const r = await ferry('check', '-i', lab().inventoryPath);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /^HOST\s+ADDRESS\s+SSH\s+HOST KEY\s+DOKKU/m);
  for (const h of lab().hosts) {
    t.regex(
      r.stdout,
      new RegExp(
        `^${h.name}\\s+root@${h.address.replace(/\./g, '\\.')}\\s+ok\\s+known, ok\\s+${h.dokkuVersion}`,
        'm',
      ),
    );
  }
  t.regex(r.stdout, /ssh2 native crypto (built|NOT built)/);
  t.regex(r.stdout, /all 2 host\(s\) ok/);

  const j = await ferry('check', '-i', lab().inventoryPath, '--json', 'old');
  t.is(j.code, 0);
  const rep = JSON.parse(j.stdout) as CheckReport;
  t.true(rep.ok);
  t.is(rep.hosts.length, 1);
  t.is(rep.connections, 1);
  const old = rep.hosts[0];
  t.is(old?.host, 'old');
  t.is(old?.hostKey.status, 'known_hosts');
  t.is(old?.hostKey.fingerprint, lab().host('old').hostKeyFingerprint);
  t.is(old?.dokku, lab().host('old').dokkuVersion);
  t.is(old?.sudo, 'root');
  t.is(old?.zstd, true);
  t.truthy(old?.arch);
  t.true((old?.disk?.freeBytes ?? 0) > 0);
  t.true((old?.disk?.dokkuBytes ?? 0) > 0);
  t.true(Array.isArray(old?.datastores));
  t.deepEqual(rep.playbooks.slice().sort(), rep.playbooks);
});

labTest('a changed host key is a MISMATCH error with both fingerprints, exit 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-check-'));
  try {
    const [old, other] = [lab().host('old'), lab().host('new')];
    const file = await inventoryCopy(dir, 'mismatch.yml', (d) => {
      (d.hosts.old as Record<string, unknown>).host_key = other.hostKeyFingerprint;
    });
    const r = await ferry('check', '-i', file);
    t.is(r.code, 1);
    t.regex(r.stdout, /^old\s+\S+\s+ok\s+MISMATCH/m);
    t.regex(r.stdout, /^new\s+\S+\s+ok\s+known, ok/m);
    t.regex(r.stdout, /error: old: host key MISMATCH/);
    t.true(r.stdout.includes(other.hostKeyFingerprint), 'expected fingerprint shown');
    t.true(r.stdout.includes(old.hostKeyFingerprint), 'presented fingerprint shown');
    // even --accept-new-host-keys never accepts a changed key
    t.is((await ferry('check', '-i', file, '--accept-new-host-keys', 'old')).code, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

labTest(
  'an unknown host key is refused with its fingerprint, and accepted on request',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-check-'));
    try {
      const known = join(dir, 'known_hosts');
      const file = await inventoryCopy(dir, 'unknown.yml', (d) => {
        d.defaults.known_hosts = known;
      });
      const old = lab().host('old');
      const r = await ferry('check', '-i', file, 'old');
      t.is(r.code, 1);
      t.regex(r.stdout, /^old\s+\S+\s+ok\s+UNKNOWN/m);
      t.true(r.stdout.includes(old.hostKeyFingerprint));
      t.regex(r.stdout, /ferry check old --accept-new-host-keys/);
      t.regex(r.stdout, /hosts\.old\.host_key/);
      const a = await ferry('check', '-i', file, 'old', '--accept-new-host-keys');
      t.is(a.code, 0, a.stdout);
      t.regex(a.stdout, /NEW, accepted/);
      t.regex(
        await readFile(known, 'utf8'),
        new RegExp(`^${old.address.replace(/\./g, '\\.')} ssh-ed25519 `, 'm'),
      );
      t.is((await ferry('check', '-i', file, 'old')).code, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

labTest('bad input exits 2 before contacting any host', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-check-'));
  try {
    const r = await ferry('check', '-i', lab().inventoryPath, 'nosuchhost');
    t.is(r.code, 2);
    t.regex(r.stderr, /no host named "nosuchhost"/);
    const bad = join(dir, 'bad.yml');
    await writeFile(bad, 'version: 1\nhosts:\n  old:\n    port: 22\n');
    const b = await ferry('check', '-i', bad);
    t.is(b.code, 2);
    t.regex(b.stderr, /bad\.yml:\d+/);
    t.is(b.stdout, '');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
