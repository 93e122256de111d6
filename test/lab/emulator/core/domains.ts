/**
 * domains:report (D plugins/domains/report.go), read from the VHOST files, and
 * domains:set / domains:set-global (D plugins/domains/subcommands/set,
 * set-global and functions `domains_set`, `domains_set_global`,
 * `domains_enable`, `get_default_vhosts`, `is_valid_hostname`, v0.38.27).
 *
 * domains:report, read from the VHOST files and NO_VHOST. Bash before 0.38.22
 * (internal-functions cmd-domains-report-single: `--global` too, an empty
 * value prints nothing, no "not deployed"), Go since (domains/report.go).
 */
import { join } from 'node:path';
import {
  appEnvPath,
  type Command,
  DOKKU_ROOT,
  fail,
  info1,
  isQuiet,
  listApps,
  println,
  readEnv,
  readOr,
  reportCommand,
  runDokku,
  runTrigger,
  verifyAppBash,
  versionAtLeast,
  warn,
  writeFileDokku,
} from '../lib.js';

const normalize = (s: string): string =>
  s
    .split(/\s+/)
    .filter((w) => w !== '')
    .join(' ');

const GLOBAL_VHOST = join(DOKKU_ROOT, 'VHOST');

function globalEnabled(): boolean {
  return readOr(join(DOKKU_ROOT, 'VHOST'))
    .split('\n')
    .some((l) => /^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.?)+$|^_$/.test(l.toLowerCase()));
}

function info(app: string): Record<string, string> {
  const enabled = globalEnabled();
  const r: Record<string, string> = {
    '--domains-global-enabled': enabled ? 'true' : 'false',
    '--domains-global-vhosts': enabled ? normalize(readOr(join(DOKKU_ROOT, 'VHOST'))) : '',
  };
  if (app === '--global') return r;
  r['--domains-app-enabled'] = readEnv(appEnvPath(app)).get('NO_VHOST') === '1' ? 'false' : 'true';
  r['--domains-app-vhosts'] = normalize(readOr(join(DOKKU_ROOT, app, 'VHOST')));
  return r;
}

const goReport = reportCommand('domains', (s) => info(s), false);

/** The bash report: app keys first, then global ones; `--global` has only the latter. */
function bashSingle(app: string, infoFlag: string): void {
  if (app !== '--global') verifyAppBash(app);
  const i = info(app);
  const order =
    app === '--global'
      ? ['--domains-global-enabled', '--domains-global-vhosts']
      : [
          '--domains-app-enabled',
          '--domains-app-vhosts',
          '--domains-global-enabled',
          '--domains-global-vhosts',
        ];
  if (infoFlag === '') {
    if (!isQuiet()) {
      println(
        app === '--global'
          ? '=====> Global domains information'
          : `=====> ${app} domains information`,
      );
    }
    for (const f of order) {
      const key = `${f.replace(/^--/, '').replace(/-/g, ' ')}:`;
      const label = `${key.charAt(0).toUpperCase()}${key.slice(1)}`;
      println(`       ${label.padEnd(30)} ${(i[f] ?? '').padEnd(25)}`);
    }
    return;
  }
  if (!order.includes(infoFlag)) {
    fail(`Invalid flag passed, valid flags:${order.map((f) => ` ${f}`).join('')}`);
  }
  const v = i[infoFlag] ?? '';
  if (v !== '') println(v);
}

const bashReport: Command = async (args) => {
  let app = args[0] ?? '';
  let infoFlag = args[1] ?? '';
  if (app === '--global') {
    bashSingle(app, infoFlag);
    return;
  }
  if (app.startsWith('--')) {
    infoFlag = app;
    app = '';
  }
  if (app !== '') {
    bashSingle(app, infoFlag);
    return;
  }
  const apps = listApps();
  if (apps.length === 0) warn("You haven't deployed any applications yet");
  for (const a of apps) {
    try {
      bashSingle(a, infoFlag);
    } catch {
      // `cmd-domains-report-single "$app" | tee || true`
    }
  }
};

const report: Command = (args) => (versionAtLeast('0.38.22') ? goReport(args) : bashReport(args));

/** `is_valid_hostname`: `_`, or lower-cased letters, digits, dots, `*` and `-`, not ending in a dot. */
function validHostname(name: string): boolean {
  const h = name.toLowerCase();
  return h === '_' || /^[a-z0-9.*-]*[a-z0-9*-]$/.test(h);
}

/** `get_default_vhosts` without the nginx-hostname trigger: `<app>.<vhost>` per global vhost that is no IP. */
function defaultVhosts(app: string): string[] {
  const lines = readOr(GLOBAL_VHOST).split('\n');
  if (!lines.some((l) => validHostname(l))) return [];
  const ip = /^(\d{1,3}\.){3}\d{1,3}$|:/;
  return lines
    .filter((v) => v !== '' && !ip.test(v))
    .map((v) => (app.includes('.') ? app : `${app}.${v}`));
}

/** `echo "$*" | tr " " "\n"`: the words, one a line. */
const lines = (words: string[]): string => `${words.join(' ').split(' ').join('\n')}\n`;

const set: Command = async (args) => {
  const [app = '', ...domains] = args;
  // After the subcommand's `shift 1`, `$1 $2` are the app and the (empty) domain.
  if ((domains[0] ?? '') === '')
    fail(`Please specify a domain name. Usage: dokku ${app}  <domain> [<domain> ...]`);
  verifyAppBash(app);
  const file = join(DOKKU_ROOT, app, 'VHOST');
  writeFileDokku(file, readOr(file));
  for (const d of domains) if (!validHostname(d)) fail(`${d} is invalid. exiting...`);
  writeFileDokku(file, lines(domains));
  info1(`Set ${domains.join(' ')} for ${app}`);
  if (readEnv(appEnvPath(app)).get('NO_VHOST') === '1') {
    // domains_enable: the default vhosts replace what was just set (Dokku's own order).
    const defaults = defaultVhosts(app);
    if (defaults.length > 0) writeFileDokku(file, `${defaults.join('\n')}\n`);
    runDokku(['--quiet', 'config:set', '--no-restart', app, 'NO_VHOST=0'], { capture: true });
    await runTrigger('post-domains-update', app, 'enable');
  }
  await runTrigger('post-domains-update', app, 'set', ...domains);
};

const setGlobal: Command = async (args) => {
  const domains = args;
  if ((domains[0] ?? '') === '')
    fail('Please specify a domain name. Usage: dokku  <domain> [<domain> ...]');
  writeFileDokku(GLOBAL_VHOST, readOr(GLOBAL_VHOST));
  for (const d of domains) if (!validHostname(d)) fail(`${d} is invalid. exiting...`);
  writeFileDokku(GLOBAL_VHOST, lines(domains));
  info1(`Set ${domains.join(' ')}`);
};

export const commands: Record<string, Command> = {
  'domains:report': report,
  'domains:set': set,
  'domains:set-global': setGlobal,
};
