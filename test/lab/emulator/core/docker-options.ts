/**
 * docker-options:add / :report, minimal (the postgres plugin's link uses add).
 * 0.38: property lists config/docker-options/<app>/_default_.<phase>;
 * ≤0.37: $DOKKU_ROOT/<app>/DOCKER_OPTIONS_<PHASE>.
 */
import { join } from 'node:path';
import {
  type Command,
  DOKKU_LIB_ROOT,
  DOKKU_ROOT,
  fail,
  isQuiet,
  listApps,
  readOr,
  verifyApp,
  versionAtLeast,
  warn,
  writeFileDokku,
} from '../lib.js';
import { renderReport } from '../report.js';

const PHASES = ['build', 'deploy', 'run'];

function optionsFile(app: string, phase: string): string {
  return versionAtLeast('0.38.0')
    ? join(DOKKU_LIB_ROOT, 'config', 'docker-options', app, `_default_.${phase}`)
    : join(DOKKU_ROOT, app, `DOCKER_OPTIONS_${phase.toUpperCase()}`);
}

/** Options of an app for one phase. */
export function dockerOptions(app: string, phase: string): string[] {
  return readOr(optionsFile(app, phase))
    .split('\n')
    .filter((l) => l.trim() !== '');
}

/**
 * dockeroptions.SetDockerOptionForPhases for one phase: drop every `--NAME=`
 * option, add `--NAME=VALUE`, keep the list sorted (ps:set restart-policy
 * before 0.38).
 */
export function setDockerOption(app: string, phase: string, name: string, value: string): void {
  const kept = dockerOptions(app, phase).filter((o) => !o.startsWith(`--${name}=`));
  kept.push(`--${name}=${value}`);
  kept.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  writeFileDokku(optionsFile(app, phase), `${kept.join('\n')}\n`, 0o600);
}

function parsePhases(s: string): string[] {
  const phases = s.split(',');
  for (const p of phases) {
    if (!PHASES.includes(p)) fail(`Phase must be one of [${PHASES.join(' ')}]`);
  }
  return phases;
}

const add: Command = async (args) => {
  const [app, phaseArg, ...rest] = args;
  verifyApp(app);
  const phases = parsePhases(phaseArg ?? '');
  const option = rest.join(' ');
  if (option === '') fail('Please specify docker options');
  for (const p of phases) {
    const cur = dockerOptions(app, p);
    if (!cur.includes(option)) cur.push(option);
    writeFileDokku(optionsFile(app, p), `${cur.join('\n')}\n`, 0o600);
  }
};

const remove: Command = async (args) => {
  const [app, phaseArg, ...rest] = args;
  verifyApp(app);
  const phases = parsePhases(phaseArg ?? '');
  const option = rest.join(' ');
  for (const p of phases) {
    const cur = dockerOptions(app, p).filter((o) => o !== option);
    writeFileDokku(optionsFile(app, p), cur.length > 0 ? `${cur.join('\n')}\n` : '', 0o600);
  }
};

const report: Command = async (args) => {
  const app = args.find((a) => !a.startsWith('--')) ?? '';
  const flags = args.filter((a) => a.startsWith('--') && a !== '--format' && a !== 'json');
  const subjects = app !== '' ? [app] : listApps();
  if (subjects.length === 0) {
    warn("You haven't deployed any applications yet");
    return;
  }
  for (const s of subjects) {
    verifyApp(s);
    const info: Record<string, string> = {};
    for (const p of PHASES) info[`--docker-options-${p}`] = dockerOptions(s, p).join(' ');
    const out = renderReport('docker options', s, info, flags, 'stdout', isQuiet(), false);
    if (!out.ok) fail(out.error);
    process.stdout.write(out.text);
  }
};

export const commands: Record<string, Command> = {
  'docker-options:add': add,
  'docker-options:remove': remove,
  'docker-options:report': report,
};
