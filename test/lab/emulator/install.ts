/**
 * `dokku --lab-install VERSION`: what the Debian package's postinst leaves on a
 * host (core plugins, sshcommand, VHOST, STABLE_VERSION), plus the config
 * plugin's install trigger (the 0.38 ENV migration). Idempotent.
 */
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  chownDokku,
  DOKKU_LIB_ROOT,
  DOKKU_ROOT,
  ENGINE_ROOT,
  fail,
  getProperty,
  labConfig,
  listApps,
  mkdirDokku,
  PLUGIN_PATH,
  readEnv,
  setProperty,
  versionAtLeast,
  warn,
  writeEnv,
  writeFileDokku,
} from './lib.js';

/** Core plugins of Dokku 0.38 (plugins/ in the source tree). */
export const CORE_PLUGINS = [
  '00_dokku-standard',
  '20_events',
  'app-json',
  'apps',
  'builder',
  'builder-dockerfile',
  'builder-herokuish',
  'builder-lambda',
  'builder-nixpacks',
  'builder-null',
  'builder-pack',
  'builder-railpack',
  'builds',
  'buildpacks',
  'caddy-vhosts',
  'certs',
  'checks',
  'common',
  'config',
  'cron',
  'docker-options',
  'domains',
  'enter',
  'git',
  'haproxy-vhosts',
  'logs',
  'network',
  'nginx-vhosts',
  'openresty-vhosts',
  'plugin',
  'proxy',
  'ps',
  'registry',
  'repo',
  'resource',
  'run',
  'scheduler',
  'scheduler-docker-local',
  'scheduler-k3s',
  'scheduler-null',
  'shell',
  'ssh-keys',
  'storage',
  'traefik-vhosts',
  'trace',
];

function pluginToml(name: string, version: string): string {
  // the builds plugin really ships its own version (plugins/builds/plugin.toml)
  const v = name === 'builds' ? '0.34.0' : version;
  const what = name === '00_dokku-standard' ? 'standard' : name;
  return `[plugin]\ndescription = "dokku core ${what} plugin"\nversion = "${v}"\n[plugin.config]\n`;
}

function ensureSymlink(target: string, path: string): void {
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink() && readlinkSync(path) === target) return;
    rmSync(path, { recursive: true, force: true });
  } catch {
    // does not exist yet
  }
  symlinkSync(target, path);
}

function migrateOne(name: string, oldFile: string, newFile: string): void {
  const migrated = getProperty('config', name, 'env-migrated') === 'true';
  if (!existsSync(oldFile)) {
    if (!migrated) setProperty('config', name, 'env-migrated', 'true');
    return;
  }
  const env = readEnv(newFile);
  if (!versionAtLeast('0.38.26')) {
    // 0.38.0-0.38.25: merged at install, the old file stays
    if (!migrated) {
      for (const [k, v] of readEnv(oldFile)) env.set(k, v);
      writeEnv(newFile, env);
      setProperty('config', name, 'env-migrated', 'true');
    }
    return;
  }
  if (migrated && versionAtLeast('0.38.27')) {
    const stale = readEnv(oldFile);
    const diverged = [...stale.keys()].filter((k) => env.get(k) !== stale.get(k));
    if (diverged.length === 0) {
      rmSync(oldFile, { force: true });
      return;
    }
    const preserved = `${oldFile}.migrated`;
    warn(
      `Not importing already-migrated ENV file ${oldFile}: the current config takes precedence for ${diverged.join(' ')}`,
    );
    warn(
      `Preserved at ${preserved}: re-apply anything still needed with dokku config:set, then delete it - dokku does not read it and it may hold values that were unset on purpose`,
    );
    renameSync(oldFile, preserved);
    return;
  }
  for (const [k, v] of readEnv(oldFile)) env.set(k, v);
  writeEnv(newFile, env);
  setProperty('config', name, 'env-migrated', 'true');
  rmSync(oldFile, { force: true });
}

/** The config plugin's install trigger: move ≤0.37 ENV files to config/<app>/ENV (0.38+). */
export function migrateEnvFiles(): void {
  if (!versionAtLeast('0.38.0')) return;
  mkdirDokku(join(DOKKU_LIB_ROOT, 'config', '--global'));
  migrateOne(
    '--global',
    join(DOKKU_ROOT, 'ENV'),
    join(DOKKU_LIB_ROOT, 'config', '--global', 'ENV'),
  );
  for (const app of listApps()) {
    mkdirDokku(join(DOKKU_LIB_ROOT, 'config', app));
    migrateOne(app, join(DOKKU_ROOT, app, 'ENV'), join(DOKKU_LIB_ROOT, 'config', app, 'ENV'));
  }
}

/** Run the emulated package install for `version`. */
export function labInstall(version: string): number {
  if (process.getuid?.() !== 0) fail('This command must be run as root');
  if (!/^[0-9]+\.[0-9]+\.[0-9]+$/.test(version)) fail('Usage: dokku --lab-install X.Y.Z');
  const cfg = labConfig();
  mkdirDokku(DOKKU_ROOT);
  mkdirDokku(DOKKU_LIB_ROOT);
  writeFileDokku(join(DOKKU_LIB_ROOT, 'STABLE_VERSION'), `${version}\n`, 0o644);
  for (const d of [
    'config',
    'data',
    'services',
    'core-plugins/available',
    'core-plugins/enabled',
  ]) {
    mkdirDokku(join(DOKKU_LIB_ROOT, d));
  }
  mkdirDokku(join(PLUGIN_PATH, 'available'));
  mkdirDokku(join(PLUGIN_PATH, 'enabled'));
  for (const p of CORE_PLUGINS) {
    const core = join(DOKKU_LIB_ROOT, 'core-plugins', 'available', p);
    mkdirDokku(core);
    writeFileDokku(join(core, 'plugin.toml'), pluginToml(p, version), 0o644);
    ensureSymlink(core, join(DOKKU_LIB_ROOT, 'core-plugins', 'enabled', p));
    ensureSymlink(core, join(PLUGIN_PATH, 'available', p));
    ensureSymlink(join(PLUGIN_PATH, 'available', p), join(PLUGIN_PATH, 'enabled', p));
  }
  writeFileDokku(join(DOKKU_ROOT, '.sshcommand'), '/usr/bin/dokku\n', 0o644);
  if (!existsSync(join(DOKKU_ROOT, 'VHOST'))) {
    writeFileDokku(join(DOKKU_ROOT, 'VHOST'), `${cfg.host}.lab\n`, 0o644);
  }
  const ssh = join(DOKKU_ROOT, '.ssh');
  mkdirDokku(ssh, 0o700);
  // the engine is reached by the dokku user (through dockerd in real life), so the
  // dokku user must be able to traverse /var/lib/docker and own the engine's folders
  chmodSync(ENGINE_ROOT, 0o711);
  for (const d of ['image', 'containers', 'networks', 'contexts', 'tmp']) {
    const p = join(ENGINE_ROOT, d);
    mkdirSync(p, { recursive: true });
    chmodSync(p, 0o755);
    chownDokku(p);
  }
  migrateEnvFiles();
  return 0;
}
