/**
 * nginx:start, nginx:stop and the nginx-vhosts plugin's pre-restore and
 * install triggers (D plugins/nginx-vhosts at v0.38.27: command-functions,
 * pre-restore, install; v0.30.0 for the pre-restore before 0.31.0). The
 * host's nginx is the lab's `dokku --lab-proxy` process (proxy.ts), which
 * the lab starts with every host as the Debian package starts nginx;
 * `systemctl start|stop|enable|disable nginx` become starting and stopping
 * that process. The `proxy-status` property (`config/nginx/--global/`)
 * records the operator's last word, as in Dokku.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import {
  type Command,
  DokkuExit,
  EMULATOR_DIR,
  ENGINE_ROOT,
  eprintln,
  getProperty,
  listApps,
  setProperty,
  type Trigger,
  versionAtLeast,
  warn,
} from '../lib.js';
import { runningNginx } from '../proxy.js';
import { computedProxyType } from './proxy.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.setTimeout(500);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.connect(port, '127.0.0.1');
  });
}

/**
 * `systemctl start nginx`: nothing when it runs; else start the lab nginx
 * and wait until it has its port (it records itself then). false, with
 * systemctl's words, when it cannot start (port 80 taken, e.g. by caddy).
 */
async function systemctlStart(): Promise<boolean> {
  if (runningNginx() !== null) return true;
  const log = openSync(join(ENGINE_ROOT, 'lab-nginx.log'), 'a');
  const env = { ...process.env };
  delete env.SSH_ORIGINAL_COMMAND;
  delete env.DOKKU_BUILD_ID;
  const child = spawn(process.execPath, [join(EMULATOR_DIR, 'main.js'), '--lab-proxy'], {
    cwd: '/',
    env,
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  child.unref();
  const until = Date.now() + 10_000;
  while (Date.now() < until && !exited) {
    const r = runningNginx();
    if (r !== null && r.pid === child.pid && (await listening(r.port))) return true;
    await sleep(100);
  }
  eprintln(
    'Job for nginx.service failed because the control process exited with error code.\nSee "systemctl status nginx.service" and "journalctl -xeu nginx.service" for details.',
  );
  return false;
}

/** `systemctl stop nginx`: SIGTERM, wait for it to go. */
async function systemctlStop(): Promise<void> {
  const r = runningNginx();
  if (r === null) return;
  try {
    process.kill(r.pid, 'SIGTERM');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return;
    // Dokku goes through sudo; the emulator cannot stop root's nginx as the dokku user
    eprintln('Failed to stop nginx.service: Access denied');
    throw new DokkuExit(1);
  }
  const until = Date.now() + 10_000;
  while (runningNginx() !== null && Date.now() < until) await sleep(100);
  if (runningNginx() !== null) {
    try {
      process.kill(r.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/** cmd-nginx-start: proxy-status=started, enable, start. */
async function startNginx(): Promise<number> {
  setProperty('nginx', '--global', 'proxy-status', 'started');
  return (await systemctlStart()) ? 0 : 1;
}

const start: Command = async () => {
  const code = await startNginx();
  if (code !== 0) throw new DokkuExit(code);
};

const stop: Command = async () => {
  setProperty('nginx', '--global', 'proxy-status', 'stopped');
  await systemctlStop();
};

/**
 * pre-restore (run by ps:restore): start nginx again when nginx:start was
 * the last word (0.31.0+), or unless nginx:stop was (before 0.31.0).
 */
const preRestore: Trigger = async () => {
  const status = getProperty('nginx', '--global', 'proxy-status');
  if (versionAtLeast('0.31.0') ? status !== 'started' : status === 'stopped') return;
  if ((await startNginx()) !== 0) {
    warn('Failed to restore nginx proxy, requests may not route as expected');
  }
};

/**
 * install (plugin:install): unless nginx:stop was the last word, start nginx
 * when some app uses it or there is no app yet (`start || reload`).
 */
const install: Trigger = async () => {
  if (getProperty('nginx', '--global', 'proxy-status') === 'stopped') return;
  const apps = listApps();
  if (apps.length > 0 && !apps.some((a) => computedProxyType(a) === 'nginx')) return;
  if (await systemctlStart()) return;
  // `systemctl reload` of a unit that is not running
  eprintln('nginx.service is not active, cannot reload.');
  throw new DokkuExit(1);
};

/** The nginx-vhosts plugin's in-process triggers. */
export const triggers: Record<string, Trigger> = { 'pre-restore': preRestore, install };

export const commands: Record<string, Command> = {
  'nginx:start': start,
  'nginx:stop': stop,
};
