/**
 * The cut-over on the lab, with a client writing through the notes app every
 * 50 ms from before ferry starts until after it ends: no row the source (or
 * the target) acknowledged may be missing on the target, and the client's
 * longest failure window is set beside ferry's downtime. Then a failure
 * injected after the freeze must leave the source serving again, its rows
 * intact, and `--resume` must finish the move from there.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { parse, stringify } from 'yaml';
import { FORWARD_DIR } from '../../src/tasks/forward.js';
import { labTest, useLab } from '../lab/ava.js';
import { seed } from '../lab/emulator/seed.js';
import type { LabHost } from '../lab/lab.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'cutover', hosts: ['old', 'new', 'h4', 'h5'] });
const state = mkdtempSync(join(tmpdir(), 'ferry-cutover-'));
let inventoryFile = '';
let seeding: Promise<void> | undefined;

function ferry(args: string[]): Promise<ExecResult> {
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args], {
    cwd: root,
    env: { ...process.env, FERRY_STATE_DIR: state, CI: '1' },
  });
}

/** Publishes the dokku-maintenance fixture as the lab registry's clone of its GitHub URL. */
async function publishMaintenance(registry: string): Promise<void> {
  const fixture = `${root}test/lab/emulator/fixtures/plugins/dokku-maintenance`;
  const work = mkdtempSync(join(tmpdir(), 'ferry-maint-'));
  const bare = `${registry}/plugins/github.com/dokku/dokku-maintenance.git`;
  const r = await run('bash', [
    '-c',
    `set -euo pipefail
     cp -a "$1/." "$2/" && cd "$2" && git init -q . && git add -A
     git -c user.email=lab@ferry -c user.name=lab commit -qm 'dokku-maintenance 0.10.1' && git tag 0.10.1
     tmp="$3.tmp-$$" && rm -rf "$tmp" && git clone -q --bare "$2" "$tmp" && rm -rf "$3" && mv "$tmp" "$3"`,
    'bash',
    fixture,
    work,
    bare,
  ]);
  if (r.code !== 0) throw new Error(`publishing dokku-maintenance: ${r.stderr}`);
}

async function setUp(t: ExecutionContext): Promise<LabHost> {
  const l = lab();
  const old = l.host('old');
  seeding ??= (async () => {
    await seed(old, { keyPath: l.keyPath, knownHostsPath: l.knownHostsPath, dir: l.dir });
    // The registry's folder on this machine (each lab instance has its own, bound into its hosts).
    const labJson = JSON.parse(await old.must('cat /var/lib/docker/lab.json')) as {
      registry: string;
      registryHere?: string;
    };
    const registry = labJson.registryHere ?? labJson.registry;
    await publishMaintenance(registry);
    await old.must(
      'dokku plugin:install https://github.com/dokku/dokku-maintenance.git --name maintenance',
    );
    const doc = parse(readFileSync(l.inventoryPath, 'utf8')) as Record<string, unknown>;
    doc.apps = { order: ['notes'] };
    inventoryFile = join(state, 'inventory.yml');
    writeFileSync(inventoryFile, stringify(doc));
  })();
  await seeding;
  t.truthy(inventoryFile);
  return old;
}

/** One POST to the notes app at `address` (Host header of the source's domain), on a connection of its own. */
function post(
  address: string,
  vhost: string,
  body: string,
  agent: Agent | false = false,
): Promise<{ status: number; id?: number }> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: address,
        port: 80,
        method: 'POST',
        path: '/',
        headers: { host: `notes.${vhost}`, 'content-type': 'text/plain' },
        // a new connection each time, as a new client, unless the test keeps one alive
        agent,
        timeout: 2000,
      },
      (res) => {
        let text = '';
        res.on('data', (b: Buffer) => {
          text += b.toString();
        });
        res.on('end', () => {
          let id: number | undefined;
          try {
            id = (JSON.parse(text) as { id?: number }).id;
          } catch {
            id = undefined;
          }
          resolve({ status: res.statusCode ?? 0, ...(id === undefined ? {} : { id }) });
        });
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0 }));
    req.end(body);
  });
}

/** What the writer saw. */
interface Writes {
  acked: { id: number; body: string; host: string; at: number }[];
  attempts: number;
  /** The longest time from a failed attempt after a success to the next success, ms. */
  longestFailureMs: number;
}

/**
 * Posts a row every 50 ms until `stop`, to the first of `addresses` that
 * acknowledges it (a client whose DNS may point at either host): each try
 * goes to the first address, then the next on a failure.
 */
function startWriter(addresses: string[], vhost: string, tag: string) {
  let stopped = false;
  const w: Writes = { acked: [], attempts: 0, longestFailureMs: 0 };
  let lastOk = Date.now();
  let failing = false;
  const done = (async () => {
    let n = 0;
    while (!stopped) {
      const started = Date.now();
      const body = `${tag}-${n++}`;
      w.attempts++;
      let ok = false;
      for (const a of addresses) {
        const r = await post(a, vhost, body);
        if (r.status === 201 && r.id !== undefined) {
          w.acked.push({ id: r.id, body, host: a, at: Date.now() });
          ok = true;
          break;
        }
      }
      const now = Date.now();
      if (ok) {
        if (failing) w.longestFailureMs = Math.max(w.longestFailureMs, now - lastOk);
        failing = false;
        lastOk = now;
      } else failing = true;
      await new Promise((r) => setTimeout(r, Math.max(0, 50 - (Date.now() - started))));
    }
  })();
  return {
    async stop(): Promise<Writes> {
      stopped = true;
      await done;
      return w;
    },
  };
}

/** The rows the notes app lists on `host`. */
async function rowsOn(host: LabHost, vhost: string): Promise<Map<number, string>> {
  const out = await host.must(
    `curl -sS -m 10 -w '\\n%{http_code}' -H 'Host: notes.${vhost}' http://127.0.0.1/`,
  );
  const body = out.replace(/\n\d+\s*$/, '');
  try {
    const doc = JSON.parse(body) as { notes: { id: number; body: string }[] };
    return new Map(doc.notes.map((n) => [n.id, n.body]));
  } catch {
    // Say what answered instead, and what Dokku thinks of notes there.
    const state = await host.exec(
      'dokku ps:report notes; dokku maintenance:report notes; dokku postgres:info notes-db --status; ls /etc/cron.d',
    );
    throw new Error(
      `notes on ${host.name} did not list its rows: HTTP ${out.slice(-3)} ${JSON.stringify(body.slice(0, 300))}\n${state.stdout}${state.stderr}`,
    );
  }
}

/** Apps running, services status, maintenance mode: what the source must come back to. */
async function sourceState(host: LabHost): Promise<string> {
  return (
    await host.must(
      `for a in $(dokku --quiet apps:list); do echo "$a $(dokku ps:report "$a" --running) restore=$(dokku ps:report "$a" --ps-restore 2>/dev/null || true) maintenance=$(dokku maintenance:report "$a" --maintenance-enabled)"; done
       for s in $(dokku --quiet postgres:list); do echo "$s $(dokku postgres:info "$s" --status)"; done
       ls /etc/cron.d`,
    )
  ).trim();
}

interface JsonReport {
  status: string;
  metrics?: { downtimeMs?: number };
  facts: Record<string, string>;
  undone?: { step: string; ok: boolean }[];
  steps: { id: string; status: string }[];
}

function report(r: ExecResult): JsonReport {
  try {
    return JSON.parse(r.stdout) as JsonReport;
  } catch {
    throw new Error(`no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

labTest(
  'one-phase migrate under a writer: every acknowledged row is on the target; the writer was down no longer than ferry says',
  async (t) => {
    const old = await setUp(t);
    const neu = lab().host('new');
    const vhost = (await old.must('cat /home/dokku/VHOST')).trim();
    const before = await sourceState(old);
    const writer = startWriter([old.address, neu.address], vhost, 'one');
    await new Promise((r) => setTimeout(r, 1500));
    const junit = join(state, 'one.xml');
    const r = await ferry([
      'migrate',
      'old',
      'new',
      '-i',
      inventoryFile,
      '--json',
      '--junit',
      junit,
    ]);
    await new Promise((r2) => setTimeout(r2, 1500));
    const w = await writer.stop();
    t.is(r.code, 0, `ferry migrate failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    const rep = report(r);
    const downtime = rep.metrics?.downtimeMs ?? Number.NaN;
    t.true(downtime > 0, `downtime reported: ${JSON.stringify(rep.metrics)}`);
    t.regex(rep.facts.downtime ?? '', /first app frozen .* last app verified/);
    t.regex(readFileSync(junit, 'utf8'), /<property name="downtimeMs" value="\d+"\/>/);

    const rows = await rowsOn(neu, vhost);
    const missing = w.acked.filter((a) => rows.get(a.id) !== a.body);
    t.deepEqual(missing, [], 'acknowledged rows missing on the target');
    const onOld = w.acked.filter((a) => a.host === old.address).length;
    const onNew = w.acked.length - onOld;
    t.true(onOld > 10 && onNew > 5, `rows acknowledged by old ${onOld}, by new ${onNew}`);
    t.log(
      `one-phase: ${w.attempts} attempts, ${w.acked.length} acknowledged (${onOld} by old, ${onNew} by new), 0 missing; writer's longest failure ${w.longestFailureMs} ms, ferry's downtime ${downtime} ms`,
    );
    // The writer is down from the freeze of notes to its answer on the target: inside ferry's window.
    t.true(w.longestFailureMs > 0 && w.longestFailureMs <= downtime + 1000);

    // The source stays frozen: notes takes no write (its maintenance page under nginx; under
    // the seed's caddy, which ignores the plugin's nginx include, it is stopped), the
    // datastore is stopped, cron held.
    const late = await post(old.address, vhost, 'after the cut-over');
    t.not(late.status, 201, 'the source acknowledges no write after the cut-over');
    const frozenAs = (
      await old.must(
        'echo "$(dokku ps:report notes --running) $(dokku maintenance:report notes --maintenance-enabled)"',
      )
    ).trim();
    t.true(
      ['false false', 'false true', 'true true'].includes(frozenAs),
      `notes on old: ${frozenAs}`,
    );
    t.regex(await old.must('dokku postgres:info notes-db --status'), /missing|exited|stopped/);
    t.is((await old.must('ls /etc/cron.d')).trim(), '');
    // On the target, the apps are out of the maintenance the freeze carried along.
    t.is((await neu.must('dokku maintenance:report notes --maintenance-enabled')).trim(), 'false');
    // The script the report names brings the source back as it was.
    const thaw = /bash (\S+thaw\.sh) on old/.exec(JSON.stringify(rep))?.[1];
    t.truthy(thaw, 'the report says how to bring the source back');
    await old.must(`bash ${thaw}`);
    t.is(await sourceState(old), before);
  },
);

labTest(
  'forwarding: a request to the old host is answered by the new one and its row lands there; --stop and the TTL end it',
  async (t) => {
    // After the first test: notes runs on new with the moved rows, and old serves again (thawed).
    const old = await setUp(t);
    const neu = lab().host('new');
    const vhost = (await old.must('cat /home/dokku/VHOST')).trim();
    const onNew = await rowsOn(neu, vhost);
    t.true(onNew.size > 0, 'the first test moved notes to new');

    // A client that keeps its connection to old's proxy alive, as a browser does.
    const kept = new Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => kept.destroy());
    const early = await post(old.address, vhost, 'kept alive, before forwarding', kept);
    t.is(early.status, 201, 'old answers before forwarding');
    t.is((await rowsOn(old, vhost)).get(early.id ?? -1), 'kept alive, before forwarding');

    // A failed assertion must not leave old forwarding: the next test writes to old.
    t.teardown(async () => {
      await ferry(['forward', 'old', '--stop', '-i', inventoryFile]);
    });
    const f = await ferry(['forward', 'old', '--to', 'new', '--ttl', '10m', '-i', inventoryFile]);
    t.is(f.code, 0, `ferry forward failed:\n${f.stdout.slice(-2000)}\n${f.stderr.slice(-2000)}`);
    // The forwarder's folder and files are root's alone.
    t.is(
      await old.must(
        `cd ${FORWARD_DIR} && stat -c '%n %a' . forward.sh forward.log forwarder.py ports pid`,
      ),
      [
        '. 700',
        'forward.sh 600',
        'forward.log 600',
        'forwarder.py 600',
        'ports 600',
        'pid 600',
        '',
      ].join('\n'),
    );
    // From here (another host than old, as a client whose DNS still names old): old's address.
    const w = await post(old.address, vhost, 'through old, into new');
    t.is(w.status, 201, 'answered through the forward');
    t.is((await rowsOn(neu, vhost)).get(w.id ?? -1), 'through old, into new', "in new's database");
    t.false(
      [...(await rowsOn(old, vhost)).values()].includes('through old, into new'),
      "not in old's",
    );
    // The kept-alive connection was closed when forwarding began: its client reconnected, forwarded.
    t.regex(`${f.stdout}\n${f.stderr}`, /closed [1-9]\d* connection\(s\) opened before/);
    const late = await post(old.address, vhost, 'kept alive, after forwarding', kept);
    t.is(late.status, 201, 'the kept-alive client is answered');
    t.is((await rowsOn(neu, vhost)).get(late.id ?? -1), 'kept alive, after forwarding', "in new's");
    t.false(
      [...(await rowsOn(old, vhost)).values()].includes('kept alive, after forwarding'),
      "not in old's: the client did not stay on old's proxy",
    );

    const s = await ferry(['forward', 'old', '--stop', '-i', inventoryFile]);
    t.is(
      s.code,
      0,
      `ferry forward --stop failed:\n${s.stdout.slice(-2000)}\n${s.stderr.slice(-2000)}`,
    );
    t.is(
      (await old.must('iptables -t nat -S PREROUTING | grep -c ferry-forward || true')).trim(),
      '0',
    );
    const back = await post(old.address, vhost, 'old answers again');
    t.is(back.status, 201);
    t.is((await rowsOn(old, vhost)).get(back.id ?? -1), 'old answers again', 'old took it itself');

    // A TTL ends forwarding by itself: old's own proxy answers again, with no rule left.
    const short = await ferry([
      'forward',
      'old',
      '--to',
      'new',
      '--ttl',
      '15s',
      '-i',
      inventoryFile,
    ]);
    t.is(short.code, 0, short.stderr.slice(-2000));
    const ends = Date.now() + 15_000;
    const during = await post(old.address, vhost, 'during the ttl');
    t.true(Date.now() < ends, 'the write was made inside the TTL (a loaded machine may need more)');
    t.is((await rowsOn(neu, vhost)).get(during.id ?? -1), 'during the ttl');
    // The rules go once the TTL has run out (give the timer a few seconds past it).
    let rules = '';
    while (Date.now() < ends + 10_000) {
      rules = (
        await old.must('iptables -t nat -S PREROUTING | grep -c ferry-forward || true')
      ).trim();
      if (Date.now() > ends && rules === '0') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    t.is(rules, '0', 'no forwarding rule left once the TTL ran out');
    const after = await post(old.address, vhost, 'after the ttl');
    t.is(
      (await rowsOn(old, vhost)).get(after.id ?? -1),
      'after the ttl',
      'old answers itself once the TTL ran out',
    );
  },
);

labTest(
  'a failure after the freeze brings the source back serving, its rows intact; --resume then finishes the move',
  async (t) => {
    const old = await setUp(t);
    const h4 = lab().host('h4');
    const vhost = (await old.must('cat /home/dokku/VHOST')).trim();
    const before = await sourceState(old);
    const rowsBefore = await rowsOn(old, vhost);
    // A copy of the shipped playbook with a gate after the services start on the target.
    const pb = parse(readFileSync(`${root}playbooks/migrate.yml`, 'utf8')) as {
      steps: { task: string; on: string; params?: unknown }[];
    };
    const at = pb.steps.findIndex((s) => s.task === 'start-services') + 1;
    pb.steps.splice(at, 0, {
      task: 'command',
      on: 'target',
      params: { run: 'test -e /tmp/ferry-go-on' },
    });
    const dir = join(state, 'playbooks');
    mkdirSync(dir, { recursive: true });
    const pbFile = join(dir, 'migrate-gated.yml');
    writeFileSync(pbFile, stringify(pb));

    const r1 = await ferry(['migrate', 'old', 'h4', '-i', inventoryFile, '-p', pbFile, '--json']);
    t.is(
      r1.code,
      1,
      `the gate must stop the run:\n${r1.stdout.slice(-2000)}\n${r1.stderr.slice(-2000)}`,
    );
    const rep = report(r1);
    t.deepEqual((rep.undone ?? []).map((u) => [u.step, u.ok]).sort(), [
      ['cut-over', true],
      ['extract', true],
      ['recreate-engine', true],
      ['start-services', true],
    ]);
    // The source serves again, exactly as before, with every row.
    t.is(await sourceState(old), before);
    const rowsAfter = await rowsOn(old, vhost);
    t.deepEqual([...rowsAfter], [...rowsBefore]);
    const w = await post(old.address, vhost, 'after the undo');
    t.is(w.status, 201, 'the source takes writes again');
    // The target has its own (empty) Dokku back, the copy kept in the stage, nothing running.
    t.is((await h4.must('dokku --quiet apps:list')).trim(), '');
    t.is((await h4.must('ls /etc/cron.d')).trim(), '');
    t.regex(r1.stderr, /resume/);

    await h4.must('touch /tmp/ferry-go-on');
    const r2 = await ferry([
      'migrate',
      'old',
      'h4',
      '-i',
      inventoryFile,
      '-p',
      pbFile,
      '--resume',
      '--leave-source-running',
    ]);
    t.is(r2.code, 0, `--resume failed:\n${r2.stdout.slice(-3000)}\n${r2.stderr.slice(-3000)}`);
    t.regex(r2.stderr, /were undone, so they run again/);
    const rows = await rowsOn(h4, vhost);
    t.is(rows.get(w.id ?? -1), 'after the undo', 'the write taken after the undo moved too');
    // --leave-source-running: the source serves again.
    t.is(await sourceState(old), before);
  },
);

labTest(
  '--live under a writer, through a failure after the freeze and --resume: every acknowledged row is on the target; downtime is phase 2 only',
  async (t) => {
    const old = await setUp(t);
    const h5 = lab().host('h5');
    const vhost = (await old.must('cat /home/dokku/VHOST')).trim();
    // migrate-live.yml with a gate after the services start on the target: the first run fails there.
    const pb = parse(readFileSync(`${root}playbooks/migrate-live.yml`, 'utf8')) as {
      steps: { task: string; on: string; params?: unknown }[];
    };
    const at = pb.steps.findIndex((s) => s.task === 'start-services') + 1;
    pb.steps.splice(at, 0, {
      task: 'command',
      on: 'target',
      params: { run: 'test -e /tmp/ferry-live-go-on' },
    });
    const dir = join(state, 'playbooks');
    mkdirSync(dir, { recursive: true });
    const pbFile = join(dir, 'migrate-live-gated.yml');
    writeFileSync(pbFile, stringify(pb));

    const writer = startWriter([old.address, h5.address], vhost, 'live');
    await new Promise((r) => setTimeout(r, 1500));
    const args = ['migrate', 'old', 'h5', '--live', '-i', inventoryFile, '-p', pbFile, '--json'];
    const r1 = await ferry(args);
    t.is(
      r1.code,
      1,
      `the gate must stop the run:\n${r1.stdout.slice(-2000)}\n${r1.stderr.slice(-2000)}`,
    );
    const rep1 = report(r1);
    t.true(
      (rep1.undone ?? []).some((u) => u.step === 'cut-over' && u.ok),
      'the source is brought back',
    );
    t.is(rep1.steps.find((s) => s.id === 'sync')?.status, 'ok', 'phase 1 done');
    t.is(rep1.steps.find((s) => s.id === 'sync-final')?.status, 'ok', 'phase 2 copied and checked');
    await new Promise((r) => setTimeout(r, 1500));

    await h5.must('touch /tmp/ferry-live-go-on');
    const r2 = await ferry([...args, '--resume']);
    await new Promise((r) => setTimeout(r, 1500));
    const w = await writer.stop();
    t.is(r2.code, 0, `--resume failed:\n${r2.stdout.slice(-3000)}\n${r2.stderr.slice(-3000)}`);
    const rep2 = report(r2);
    t.is(rep2.steps.find((s) => s.id === 'sync')?.status, 'resumed', 'phase 1 is not run again');
    t.is(rep2.steps.find((s) => s.id === 'sync-final')?.status, 'ok', 'the last delta runs again');

    const rows = await rowsOn(h5, vhost);
    const missing = w.acked.filter((a) => rows.get(a.id) !== a.body);
    t.deepEqual(missing, [], 'acknowledged rows missing on the target');
    const onOld = w.acked.filter((a) => a.host === old.address).length;
    const onNew = w.acked.length - onOld;
    t.true(onOld > 10 && onNew > 5, `rows acknowledged by old ${onOld}, by h5 ${onNew}`);

    const d1 = rep1.metrics?.downtimeMs ?? Number.NaN;
    const d2 = rep2.metrics?.downtimeMs ?? Number.NaN;
    t.true(d1 > 0 && d2 > 0, `downtimes reported: ${d1}, ${d2}`);
    t.regex(rep2.facts.downtime ?? '', /first app frozen .* last app verified/);
    t.log(
      `--live: ${w.attempts} attempts, ${w.acked.length} acknowledged (${onOld} by old, ${onNew} by h5), 0 missing; writer's longest failure ${w.longestFailureMs} ms; ferry's downtime ${d1} ms (failed run, until the source was back) and ${d2} ms (--resume)`,
    );
    // Phase 1 ran while the source served: the writer's longest window is one of the two freezes.
    t.true(w.longestFailureMs > 0 && w.longestFailureMs <= Math.max(d1, d2) + 1000);
    t.is((await h5.must('dokku maintenance:report notes --maintenance-enabled')).trim(), 'false');
  },
);
