/** domains:report (D plugins/domains/report.go), read from the VHOST files. */
import { join } from 'node:path';
import { appEnvPath, type Command, DOKKU_ROOT, readEnv, readOr, reportCommand } from '../lib.js';

const normalize = (s: string): string =>
  s
    .split(/\s+/)
    .filter((w) => w !== '')
    .join(' ');

function info(app: string): Record<string, string> {
  const global = readOr(join(DOKKU_ROOT, 'VHOST'));
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

export const commands: Record<string, Command> = { 'domains:report': report };
