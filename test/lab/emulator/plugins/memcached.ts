/**
 * The dokku-memcached 1.37.4 plugin of the emulator, on a REAL memcached per
 * service (Debian's memcached; lab.json `memcachedBin`, `memcachedVersion`).
 * Read at dokku/dokku-memcached tag 1.37.4: `config` (its
 * PLUGIN_UNIMPLEMENTED_SUBCOMMANDS), `functions` (service_create with its
 * default SERVICE_MEMORY of 64, service_create_container's
 * `memcached -m $SERVICE_MEMORY $CONFIG_OPTIONS`, service_export and
 * service_import that only fail, service_connect's telnet) and the shared
 * parts in service.ts.
 *
 * export, import and the backup subcommands answer " !     Not yet
 * implemented" and exit 1 before looking at their arguments, as the
 * plugin's subcommands do through is_implemented_command.
 *
 * The module also runs as a script, for the plugin's trigger files:
 * `node plugins/memcached.js <trigger> [args…]`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, eprintln, PLUGIN_PATH, type Trigger, userIds } from '../lib.js';
import {
  appendLog,
  HELPER_IMAGES,
  labBinary,
  launchServer,
  readEnvFile,
  readTrim,
  runTriggerScript,
  type ServiceContainer,
  ServicePlugin,
  spawnInherit,
  tcpOpen,
} from './service.js';

/** A memcached service container: the record plus the server binary it runs. */
interface MemcachedContainer extends ServiceContainer {
  bin: string;
  memory: string;
  env: Record<string, string>;
}

/** memcached as the image's `memcache` user, on 127.0.0.1 and the container's host port. */
async function startServer(
  p: ServicePlugin<MemcachedContainer>,
  c: MemcachedContainer,
): Promise<boolean> {
  if (process.getuid?.() !== 0) {
    appendLog(
      c,
      'permission denied while trying to connect to the docker API: the lab runs memcached only for root\n',
    );
    return false;
  }
  if (userIds('memcache') === null || !existsSync(c.bin)) {
    appendLog(c, `exec memcached: no memcached for ${c.image} on this machine (${c.bin})\n`);
    return false;
  }
  const pid = await launchServer(
    c,
    {
      user: 'memcache',
      argv: [
        c.bin,
        '-m',
        c.memory,
        ...c.configOptions.split(/\s+/).filter((w) => w !== ''),
        '-p',
        String(c.port),
        '-l',
        '127.0.0.1',
        '-U',
        '0',
      ],
      cwd: '/',
      env: c.env,
    },
    async () => tcpOpen(c.port),
  );
  if (pid === 0) return false;
  p.markRunning(c, pid);
  return true;
}

/** dokku-memcached 1.37.4 (config, functions). */
export const memcached = new ServicePlugin<MemcachedContainer>({
  prefix: 'memcached',
  label: 'Memcached',
  variable: 'MEMCACHED',
  port: 11211,
  defaultAlias: 'MEMCACHED',
  altAlias: 'DOKKU_MEMCACHED',
  scheme: 'memcached',
  configSuffix: 'config',
  unimplemented: [
    'backup',
    'backup-auth',
    'backup-deauth',
    'backup-schedule',
    'backup-schedule-cat',
    'backup-set-encryption',
    'backup-unschedule',
    'backup-unset-encryption',
    'clone',
    'export',
    'import',
  ],
  firstHostPort: 21211,
  stopSignal: 'SIGTERM',
  helperImages: HELPER_IMAGES,
  defaultMemory: '64',
  fallbackImage: () => ({ image: 'memcached', version: '1.6.42' }),
  url: (p, svc, scheme) => `${scheme}://${p.dnsHostname(svc)}:11211`,
  writeCreateFiles: () => {},
  canCreate: () => true,
  createContainer: async (p, svc) => {
    const root = p.serviceRoot(svc);
    const memory = readTrim(join(root, 'SERVICE_MEMORY')) || '64';
    const c = await p.createRecord(svc, (base) => ({
      ...base,
      cmd: `memcached -m ${memory} ${base.configOptions}`.trim(),
      bin: labBinary('memcachedBin') || '/usr/bin/memcached',
      memory,
      env: readEnvFile(join(root, 'ENV')),
    }));
    return p.startAndWait(svc, c);
  },
  startServer,
  connectService: async (p, svc) => {
    // service_connect: `telnet "$IP" 11211`; the lab's address of the server is 127.0.0.1:<port>
    const c = p.execTarget(svc);
    if (spawnSync('sh', ['-c', 'command -v telnet'], { stdio: 'ignore' }).status !== 0) {
      eprintln(
        `${join(PLUGIN_PATH, 'available', 'memcached', 'functions')}: line 19: telnet: command not found`,
      );
      return 127;
    }
    return spawnInherit('telnet', ['127.0.0.1', String(c.port)], process.env, 'inherit');
  },
});

/** The subcommands main.ts dispatches to (only when the plugin is enabled). */
export const commands: Record<string, Command> = memcached.commands();

/** Triggers, run by the plugin's trigger files (or in-process by lib.runTrigger). */
export const triggers: Record<string, Trigger> = memcached.triggers();

runTriggerScript(import.meta.url, triggers);
