/** network:* (reference §9; D plugins/network). */

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createNetwork, listNetworks, removeNetwork } from '../engine.js';
import {
  type Command,
  commandPropertySet,
  DOKKU_ROOT,
  fail,
  getGlobalProperty,
  getProperty,
  info1Quiet,
  info2Quiet,
  println,
  readOr,
  reportCommand,
  verifyApp,
  versionAtLeast,
} from '../lib.js';
import { byteCompare } from '../report.js';
import { confirmDestructive, unknownFlag } from './apps.js';

/** network:create: docker's own error, prefixed "Unable to create network: " since 0.33.7. */
const create: Command = async (args) => {
  const name = args[0] ?? '';
  info1Quiet(`Creating network ${name}`);
  const r = createNetwork(name);
  if (!r.ok) fail(versionAtLeast('0.33.7') ? `Unable to create network: ${r.error}` : r.error);
};

/** The fixed CreatedAt the Go code reports (functions.go:183-188). */
const CREATED_AT = '2024-02-25T01:55:24.275184461Z';

/**
 * network:list. Before 0.35.3 the names of `docker network list --format
 * {{ .Name }}` (docker sorts them) and no flags; since, Go map order over
 * `docker network ls --format json` (unspecified: shuffled here), with
 * `--format json`; `DokkuManaged` and `--dokku-managed` since 0.38.22.
 */
const list: Command = async (args) => {
  let format = 'text';
  let managed = false;
  const withJson = versionAtLeast('0.35.3');
  const withManaged = versionAtLeast('0.38.22');
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (!withJson) continue;
    if (a === '--format') format = args[++i] ?? '';
    else if (a.startsWith('--format=')) format = a.slice(9);
    else if (a === '--dokku-managed' && withManaged) managed = true;
    else if (a.startsWith('-')) unknownFlag('network:list', a);
  }
  let nets = listNetworks();
  if (managed) nets = nets.filter((n) => n.Labels['com.dokku.network-name'] !== undefined);
  if (format === 'json') {
    println(
      JSON.stringify(
        nets.map((n) => ({
          CreatedAt: CREATED_AT,
          ...(withManaged
            ? { DokkuManaged: n.Labels['com.dokku.network-name'] !== undefined }
            : {}),
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
  const names = nets.map((n) => n.Name);
  if (!withJson) {
    for (const n of names.sort(byteCompare)) println(n);
    return;
  }
  // Go map iteration order is unspecified; shuffle so nobody relies on it
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

/**
 * network:set (subcommands.go CommandSet): attach-post-create/deploy refuse
 * host and bridge and a network the app already attaches in the other phase;
 * several values are joined with "," (0.31.0+); before 0.38.8 an empty
 * bind-all-interfaces means "false". Whether a network exists is not checked.
 */
const set: Command = async (args) => {
  let global = false;
  const pos: string[] = [];
  for (const a of args) {
    if (a === '--global') global = true;
    else pos.push(a);
  }
  const words = global ? ['--global', ...pos] : pos;
  const app = words[0] ?? '';
  const key = words[1] ?? '';
  const values = words.slice(2);
  if (app !== '--global') verifyApp(app);
  let value = values[0] ?? '';
  if (key === 'bind-all-interfaces' && value === '' && !versionAtLeast('0.38.8')) value = 'false';
  if (key === 'attach-post-create' || key === 'attach-post-deploy') {
    const list = versionAtLeast('0.31.0') ? values : [value];
    const other = key === 'attach-post-create' ? 'attach-post-deploy' : 'attach-post-create';
    for (const n of list) {
      if (n === 'host' || n === 'bridge') {
        fail(
          versionAtLeast('0.31.0')
            ? `Invalid network name specified for attach: ${n}`
            : 'Invalid network name specified for attach',
        );
      }
      // functions.go isConflictingPropertyValue: the other phase's computed value, as a whole
      const otherValue = getProperty('network', app, other) || getGlobalProperty('network', other);
      if (n !== '' && n === otherValue) {
        fail(
          versionAtLeast('0.31.0')
            ? `Network name already associated with this app: ${n}`
            : 'Network name already associated with this app',
        );
      }
    }
    if (versionAtLeast('0.31.0')) value = list.join(',');
  }
  commandPropertySet('network', app, key, value, KEYS, [
    'attach-post-create',
    'attach-post-deploy',
    'bind-all-interfaces',
    'initial-network',
    'tld',
  ]);
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

/** network:report keys (report.go); before 0.38.8 the global bind-all-interfaces defaults to "false". */
function info(app: string, global: boolean): Record<string, string> {
  const g = (k: string): string => getGlobalProperty('network', k);
  const oldDefaults = !versionAtLeast('0.38.8');
  const globalBind = g('bind-all-interfaces') || (oldDefaults ? 'false' : '');
  const r: Record<string, string> = {
    '--network-computed-attach-post-create': g('attach-post-create'),
    '--network-computed-attach-post-deploy': g('attach-post-deploy'),
    '--network-computed-bind-all-interfaces': globalBind || 'false',
    '--network-computed-initial-network': g('initial-network'),
    '--network-computed-tld': g('tld'),
    '--network-global-attach-post-create': g('attach-post-create'),
    '--network-global-attach-post-deploy': g('attach-post-deploy'),
    '--network-global-bind-all-interfaces': globalBind,
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
    p('bind-all-interfaces') || globalBind || (oldDefaults ? '' : 'false');
  r['--network-static-web-listener'] = p('static-web-listener');
  r['--network-web-listeners'] = webListeners(app);
  return r;
}

const report = reportCommand('network', (s, global) => info(s, global), true);

/** network:exists: "Network exists" (quiet-able), else "Network does not exist" (1). */
const exists: Command = async (args) => {
  const name = args.find((a) => !a.startsWith('-')) ?? '';
  if (name === '') fail('No network name specified');
  if (!listNetworks().some((n) => n.Name === name)) fail('Network does not exist');
  info1Quiet('Network exists');
};

/** network:destroy [--force] NAME: asks first unless forced; docker's error as "Unable to destroy network: ...". */
const destroy: Command = async (args) => {
  const force = args.includes('--force') || process.env.DOKKU_APPS_FORCE_DELETE === '1';
  const name = args.find((a) => !a.startsWith('-')) ?? '';
  if (!force) confirmDestructive(name, 'network');
  info1Quiet(`Destroying network ${name}`);
  const r = removeNetwork(name);
  if (!r.ok) fail(versionAtLeast('0.33.7') ? `Unable to destroy network: ${r.error}` : r.error);
};

/** network:info NAME [--format text|json] (0.35.3+ with the json form). */
const infoCmd: Command = async (args) => {
  let format = 'text';
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--format') format = args[++i] ?? '';
    else if (a.startsWith('--format=')) format = a.slice(9);
    else pos.push(a);
  }
  const name = pos[0] ?? '';
  if (name === '') fail('No network name specified');
  if (format !== 'json' && format !== 'text')
    fail('Invalid format specified, use either text or json');
  const n = listNetworks().find((x) => x.Name === name);
  if (n === undefined) fail('Network does not exist');
  const managed = n.Labels['com.dokku.network-name'] !== undefined;
  if (format === 'json') {
    println(
      JSON.stringify({
        CreatedAt: CREATED_AT,
        ...(versionAtLeast('0.38.22') ? { DokkuManaged: managed } : {}),
        Driver: n.Driver,
        ID: n.ID.slice(0, 12),
        Internal: n.Internal,
        IPv6: n.IPv6,
        Labels: n.Labels,
        Name: n.Name,
        Scope: n.Scope,
      }),
    );
    return;
  }
  info2Quiet(`${name} network information`);
  const row = (k: string, v: string): void => println(`       ${k.padEnd(16)}${v}`);
  row('ID:', n.ID.slice(0, 12));
  row('Name:', n.Name);
  row('Driver:', n.Driver);
  row('Scope:', n.Scope);
  if (versionAtLeast('0.38.22')) row('Dokku managed:', String(managed));
};

export const commands: Record<string, Command> = {
  'network:exists': exists,
  'network:destroy': destroy,
  'network:info': infoCmd,
  'network:create': create,
  'network:list': list,
  'network:set': set,
  'network:report': report,
};
