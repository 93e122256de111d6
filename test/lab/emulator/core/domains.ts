/**
 * domains:report (D plugins/domains/report.go), read from the VHOST files, and
 * domains:set / domains:set-global (D plugins/domains/subcommands/set,
 * set-global and functions `domains_set`, `domains_set_global`,
 * `domains_enable`, `get_default_vhosts`, `is_valid_hostname`, v0.38.27).
 */
import { join } from 'node:path';
import {
  appEnvPath,
  type Command,
  DOKKU_ROOT,
  fail,
  info1,
  readEnv,
  readOr,
  reportCommand,
  runDokku,
  runTrigger,
  verifyAppBash,
  writeFileDokku,
} from '../lib.js';

const normalize = (s: string): string =>
  s
    .split(/\s+/)
    .filter((w) => w !== '')
    .join(' ');

const GLOBAL_VHOST = join(DOKKU_ROOT, 'VHOST');

function info(app: string): Record<string, string> {
  const global = readOr(GLOBAL_VHOST);
  const globalEnabled = global
    .split('\n')
    .some((l) => /^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.?)+$|^_$/.test(l.toLowerCase()));
  const r: Record<string, string> = {
    '--domains-global-enabled': globalEnabled ? 'true' : 'false',
    '--domains-global-vhosts': globalEnabled ? normalize(global) : '',
  };
  if (app === '--global') return r;
  r['--domains-app-enabled'] = readEnv(appEnvPath(app)).get('NO_VHOST') === '1' ? 'false' : 'true';
  r['--domains-app-vhosts'] = normalize(readOr(join(DOKKU_ROOT, app, 'VHOST')));
  return r;
}

const report = reportCommand('domains', (s) => info(s), false);

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
