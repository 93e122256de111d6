/** domains:report (D plugins/domains/report.go), read from the VHOST files. */
import { join } from 'node:path';
import {
  appEnvPath,
  type Command,
  DOKKU_ROOT,
  fail,
  isQuiet,
  listApps,
  readEnv,
  readOr,
  verifyApp,
  warn,
} from '../lib.js';
import { parseReportArgs, renderReport } from '../report.js';

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

const report: Command = async (args) => {
  const r = parseReportArgs(args);
  const subjects = r.global ? ['--global'] : r.app !== '' ? [r.app] : listApps();
  if (subjects.length === 0) {
    warn("You haven't deployed any applications yet");
    return;
  }
  for (const s of subjects) {
    if (s !== '--global') verifyApp(s);
    const out = renderReport('domains', s, info(s), r.flags, r.format, isQuiet(), false);
    if (!out.ok) fail(out.error);
    process.stdout.write(out.text);
  }
};

export const commands: Record<string, Command> = { 'domains:report': report };
