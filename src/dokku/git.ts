/**
 * `git:report <app>` (reference §5.7): Go since 0.38.22 (pad 32, sorted keys,
 * header `--global`), bash before (`%-30s %-25s`, header `global`). Both print
 * `Git …:` labels, so one parser reads both; JSON keys have no `git-` prefix.
 */
import type { CommandOutput } from './output.js';
import { DokkuOutputError } from './output.js';
import { parseReport, parseReportJson } from './report.js';

/** What a migration needs from `git:report`. */
export interface GitReport {
  app?: string;
  /** The app's own deploy-branch property ('' when unset). */
  deployBranch: string;
  /** What deploys: app property, else global, else `master`. */
  computedDeployBranch: string;
  globalDeployBranch: string;
  /** `git rev-parse HEAD` of the app repo; '' when the repo has no commits. */
  sha: string;
  /** Set by `git:from-image`; such apps need the same redeploy on a new host. */
  sourceImage: string;
  /** Unix seconds of the deploy branch ref; undefined when unknown. */
  lastUpdatedAt: number | undefined;
  revEnvVar: string;
  /** Every key without the `git-` head (stdout) or as printed (JSON). */
  entries: Record<string, string>;
}

function build(entries: Record<string, string>, app?: string): GitReport {
  const get = (k: string): string => entries[k] ?? '';
  if (!('deploy-branch' in entries) && !('computed-deploy-branch' in entries)) {
    throw new DokkuOutputError('git:report', 'no deploy branch in the report', 0);
  }
  const last = get('last-updated-at');
  const report: GitReport = {
    deployBranch: get('deploy-branch'),
    computedDeployBranch: get('computed-deploy-branch') || get('deploy-branch') || 'master',
    globalDeployBranch: get('global-deploy-branch'),
    sha: get('sha'),
    sourceImage: get('source-image'),
    lastUpdatedAt: /^\d+$/.test(last) ? Number(last) : undefined,
    revEnvVar: get('rev-env-var'),
    entries,
  };
  if (app !== undefined) report.app = app;
  return report;
}

/** Parses `git:report [<app>]` stdout, one report per app. */
export function parseGitReports(out: CommandOutput): GitReport[] {
  return parseReport('git:report', out).map((s) => {
    const entries: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.entries)) entries[k.replace(/^git-/, '')] = v;
    return build(entries, s.name);
  });
}

/** Parses `git:report <app>` stdout. */
export function parseGitReport(out: CommandOutput): GitReport {
  const first = parseGitReports(out)[0];
  if (!first) throw new DokkuOutputError('git:report', 'empty report', 0);
  return first;
}

/** Parses `git:report <app> --format json` (0.38.22+). */
export function parseGitReportJson(out: CommandOutput): GitReport {
  return build(parseReportJson('git:report', out));
}
