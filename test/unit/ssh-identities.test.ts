/**
 * The keys a connection offers, in OpenSSH's order (sshconnect2.c
 * pubkey_prepare): agent keys that are identity files, the agent's others
 * (unless IdentitiesOnly), then the files the agent does not hold. Keys are
 * made by ssh-keygen; the agent is a real ssh-agent.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import ssh2 from 'ssh2';
import {
  agentKeys,
  authPlan,
  orderIdentities,
  readIdentityFile,
} from '../../src/ssh/identities.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-ids-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function keygen(name: string, passphrase = ''): string {
  const p = join(dir, name);
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', name, '-f', p]);
  if (r.status !== 0) throw new Error(String(r.stderr));
  return p;
}

function blobOf(path: string): Buffer {
  const k = ssh2.utils.parseKey(readFileSync(`${path}.pub`, 'utf8'));
  if (k instanceof Error) throw k;
  return k.getPublicSSH();
}

test('the order: agent keys that are files, other agent keys, then files only on disk', async (t) => {
  const a = keygen('a');
  const b = keygen('b');
  const c = keygen('c');
  const files = await Promise.all([c, a].map(readIdentityFile));
  const agent = [
    { blob: blobOf(b), comment: 'b' },
    { blob: blobOf(a), comment: 'a' },
  ];
  const order = orderIdentities(agent, files, false).map((o) =>
    o.kind === 'agent' ? `agent:${o.comment}` : `file:${o.path.split('/').pop()}`,
  );
  t.deepEqual(
    order,
    ['agent:a', 'agent:b', 'file:c'],
    'a (agent, also a file) first; a is not offered twice',
  );
  const only = orderIdentities(agent, files, true).map((o) =>
    o.kind === 'agent' ? `agent:${o.comment}` : `file:${o.path.split('/').pop()}`,
  );
  t.deepEqual(only, ['agent:a', 'file:c'], 'IdentitiesOnly drops the agent keys that are no file');
});

test('identity files: .pub names an agent key, an encrypted key is usable only through the agent', async (t) => {
  const enc = keygen('enc', 'secret passphrase');
  const f = await readIdentityFile(enc);
  t.truthy(f.publicBlob, 'the public half comes from enc.pub');
  t.is(f.privateKey, undefined);
  t.regex(f.unusable ?? '', /encrypted/);
  const missing = await readIdentityFile(join(dir, 'nope'));
  t.regex(missing.unusable ?? '', /does not exist/);
  const order = orderIdentities([{ blob: f.publicBlob!, comment: 'enc' }], [f, missing], true);
  t.deepEqual(
    order.map((o) => o.kind),
    ['agent'],
  );
});

test('a real ssh-agent: its keys listed in its order, the plan offers them before the files', async (t) => {
  const sock = join(dir, 'agent.sock');
  const started = spawnSync('ssh-agent', ['-a', sock, '-s'], { encoding: 'utf8' });
  t.is(started.status, 0, started.stderr);
  const pid = /SSH_AGENT_PID=(\d+)/.exec(started.stdout)?.[1];
  try {
    const k1 = keygen('agent1');
    const k2 = keygen('agent2');
    const disk = keygen('disk');
    for (const k of [k2, k1]) {
      const r = spawnSync('ssh-add', ['-q', k], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
      t.is(r.status, 0, String(r.stderr));
    }
    // The private halves of the agent's keys are gone: they exist only in the agent now.
    rmSync(k1);
    rmSync(k2);
    const listed = await agentKeys(sock);
    t.deepEqual(
      listed.map((k) => k.comment),
      ['agent2', 'agent1'],
    );
    const plan = await authPlan({
      username: 'root',
      identities: [disk, k1],
      identitiesOnly: false,
      agent: sock,
    });
    t.deepEqual(
      plan.offers.map((o) => (o.kind === 'agent' ? `agent:${o.comment}` : 'file')),
      ['agent:agent1', 'agent:agent2', 'file'],
    );
    t.deepEqual(
      plan.methods.map((m) => m.type),
      ['agent', 'publickey'],
    );
    const none = await authPlan({
      username: 'root',
      identities: [join(dir, 'x')],
      identitiesOnly: true,
      agent: sock,
    });
    t.is(none.methods.length, 0);
    t.regex(none.skipped[0]?.why ?? '', /does not exist/);
  } finally {
    if (pid) process.kill(Number(pid));
  }
});
