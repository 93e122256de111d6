/**
 * proxy:report (D plugins/proxy/report.go). Keys by release:
 * - before 0.33.0: enabled (DOKKU_DISABLE_PROXY unset), type
 *   (DOKKU_APP_PROXY_TYPE, default nginx), port-map (DOKKU_PROXY_PORT_MAP);
 * - 0.33.0-0.37: enabled, type (no default), global-type (DOKKU_PROXY_TYPE,
 *   default nginx) and computed-type, which prefers the global type;
 * - 0.38: properties (type, disabled, proxy-port, proxy-ssl-port), with their
 *   global and computed forms and a `--global` report.
 * Only the report: the lab's "nginx" is `dokku --lab-proxy`.
 */
import {
  appEnvPath,
  type Command,
  getGlobalProperty,
  getProperty,
  globalEnvPath,
  readEnv,
  reportCommand,
  versionAtLeast,
} from '../lib.js';

function legacyInfo(app: string): Record<string, string> {
  const env = readEnv(appEnvPath(app));
  const enabled = (env.get('DOKKU_DISABLE_PROXY') ?? '') === '' ? 'true' : 'false';
  if (!versionAtLeast('0.33.0')) {
    const maps = (env.get('DOKKU_PROXY_PORT_MAP') ?? '')
      .split(/\s+/)
      .filter((m) => /^[a-z]+:[0-9]+:[0-9]+$/.test(m));
    return {
      '--proxy-enabled': enabled,
      '--proxy-type': env.get('DOKKU_APP_PROXY_TYPE') || 'nginx',
      '--proxy-port-map': maps.join(' '),
    };
  }
  const globalType = readEnv(globalEnvPath()).get('DOKKU_PROXY_TYPE') ?? 'nginx';
  const type = env.get('DOKKU_APP_PROXY_TYPE') ?? '';
  return {
    '--proxy-enabled': enabled,
    '--proxy-computed-type': globalType || type,
    '--proxy-global-type': globalType,
    '--proxy-type': type,
  };
}

function info(app: string, global: boolean): Record<string, string> {
  if (!versionAtLeast('0.38.0')) return legacyInfo(app);
  const g = (k: string): string => getGlobalProperty('proxy', k);
  const r: Record<string, string> = {
    '--proxy-computed-proxy-port': g('proxy-port'),
    '--proxy-computed-proxy-ssl-port': g('proxy-ssl-port'),
    '--proxy-computed-type': g('type') || 'nginx',
    '--proxy-global-proxy-port': g('proxy-port'),
    '--proxy-global-proxy-ssl-port': g('proxy-ssl-port'),
    '--proxy-global-type': g('type'),
  };
  if (global) return r;
  const p = (k: string): string => getProperty('proxy', app, k);
  return {
    ...r,
    '--proxy-computed-disabled': p('disabled') || 'false',
    '--proxy-computed-proxy-port': p('proxy-port') || g('proxy-port'),
    '--proxy-computed-proxy-ssl-port': p('proxy-ssl-port') || g('proxy-ssl-port'),
    '--proxy-computed-type': p('type') || g('type') || 'nginx',
    '--proxy-disabled': p('disabled'),
    '--proxy-enabled': p('disabled') === 'true' ? 'false' : 'true',
    '--proxy-proxy-port': p('proxy-port'),
    '--proxy-proxy-ssl-port': p('proxy-ssl-port'),
    '--proxy-type': p('type'),
  };
}

export const commands: Record<string, Command> = {
  'proxy:report': reportCommand('proxy', info, true),
};
