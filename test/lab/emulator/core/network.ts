/** network:* (reference §9; D plugins/network). */

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createNetwork, listNetworks } from '../engine.js';
import {
  type Command,
  DOKKU_ROOT,
  deleteProperty,
  fail,
  getGlobalProperty,
  getProperty,
  info1,
  info2,
  info2Quiet,
  println,
  readOr,
  reportCommand,
  setProperty,
  verifyApp,
} from '../lib.js';

const create: Command = async (args) => {
  const name = args[0] ?? '';
  info1(`Creating network ${name}`);
  const r = createNetwork(name);
  if (!r.ok) fail(`Unable to create network: ${r.error}`);
};

/** The fixed CreatedAt the Go code reports (functions.go:183-188). */
const CREATED_AT = '2024-02-25T01:55:24.275184461Z';

const list: Command = async (args) => {
  let format = 'text';
  let managed = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--format') format = args[++i] ?? '';
    else if (a.startsWith('--format=')) format = a.slice(9);
    else if (a === '--dokku-managed') managed = true;
  }
  let nets = listNetworks();
  if (managed) nets = nets.filter((n) => n.Labels['com.dokku.network-name'] !== undefined);
  if (format === 'json') {
    println(
      JSON.stringify(
        nets.map((n) => ({
          CreatedAt: CREATED_AT,
          DokkuManaged: n.Labels['com.dokku.network-name'] !== undefined,
          Driver: n.Driver,
          ID: n.ID.slice(0, 12),
          Internal: n.Internal,
          IPv6: n.IPv6,
          Labels: n.Labels,
          Name: n.Name,
          Scope: n.Scope,
        })),
      ),
    );
    return;
  }
  info2Quiet('Networks');
  // Go map iteration order is unspecified; shuffle so nobody relies on it
  const names = nets.map((n) => n.Name);
  for (let i = names.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [names[i], names[j]] = [names[j] ?? '', names[i] ?? ''];
  }
  for (const n of names) println(n);
};

const KEYS = [
  'attach-post-create',
  'attach-post-deploy',
  'bind-all-interfaces',
  'initial-network',
  'static-web-listener',
  'tld',
];

const set: Command = async (args) => {
  const [app, key, ...values] = args;
  if (app !== '--global') verifyApp(app);
  if (key === undefined || key === '') fail('No property specified');
  if (!KEYS.includes(key))
    fail(`Invalid property specified, valid properties include: ${KEYS.join(', ')}`);
  const value = values.join(' ');
  if (value === '') {
    info2(`Unsetting ${key}`);
    deleteProperty('network', app ?? '', key);
  } else {
    info2(`Setting ${key} to ${value}`);
    setProperty('network', app ?? '', key, value);
  }
};

function webListeners(app: string): string {
  let files: string[] = [];
  try {
    files = readdirSync(join(DOKKU_ROOT, app))
      .filter((f) => /^IP\.web\.[0-9]+$/.test(f))
      .sort();
  } catch {
    files = [];
  }
  return files
    .map(
      (f) =>
        `${readOr(join(DOKKU_ROOT, app, f))}:${readOr(join(DOKKU_ROOT, app, f.replace(/^IP/, 'PORT')))}`,
    )
    .join(' ');
}

function info(app: string, global: boolean): Record<string, string> {
  const g = (k: string): string => getGlobalProperty('network', k);
  const r: Record<string, string> = {
    '--network-computed-attach-post-create': g('attach-post-create'),
    '--network-computed-attach-post-deploy': g('attach-post-deploy'),
    '--network-computed-bind-all-interfaces': g('bind-all-interfaces') || 'false',
    '--network-computed-initial-network': g('initial-network'),
    '--network-computed-tld': g('tld'),
    '--network-global-attach-post-create': g('attach-post-create'),
    '--network-global-attach-post-deploy': g('attach-post-deploy'),
    '--network-global-bind-all-interfaces': g('bind-all-interfaces'),
    '--network-global-initial-network': g('initial-network'),
    '--network-global-tld': g('tld'),
  };
  if (global) return r;
  const p = (k: string): string => getProperty('network', app, k);
  for (const k of ['attach-post-create', 'attach-post-deploy', 'initial-network', 'tld']) {
    r[`--network-${k}`] = p(k);
    r[`--network-computed-${k}`] = p(k) || r[`--network-computed-${k}`] || '';
  }
  r['--network-bind-all-interfaces'] = p('bind-all-interfaces');
  r['--network-computed-bind-all-interfaces'] =
    p('bind-all-interfaces') || r['--network-computed-bind-all-interfaces'] || 'false';
  r['--network-static-web-listener'] = p('static-web-listener');
  r['--network-web-listeners'] = webListeners(app);
  return r;
}

const report = reportCommand('network', (s, global) => info(s, global), true);

export const commands: Record<string, Command> = {
  'network:create': create,
  'network:list': list,
  'network:set': set,
  'network:report': report,
};
