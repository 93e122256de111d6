/**
 * The README's first command: build the default lab (hosts `old` and `new`),
 * seed `old` with sample apps and PostgreSQL services, run `ferry migrate old
 * new` with inventory/lab.yml, and show every app answering on `new`.
 * The lab stays up afterwards so you can look around (`npm run lab -- down`).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SEEDED, seed } from './emulator/seed.js';
import { Lab, labUnavailableReason } from './lab.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const say = (line: string) => process.stdout.write(`\n\x1b[1m==> ${line}\x1b[0m\n`);

function ferry(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${root}dist/src/bin.js`, ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: 'inherit',
    });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function main(): Promise<number> {
  const why = labUnavailableReason();
  if (why) {
    process.stderr.write(`demo: the lab cannot run here: ${why}\n`);
    return 1;
  }
  say('Building the lab: hosts old (10.251.0.11) and new (10.251.0.12)');
  const lab = await Lab.up({
    hosts: ['old', 'new'],
    log: (l) => process.stdout.write(`    ${l}\n`),
  });
  const old = lab.host('old');
  const neu = lab.host('new');

  say('Seeding old: git-pushed apps, an image app, an archive app, two PostgreSQL services');
  const seeded = await seed(old, {
    keyPath: lab.keyPath,
    knownHostsPath: lab.knownHostsPath,
    dir: lab.dir,
    log: (l) => process.stdout.write(`    ${l}\n`),
  });
  process.stdout.write(`    seeded in ${(seeded.ms / 1000).toFixed(1)} s\n`);

  say('Migrating: ferry migrate old new -i inventory/lab.yml');
  // The user's git reaches Dokku with their own key; here, the lab's (host keys still checked).
  const code = await ferry(['migrate', 'old', 'new', '-i', 'inventory/lab.yml'], {
    GIT_SSH_COMMAND: lab.gitSshCommand(),
  });
  if (code !== 0) {
    process.stderr.write(`demo: ferry migrate exited ${code}; the lab is left up to look at\n`);
    return code;
  }

  say('Every app on new, through its vhost on port 80');
  const vhost = (await neu.must('cat /home/dokku/VHOST')).trim();
  let bad = 0;
  for (const app of SEEDED.apps) {
    const r = await neu.exec(
      `curl -sS -m 10 -H 'Host: ${app.name}.${vhost}' http://127.0.0.1/ -w '\\n%{http_code}'`,
    );
    const lines = r.stdout.trim().split('\n');
    const status = lines.pop() ?? '';
    const body = lines.join(' ').slice(0, 90);
    const ok = status === '200' && r.stdout.includes(app.answers);
    if (!ok) bad++;
    process.stdout.write(`    ${ok ? '✔' : '✖'} ${app.name.padEnd(8)} ${status}  ${body}\n`);
  }
  process.stdout.write(
    `\n${bad === 0 ? 'All apps answer on new.' : `${bad} app(s) did not answer as expected.`} The lab is still up: \`npm run lab -- status\`, \`npm run lab -- down\`.\n`,
  );
  return bad === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
