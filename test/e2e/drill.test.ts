/**
 * `ferry drill old --to scratch` on the lab, end to end through the CLI: the
 * restored apps answer on the scratch host under its own names, and the
 * scratch host never acts as production. Before the drill, the source carries
 * letsencrypt's auto-renew flag (archived state) and a scheduled datastore
 * backup; the scratch host holds a dokku crontab entry and a dokku-* cron
 * file of its own. After it: a request with a production domain as Host does
 * not reach the app through the scratch host's proxy, the dokku user has no
 * crontab, no /etc/cron.d/dokku-* entry is left, auto-renew is off on the
 * scratch host (and untouched on the source), and the report lists each.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labTest, useLab } from '../lab/ava.js';
import { SEEDED, seed } from '../lab/emulator/seed.js';
import { type ExecResult, run } from '../lab/sys.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const lab = useLab({ instance: 'e2e-drill', hosts: ['old', 'scratch'] });
const state = mkdtempSync(join(tmpdir(), 'ferry-e2e-drill-'));
const AUTORENEW = '/var/lib/dokku/data/letsencrypt/--global/autorenew';

function ferry(args: string[]): Promise<ExecResult> {
  return run(process.execPath, [`${root}dist/src/bin.js`, ...args], {
    cwd: root,
    env: {
      ...process.env,
      FERRY_STATE_DIR: state,
      CI: '1',
      GIT_SSH_COMMAND: lab().gitSshCommand(),
    },
  });
}

/** The status line and body of a request to `host`'s proxy with `Host: name`. */
async function through(host: ReturnType<ReturnType<typeof lab>['host']>, name: string) {
  const r = await host.exec(
    `curl -sS -m 10 -o /tmp/drill-body -w '%{http_code}' -H 'Host: ${name}' http://127.0.0.1/; echo; cat /tmp/drill-body`,
  );
  const [code = '', ...body] = r.stdout.split('\n');
  return { code: Number(code), body: body.join('\n') };
}

labTest(
  'drill: the scratch host answers under its own names only, with no cron active, and says what it disabled',
  async (t) => {
    // Seed, backup and drill: minutes on a machine shared with other runs.
    t.timeout(25 * 60_000);
    const l = lab();
    const old = l.host('old');
    const scratch = l.host('scratch');
    await seed(old, { keyPath: l.keyPath, knownHostsPath: l.knownHostsPath, dir: l.dir });
    const inv = join(state, 'inventory.yml');
    writeFileSync(inv, readFileSync(l.inventoryPath, 'utf8'));

    const prodVhost = (await old.must('cat /home/dokku/VHOST')).trim();
    const ownVhost = (await scratch.must('cat /home/dokku/VHOST')).trim();
    t.not(prodVhost, ownVhost);
    // letsencrypt's auto-renew (plugin state, archived with /var/lib/dokku/data).
    await old.must(`install -d /var/lib/dokku/data/letsencrypt/--global && touch ${AUTORENEW}`);
    // The scratch host's own schedules from an earlier life.
    await scratch.must(
      `printf '%s\\n' 'MAILTO=""' '*/5 * * * * dokku cron:run notes 3f2a' | crontab -u dokku - && printf '0 3 * * * dokku /usr/bin/dokku postgres:backup old-db bucket\\n' >/etc/cron.d/dokku-postgres-old-db`,
    );
    t.regex(await scratch.must('crontab -l -u dokku'), /cron:run notes/);

    const b = await ferry(['backup', 'old', '-i', inv]);
    t.is(b.code, 0, `ferry backup failed:\n${b.stdout}\n${b.stderr}`);
    const d = await ferry(['drill', 'old', '--to', 'scratch', '-i', inv, '--json']);
    t.is(d.code, 0, `ferry drill failed:\n${d.stdout}\n${d.stderr}`);

    // The apps answer under the scratch host's own VHOST...
    t.is((await scratch.must('cat /home/dokku/VHOST')).trim(), ownVhost);
    const own = await through(scratch, `notes.${ownVhost}`);
    t.is(own.code, 200, `notes.${ownVhost}: ${own.body}`);
    for (const row of SEEDED.services[0]!.rows) t.true(own.body.includes(row), row);
    // ...and never under production's: the proxy does not route them to any app.
    for (const app of SEEDED.apps) {
      const prod = await through(scratch, `${app.name}.${prodVhost}`);
      t.false(prod.body.includes(app.answers), `${app.name}.${prodVhost} reached the app`);
      // nginx answers an unknown host 404, Caddy an empty 200: neither is the app.
      t.true(
        prod.code !== 200 || prod.body.trim() === '',
        `${app.name}.${prodVhost}: ${prod.code} ${prod.body}`,
      );
      const vhost = await scratch.exec(`cat /home/dokku/${app.name}/VHOST`);
      t.false(vhost.stdout.includes(prodVhost), `${app.name}: ${vhost.stdout}`);
    }

    // No cron entry is active on the scratch host.
    const tab = await scratch.exec('crontab -l -u dokku');
    t.not(tab.code, 0, `the dokku crontab is still there:\n${tab.stdout}`);
    t.regex(tab.stderr, /no crontab for dokku/);
    t.is((await scratch.must('ls /etc/cron.d | grep ^dokku- || true')).trim(), '');
    t.is((await scratch.exec(`test -e ${AUTORENEW}`)).code, 1, 'auto-renew is still on');
    t.is(
      (await scratch.must('cat /var/lib/dokku/config/cron/--global/maintenance')).trim(),
      'true',
    );
    // The source is untouched: its schedule and auto-renew stay.
    t.is((await old.exec(`test -e ${AUTORENEW}`)).code, 0);
    t.is((await old.exec(`test -e ${SEEDED.backupSchedule.file}`)).code, 0);

    // The report says what was disabled.
    const report = JSON.parse(d.stdout) as { facts: Record<string, string> };
    const listed = (report.facts['disabled on the scratch host'] ?? '').split('; ');
    const text = listed.join('\n');
    t.regex(text, new RegExp(`global VHOST ${prodVhost.replace(/\./g, '\\.')} → `));
    t.regex(text, /domains of notes: notes\.\S+ → notes\./);
    t.regex(text, /letsencrypt auto-renew/);
    t.regex(text, /\/etc\/cron\.d\/dokku-postgres-old-db/);
    t.regex(text, /dokku crontab entry: \*\/5 \* \* \* \* dokku cron:run notes 3f2a/);
  },
);
