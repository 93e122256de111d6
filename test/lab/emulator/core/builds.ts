/** builds:list (reference §10; D plugins/builds). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BuildRecord, buildsDir } from '../deploy.js';
import {
  type Command,
  fail,
  getGlobalProperty,
  getProperty,
  listApps,
  println,
  verifyApp,
} from '../lib.js';
import { columnize, goDuration, rfc3339 } from '../report.js';

interface View extends BuildRecord {
  display_status: string;
  duration: string;
  log_path: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function fetchBuilds(app: string): View[] {
  let files: string[] = [];
  try {
    files = readdirSync(buildsDir(app)).filter((f) => f.endsWith('.json'));
  } catch {
    files = [];
  }
  const out: View[] = [];
  for (const f of files) {
    try {
      const b = JSON.parse(readFileSync(join(buildsDir(app), f), 'utf8')) as BuildRecord;
      const start = Date.parse(b.started_at);
      const end = b.finished_at !== undefined ? Date.parse(b.finished_at) : Date.now();
      out.push({
        ...b,
        display_status: b.status === 'running' && !pidAlive(b.pid) ? 'abandoned' : b.status,
        duration: goDuration((end - start) / 1000),
        log_path: join(buildsDir(app), `${b.id}.log`),
      });
    } catch {
      // unreadable records are skipped
    }
  }
  return out;
}

const byStartDesc = (a: View, b: View): number =>
  Date.parse(b.started_at) - Date.parse(a.started_at);

const list: Command = async (args) => {
  let format = 'stdout';
  let kind = '';
  let status = '';
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--format') format = args[++i] ?? '';
    else if (a === '--kind') kind = args[++i] ?? '';
    else if (a === '--status') status = args[++i] ?? '';
    else pos.push(a);
  }
  if (format === '') format = 'stdout';
  if (format !== 'stdout' && format !== 'json')
    fail('Invalid format specified, supported formats: json, stdout');
  if (kind !== '' && kind !== 'build' && kind !== 'deploy') {
    fail(`Invalid --kind value "${kind}" (allowed: build, deploy)`);
  }
  if (
    status !== '' &&
    !['running', 'succeeded', 'failed', 'canceled', 'abandoned'].includes(status)
  ) {
    fail(
      `Invalid --status value "${status}" (allowed: running, succeeded, failed, canceled, abandoned)`,
    );
  }
  const match = (v: View): boolean =>
    (kind === '' || v.kind === kind) && (status === '' || v.display_status === status);
  const app = pos[0] ?? '';
  if (app === '') {
    const views = listApps()
      .flatMap(fetchBuilds)
      .filter((v) => v.status === 'running' && match(v))
      .sort(byStartDesc);
    if (format === 'json') return println(JSON.stringify(views));
    if (views.length === 0) return println('No builds currently running');
    const rows = [['App', 'Build ID', 'Kind', 'PID', 'Source', 'Started']];
    for (const v of views)
      rows.push([v.app, v.id, v.kind, String(v.pid), v.source, rfc3339(new Date(v.started_at))]);
    println(columnize(rows));
    return;
  }
  verifyApp(app);
  let views = fetchBuilds(app).filter(match);
  const live = (v: View): boolean => v.status === 'running' && v.display_status === 'running';
  views.sort((a, b) => (live(a) !== live(b) ? (live(a) ? -1 : 1) : byStartDesc(a, b)));
  const retention =
    Number(
      getProperty('builds', app, 'retention') || getGlobalProperty('builds', 'retention') || '20',
    ) || 20;
  if (status === '' && kind === '' && views.length > retention) {
    const cap = views.filter((v) => v.display_status === 'running').length + retention;
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

export const commands: Record<string, Command> = { 'builds:list': list };
