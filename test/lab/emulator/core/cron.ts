/**
 * cron:set (D plugins/cron/src/subcommands/subcommands.go `set`,
 * subcommands.go `CommandSet`, set.go, cron.go `DefaultProperties`,
 * crontab.go `writeCronTab`/`deleteCrontab`, common/properties.go
 * `CommandPropertySet`; v0.38.27, history from v0.34.0 and v0.36.0).
 *
 * The emulator reads no app.json, so no app has cron tasks and no plugin
 * injects any (`cron-entries`): the `scheduler-cron-write` that follows a
 * set regenerates an empty schedule, which Dokku writes as "no crontab"
 * (`crontab -r -u dokku` when one exists, then `-----> Removed`).
 */
import { spawnSync } from 'node:child_process';
import {
  type Command,
  deleteProperty,
  fail,
  info1,
  info2Quiet,
  setProperty,
  verifyApp,
  versionAtLeast,
} from '../lib.js';

/** Properties per release: mailto from 0.34.0 (cron:set is new there), mailfrom and maintenance from 0.36.0. */
function globalProperties(): string[] {
  return versionAtLeast('0.36.0') ? ['mailfrom', 'mailto', 'maintenance'] : ['mailto'];
}

/** crontab.go `deleteCrontab`: removes the dokku user's crontab when it has one. */
function deleteCrontab(): void {
  const list = spawnSync('crontab', ['-l', '-u', 'dokku'], { stdio: 'ignore' });
  if (list.error || list.status !== 0) return;
  const r = spawnSync('crontab', ['-r', '-u', 'dokku'], { encoding: 'utf8' });
  if (r.status !== 0) fail(`Unable to remove schedule file: ${r.stderr ?? ''}`);
  info1('Removed');
}

const set: Command = async (args) => {
  // pflag: --global anywhere; positionals in order.
  const global = args.includes('--global');
  const pos = args.filter((a) => a !== '--global');
  const app = global ? '--global' : (pos[0] ?? '');
  const property = (global ? pos[0] : pos[1]) ?? '';
  const value = (global ? pos[1] : pos[2]) ?? '';
  if (versionAtLeast('0.36.0') && (property === 'mailfrom' || property === 'mailto') && !global)
    fail('Property cannot be specified on a per-app basis');
  const globals = globalProperties();
  if (property.startsWith('maintenance.') && versionAtLeast('0.36.0')) {
    if (global) fail('Task maintenance properties cannot be set globally');
    if (property === 'maintenance.') fail('Invalid task maintenance property, missing ID');
    // No app.json here, so no task has this ID.
    fail(`Invalid task maintenance property, no matching task ID found: ${property}`);
  }
  if (!global) verifyApp(app);
  if (global && !globals.includes(property)) fail('Property cannot be specified globally');
  if (property === '') fail('No property specified');
  if (!globals.includes(property))
    fail(`Invalid property specified, valid properties include: ${globals.join(', ')}`);
  if (value !== '') {
    info2Quiet(`Setting ${property} to ${value}`);
    setProperty('cron', app, property, value);
  } else {
    info2Quiet(`Unsetting ${property}`);
    deleteProperty('cron', app, property);
  }
  deleteCrontab();
};

export const commands: Record<string, Command> = { 'cron:set': set };
