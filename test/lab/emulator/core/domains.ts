/**
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
  isQuiet,
  listApps,
  println,
  readEnv,
  readOr,
  reportCommand,
  verifyAppBash,
  versionAtLeast,
  warn,
} from '../lib.js';

const normalize = (s: string): string =>
  s
    .split(/\s+/)
    .filter((w) => w !== '')
    .join(' ');

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

export const commands: Record<string, Command> = { 'domains:report': report };
