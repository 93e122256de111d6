/**
 * builds:* (reference §10; D plugins/builds at v0.38.27, new in 0.38.0):
 * list, info, output, cancel, prune, set and report over the records in
 * data/builds/<app>/<id>.json. A record left `running` by a process that is
 * gone (a crashed deploy) shows as `abandoned` (Build.DisplayStatus); prune
 * and cancel finalize it as failed with exit code -1.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type BuildRecord, buildsDir, deployLockPath, writeBuildRecord } from '../deploy.js';
import {
  type Command,
  commandPropertySet,
  fail,
  getGlobalProperty,
  getProperty,
  info1,
  listApps,
  parseFlags,
  println,
  reportCommand,
  verifyApp,
  warn,
} from '../lib.js';
import { columnize, goDuration, goTime, rfc3339 } from '../report.js';

/** A record as builds:list/info show it (listView). */
interface View extends BuildRecord {
  display_status: string;
  duration: string;
  log_path: string;
}

/** builds.go CheckPIDAlive: kill(pid, 0); EPERM counts as alive. */
function pidAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function displayStatus(b: BuildRecord): string {
  return b.status === 'running' && !pidAlive(b.pid) ? 'abandoned' : b.status;
}

function toView(b: BuildRecord): View {
  const start = Date.parse(b.started_at);
  const end = b.finished_at !== undefined ? Date.parse(b.finished_at) : Date.now();
  return {
    ...b,
    display_status: displayStatus(b),
    duration: goDuration(end < start ? 0 : (end - start) / 1000),
    log_path: join(buildsDir(b.app), `${b.id}.log`),
  };
}

function readRecord(app: string, id: string): BuildRecord | null {
  try {
    return JSON.parse(readFileSync(join(buildsDir(app), `${id}.json`), 'utf8')) as BuildRecord;
  } catch {
    return null;
  }
}

/** FetchBuilds: every readable record, newest first. */
function fetchBuilds(app: string): BuildRecord[] {
  let files: string[] = [];
  try {
    files = readdirSync(buildsDir(app)).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: BuildRecord[] = [];
  for (const f of files) {
    const b = readRecord(app, f.slice(0, -5));
    if (b === null) warn(`Skipping unreadable build record ${app}/${f}`);
    else out.push(b);
  }
  return out.sort((a, b) => Date.parse(b.started_at) - Date.parse(a.started_at));
}

/** ResolveRetention: app, then global, then 20; bad values warned about and skipped. */
function retention(app: string): number {
  const parse = (raw: string, scope: string): number | null => {
    if (raw === '') return null;
    if (!/^[+-]?[0-9]+$/.test(raw)) {
      warn(`Ignoring non-integer builds retention "${raw}" for ${scope}`);
      return null;
    }
    const n = Number(raw);
    if (n < 1) {
      warn(`Ignoring builds retention ${n} below minimum 1 for ${scope}`);
      return null;
    }
    return n;
  };
  if (app !== '' && app !== '--global') {
    const n = parse(getProperty('builds', app, 'retention'), app);
    if (n !== null) return n;
  }
  return parse(getGlobalProperty('builds', 'retention'), '--global') ?? 20;
}

const KINDS = ['build', 'deploy'];
const STATUSES = ['running', 'succeeded', 'failed', 'canceled', 'abandoned'];

const list: Command = async (argv) => {
  const f = parseFlags('builds:list', argv, {
    strings: { format: 'stdout', kind: '', status: '' },
  });
  const format = f.values.format || 'stdout';
  const kind = f.values.kind ?? '';
  const status = f.values.status ?? '';
  if (format !== 'stdout' && format !== 'json') {
    fail('Invalid format specified, supported formats: json, stdout');
  }
  if (kind !== '' && !KINDS.includes(kind)) {
    fail(`Invalid --kind value "${kind}" (allowed: build, deploy)`);
  }
  if (status !== '' && !STATUSES.includes(status)) {
    fail(
      `Invalid --status value "${status}" (allowed: running, succeeded, failed, canceled, abandoned)`,
    );
  }
  const match = (v: View): boolean =>
    (kind === '' || v.kind === kind) && (status === '' || v.display_status === status);
  const app = f.args[0] ?? '';
  if (app === '') {
    const views = listApps()
      .flatMap(fetchBuilds)
      .filter((b) => b.status === 'running')
      .map(toView)
      .filter(match)
      .sort((a, b) => Date.parse(b.started_at) - Date.parse(a.started_at));
    if (format === 'json') return println(JSON.stringify(views));
    if (views.length === 0) return println('No builds currently running');
    const rows = [['App', 'Build ID', 'Kind', 'PID', 'Source', 'Started']];
    for (const v of views)
      rows.push([v.app, v.id, v.kind, String(v.pid), v.source, rfc3339(new Date(v.started_at))]);
    println(columnize(rows));
    return;
  }
  verifyApp(app);
  let views = fetchBuilds(app).map(toView).filter(match);
  const live = (v: View): boolean => v.status === 'running' && v.display_status === 'running';
  views.sort((a, b) =>
    live(a) !== live(b) ? (live(a) ? -1 : 1) : Date.parse(b.started_at) - Date.parse(a.started_at),
  );
  const keep = retention(app);
  if (status === '' && kind === '' && views.length > keep) {
    const cap = views.filter((v) => v.display_status === 'running').length + keep;
    views = views.slice(0, cap);
  }
  if (format === 'json') return println(JSON.stringify(views));
  if (views.length === 0) return println('No builds recorded for this app');
  const rows = [['Build ID', 'Kind', 'Status', 'PID', 'Source', 'Started', 'Duration']];
  for (const v of views) {
    rows.push([
      v.id,
      v.kind,
      v.display_status,
      String(v.pid),
      v.source,
      rfc3339(new Date(v.started_at)),
      v.duration,
    ]);
  }
  println(columnize(rows));
};

/** columnize.Format with Delim "|": cells trimmed, 2-space glue, last column unpadded. */
function columnizePipes(rows: string[]): string {
  return columnize(rows.map((r) => r.split('|').map((c) => c.trim())));
}

const info: Command = async (argv) => {
  const f = parseFlags('builds:info', argv, { strings: { format: 'stdout' } });
  const format = f.values.format || 'stdout';
  if (format !== 'stdout' && format !== 'json') {
    fail('Invalid format specified, supported formats: json, stdout');
  }
  const [app = '', id = ''] = f.args;
  verifyApp(app);
  if (id === '') fail('Please specify a build id');
  const b = existsSync(join(buildsDir(app), `${id}.json`)) ? readRecord(app, id) : null;
  if (b === null) fail(`No build record found for ${app}/${id}`);
  const v = toView(b);
  if (format === 'json') return println(JSON.stringify(v));
  const rows = [
    `Build ID:|${v.id}`,
    `App:|${v.app}`,
    `Kind:|${v.kind}`,
    `Status:|${v.display_status}`,
    `PID:|${v.pid}`,
    `Source:|${v.source}`,
    `Started:|${rfc3339(new Date(v.started_at))}`,
  ];
  if (v.finished_at !== undefined) rows.push(`Finished:|${rfc3339(new Date(v.finished_at))}`);
  rows.push(`Duration:|${v.duration}`);
  if (v.exit_code !== undefined) rows.push(`Exit Code:|${v.exit_code}`);
  rows.push(`Log:|${v.log_path}`);
  println(columnizePipes(rows));
};

/** Finalize a record as builds.go does for abandoned and canceled ones: exit code -1, now. */
function finalize(b: BuildRecord, status: 'failed' | 'canceled'): void {
  writeBuildRecord({ ...b, status, finished_at: goTime(new Date()), exit_code: -1 });
}

const cancel: Command = async (argv) => {
  const f = parseFlags('builds:cancel', argv, {});
  const app = f.args[0] ?? '';
  verifyApp(app);
  const lock = deployLockPath(app);
  if (!existsSync(lock)) {
    info1('App not currently deploying');
    return;
  }
  const id = readFileSync(lock, 'utf8').trim();
  if (id === '') {
    info1('No matching app deploy found');
    return;
  }
  const b = readRecord(app, id);
  if (b === null) {
    info1(`No build record for ${id}, removing stale lock file`);
    rmSync(lock, { force: true });
    return;
  }
  if (b.status !== 'running') {
    info1(`Build ${id} is no longer running (status=${b.status}); leaving record untouched`);
    return;
  }
  if (!pidAlive(b.pid)) {
    info1('Build was already terminated, marking failed');
    finalize(b, 'failed');
    rmSync(lock, { force: true });
    return;
  }
  info1('Killing app deploy');
  try {
    process.kill(-b.pid, 'SIGQUIT');
  } catch (e) {
    warn(`Failed to signal process group ${b.pid}: ${(e as Error).message}`);
  }
  const current = readRecord(app, id);
  if (current !== null && current.status === 'running') finalize(current, 'canceled');
  rmSync(lock, { force: true });
};

const output: Command = async (argv) => {
  const f = parseFlags('builds:output', argv, {});
  const app = f.args[0] ?? '';
  let id = f.args[1] ?? '';
  verifyApp(app);
  if (id === '' || id === 'current') {
    const lock = deployLockPath(app);
    if (!existsSync(lock)) {
      info1('App not currently deploying');
      return;
    }
    id = readFileSync(lock, 'utf8').trim();
    if (id === '') {
      info1('No matching app deploy found');
      return;
    }
  }
  const log = join(buildsDir(app), `${id}.log`);
  if (!existsSync(log)) fail(`log file missing and journalctl not available for build ${id}`);
  const b = readRecord(app, id);
  const following = b !== null && b.status === 'running' && pidAlive(b.pid);
  const r = spawnSync(following ? 'tail' : 'cat', following ? ['-n', '1000', '-f', log] : [log], {
    stdio: 'inherit',
  });
  return r.status ?? 1;
};

/** PruneAppBuilds: reap abandoned records, then drop finalized ones beyond retention. */
function pruneApp(app: string): void {
  for (const b of fetchBuilds(app)) {
    if (b.status === 'running' && !pidAlive(b.pid)) finalize(b, 'failed');
  }
  const finalized = fetchBuilds(app).filter((b) => !(b.status === 'running' && pidAlive(b.pid)));
  const keep = retention(app);
  for (const b of finalized.slice(keep)) {
    rmSync(join(buildsDir(app), `${b.id}.json`), { force: true });
    rmSync(join(buildsDir(app), `${b.id}.log`), { force: true });
  }
}

const prune: Command = async (argv) => {
  const f = parseFlags('builds:prune', argv, { bools: ['all-apps'] });
  if (f.bools.has('all-apps')) {
    const apps = listApps();
    if (apps.length === 0) {
      warn("You haven't deployed any applications yet");
      return;
    }
    for (const a of apps) pruneApp(a);
    return;
  }
  const app = f.args[0] ?? '';
  verifyApp(app);
  pruneApp(app);
};

const set: Command = async (argv) => {
  const f = parseFlags('builds:set', argv, { bools: ['global'] });
  let [app = '', property = '', value = ''] = f.args;
  if (f.bools.has('global'))
    [app, property, value] = ['--global', f.args[0] ?? '', f.args[1] ?? ''];
  if (app !== '--global') verifyApp(app);
  if (property !== 'retention') fail(`Invalid property "${property}" (allowed: retention)`);
  if (value !== '') {
    if (!/^[+-]?[0-9]+$/.test(value))
      fail(`Invalid retention "${value}": must be a positive integer`);
    if (Number(value) < 1) fail(`Invalid retention ${Number(value)}: must be >= 1`);
  }
  commandPropertySet('builds', app, property, value, ['retention'], ['retention']);
};

function reportInfo(app: string, global: boolean): Record<string, string> {
  const g = getGlobalProperty('builds', 'retention');
  if (global) return { '--builds-global-retention': g };
  const b = fetchBuilds(app)[0];
  return {
    '--build-id': b?.id ?? '',
    '--build-kind': b?.kind ?? '',
    '--build-status': b === undefined ? '' : displayStatus(b),
    '--build-pid': b === undefined ? '' : String(b.pid),
    '--build-source': b?.source ?? '',
    '--build-started-at': b === undefined ? '' : rfc3339(new Date(b.started_at)),
    '--build-finished-at': b?.finished_at === undefined ? '' : rfc3339(new Date(b.finished_at)),
    '--build-exit-code': b?.exit_code === undefined ? '' : String(b.exit_code),
    '--builds-retention': getProperty('builds', app, 'retention'),
    '--builds-global-retention': g,
    '--builds-computed-retention': String(retention(app)),
  };
}

export const commands: Record<string, Command> = {
  'builds:list': list,
  'builds:info': info,
  'builds:cancel': cancel,
  'builds:output': output,
  'builds:prune': prune,
  'builds:set': set,
  'builds:report': reportCommand('builds', reportInfo, true),
};
