/**
 * The dokku-maintenance 0.10.1 plugin of the emulator (github:dokku/dokku-maintenance,
 * tag 0.10.1: `command-functions`, `internal-functions`, `config`, `install`,
 * `post-delete`, `subcommands/*`). An nginx-only plugin: `maintenance:enable
 * APP` drops an include into `$DOKKU_ROOT/APP/nginx.conf.d/maintenance.conf`
 * that answers every request but ACME challenges with the page
 * `maintenance.html` and a 503, and reloads nginx; `disable` removes it. The
 * include is the state (`fn-maintenance-enabled` tests for the file), so it
 * travels with a copy of /home/dokku, while the page itself lives outside it.
 *
 * The lab's "nginx" (proxy.ts) honours the include through
 * {@link maintenanceAnswer}; a caddy-routed app is not affected, as with Dokku.
 *
 * Deviation: the pages live in `/var/lib/docker/lab-www/dokku-maintenance`
 * (the plugin's MAINTENANCE_DATA_ROOT is `/var/www/dokku-maintenance`):
 * /var/www is one folder for every lab host, /var/lib/docker is each host's
 * own and, like /var/www, outside what a backup holds. The include's text is
 * the lab's own, with the same effect as the plugin's template.
 *
 * The module also runs as a script, for the plugin's trigger files:
 * `node plugins/maintenance.js <trigger> [args…]`.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Command,
  chownDokku,
  DOKKU_ROOT,
  DokkuExit,
  ENGINE_ROOT,
  fail,
  getProperty,
  info1,
  info2Quiet,
  listApps,
  println,
  propertyPath,
  readOr,
  type Trigger,
  verboseQuiet,
  verifyAppBash,
  warn,
} from '../lib.js';

/** Where the pages are kept (see the deviation above). */
export const MAINTENANCE_DATA_ROOT = join(ENGINE_ROOT, 'lab-www', 'dokku-maintenance');

const PREFIX = 'maintenance';

/** The include `maintenance:enable` writes. */
export function includePath(app: string): string {
  return join(DOKKU_ROOT, app, 'nginx.conf.d', 'maintenance.conf');
}

/** The lab's include: same effect as the plugin's template (ACME challenges pass, the rest gets the page). */
function includeText(root: string): string {
  return [
    '# maintenance mode: ACME challenges pass; any other request gets its file from the',
    '# page folder, else maintenance.html with status 503',
    'location ~* ^/(?!\\.well-known/acme-challenge/) {',
    `  root ${root};`,
    '  try_files $uri @ferry_lab_down;',
    '}',
    'location @ferry_lab_down {',
    `  root ${root};`,
    '  error_page 503 /maintenance.html;',
    '  return 503;',
    '}',
    '',
  ].join('\n');
}

/** The default page (the lab's own words). */
const DEFAULT_PAGE = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body><h1>Down for maintenance</h1><p>This site is being worked on and will be back shortly.</p></body>
</html>
`;

/** `fn-maintenance-enabled`: the include is there. */
export function maintenanceEnabled(app: string): boolean {
  return existsSync(includePath(app));
}

/** `fn-maintenance-fix-permissions`: 0755 folders, 0644 files. */
function fixPermissions(dir: string): void {
  const walk = (p: string): void => {
    const st = statSync(p);
    if (st.isDirectory()) {
      chmodSync(p, 0o755);
      for (const e of readdirSync(p)) walk(join(p, e));
    } else if (st.isFile()) chmodSync(p, 0o644);
  };
  walk(dir);
}

/** The app argument after the deprecated `maintenance:on/off` word and `--app`. */
function appArg(args: string[], deprecated: string, current: string): string {
  let rest = args;
  if (rest[0] === deprecated) {
    warn(`Deprecated: Please use ${current}`);
    rest = rest.slice(1);
  }
  const fromFlag = process.env.DOKKU_APP_NAME;
  if (fromFlag !== undefined && fromFlag !== '') rest = [fromFlag, ...rest];
  const app = rest[0] ?? '';
  if (app === '') fail('Please specify an app to run the command on');
  verifyAppBash(app);
  return app;
}

const enable: Command = async (args) => {
  const app = appArg(args, 'maintenance:on', 'maintenance:enable');
  if (maintenanceEnabled(app)) {
    info1('Maintenance mode already enabled');
    return;
  }
  info1(`Enabling maintenance mode for ${app}...`);
  const confD = join(DOKKU_ROOT, app, 'nginx.conf.d');
  if (!existsSync(confD)) {
    mkdirSync(confD);
    chownDokku(confD);
  }
  const pages = join(MAINTENANCE_DATA_ROOT, app);
  if (!existsSync(pages)) {
    mkdirSync(pages, { recursive: true });
    writeFileSync(join(pages, 'maintenance.html'), DEFAULT_PAGE);
    chownDokku(pages, true);
  }
  fixPermissions(pages);
  writeFileSync(includePath(app), includeText(pages));
  chownDokku(includePath(app));
  // validate_nginx && restart_nginx: the lab's nginx reads the include on every request
  verboseQuiet('Done');
};

const disable: Command = async (args) => {
  const app = appArg(args, 'maintenance:off', 'maintenance:disable');
  if (!maintenanceEnabled(app)) {
    info1('Maintenance mode already disabled');
    return;
  }
  info1(`Disabling maintenance mode for ${app}...`);
  rmSync(includePath(app), { force: true });
  verboseQuiet('Done');
};

/** `cmd-maintenance-report`: one app, every app, or `--global`; `--format json`; one `--maintenance-*` flag. */
const report: Command = async (args) => {
  let format = 'stdout';
  let global = false;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--format') {
      format = args[i + 1] ?? '';
      i++;
    } else if (a === '--global') global = true;
    else rest.push(a);
  }
  let app = rest[0] ?? '';
  let flag = rest[1] ?? '';
  if (app.startsWith('--')) {
    flag = app;
    app = '';
  }
  if (global) app = '--global';
  if (app === '' && flag === '') flag = 'true';
  const subjects = app === '' ? listApps() : [app];
  for (const s of subjects) reportOne(s, flag === 'true' ? '' : flag, format);
};

function reportOne(app: string, flag: string, format: string): void {
  if (app !== '--global') verifyAppBash(app);
  let map: [string, string][] = [['--maintenance-enabled', String(maintenanceEnabled(app))]];
  if (app !== '--global') {
    map.push([
      '--maintenance-custom-page-sha256',
      getProperty(PREFIX, app, 'custom-page-sha256').trim(),
    ]);
  } else map = map.filter(([k]) => k.includes('-global-'));
  if (format !== 'stdout' && flag !== '') {
    fail('--format flag cannot be specified when specifying an info flag');
  }
  if (format === 'json') {
    println(
      JSON.stringify(
        Object.fromEntries(map.map(([k, v]) => [k.replace(/^--maintenance-/, ''), v])),
      ),
    );
    return;
  }
  if (flag === '') {
    info2Quiet(
      app === '--global' ? 'global maintenance information' : `${app} maintenance information`,
    );
    for (const [k, v] of map) {
      const key = `${k.slice(2).replace(/-/g, ' ')}:`;
      verboseQuiet(`${(key[0]!.toUpperCase() + key.slice(1)).padEnd(30)} ${v.padEnd(25)}`);
    }
    return;
  }
  const hit = map.find(([k]) => k === flag);
  if (hit === undefined) {
    fail(`Invalid flag passed, valid flags:${map.map(([k]) => ` ${k}`).join('')}`);
  }
  if (hit[1] === '') fail('not deployed');
  println(hit[1]);
}

export const commands: Record<string, Command> = {
  'maintenance:enable': enable,
  'maintenance:on': (args) => enable(['maintenance:on', ...args]),
  'maintenance:disable': disable,
  'maintenance:off': (args) => disable(['maintenance:off', ...args]),
  'maintenance:report': report,
};

/**
 * What the lab's nginx answers for `app` at `url` while the include is there
 * (null: maintenance is off, or an ACME challenge, which passes): a file
 * under the page folder with 200, else maintenance.html with 503.
 */
export function maintenanceAnswer(
  app: string,
  url: string,
): { status: number; body: Buffer; type: string } | null {
  const conf = readOr(includePath(app), '');
  if (conf === '') return null;
  const path = decodeURIComponent((url.split('?')[0] ?? '/').replace(/\+/g, ' '));
  if (/^\/\.well-known\/acme-challenge/i.test(path)) return null;
  const root = /^\s*root\s+([^;]+);/m.exec(conf)?.[1]?.trim() ?? '';
  const file = resolve(root, `.${normalize(path)}`);
  const type = (p: string) => (p.endsWith('.html') ? 'text/html' : 'application/octet-stream');
  if (root !== '' && file.startsWith(`${root}/`) && isFile(file)) {
    return { status: 200, body: readFileSync(file), type: type(file) };
  }
  const page = join(root, 'maintenance.html');
  if (root !== '' && isFile(page))
    return { status: 503, body: readFileSync(page), type: 'text/html' };
  // nginx: the rewrite finds no file
  return { status: 404, body: Buffer.from('404 Not Found\n'), type: 'text/html' };
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- triggers

/**
 * `install`: the page root (owned by dokku, 0755) and the property store; a
 * custom page kept before its checksum was recorded gets one (the plugin's
 * issue #26 backfill). The issue #19 move from /home/dokku/APP/maintenance is
 * not emulated (no lab host had the old layout).
 */
const installTrigger: Trigger = async () => {
  mkdirSync(MAINTENANCE_DATA_ROOT, { recursive: true });
  chownDokku(MAINTENANCE_DATA_ROOT);
  chmodSync(MAINTENANCE_DATA_ROOT, 0o755);
  for (const app of listApps()) {
    const dir = join(MAINTENANCE_DATA_ROOT, app);
    const page = join(dir, 'maintenance.html');
    if (getProperty(PREFIX, app, 'custom-page-sha256') !== '' || !isFile(page)) continue;
    const files = readdirSync(dir);
    if (files.length <= 1 && readFileSync(page, 'utf8') === DEFAULT_PAGE) continue;
    const sum = createHash('sha256')
      .update(
        files
          .sort()
          .map(
            (f) =>
              `${createHash('sha256')
                .update(readFileSync(join(dir, f)))
                .digest('hex')}  ${f}\n`,
          )
          .join(''),
      )
      .digest('hex');
    mkdirSync(join(propertyPath(PREFIX, app, 'x'), '..'), { recursive: true });
    writeFileSync(propertyPath(PREFIX, app, 'custom-page-sha256'), sum);
    chownDokku(join(propertyPath(PREFIX, app, 'x'), '..', '..'), true);
  }
};

/** `post-delete APP`: the app's properties and page go. */
const postDeleteTrigger: Trigger = async (args) => {
  const app = args[0] ?? '';
  if (app === '') return;
  rmSync(join(propertyPath(PREFIX, app, 'x'), '..'), { recursive: true, force: true });
  rmSync(join(MAINTENANCE_DATA_ROOT, app), { recursive: true, force: true });
};

export const triggers: Record<string, Trigger> = {
  install: installTrigger,
  'post-delete': postDeleteTrigger,
};

// ---------------------------------------------------------------- script entry

function isMainModule(): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(resolve(argv1)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  const [name, ...rest] = process.argv.slice(2);
  const handler = name === undefined ? undefined : triggers[name];
  (handler ? handler(rest) : Promise.resolve(0)).then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (e: unknown) => {
      process.exitCode = e instanceof DokkuExit ? e.code : 1;
      if (!(e instanceof DokkuExit)) process.stderr.write(`${String(e)}\n`);
    },
  );
}
