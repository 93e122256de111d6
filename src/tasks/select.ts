/**
 * Takes part of a host: the apps and services `--app`, `--exclude-app`,
 * `--service` and `--exclude-service` choose, and every service linked to a
 * taken app unless it is left out (selection.ts has the rules). Runs where
 * the manifest is known: after `inventory` on the source (migrate, backup:
 * only the taken services are exported, and the run folder's manifest.json,
 * which the stream and the archive carry, is the selection's), or after
 * `transfer` on the target (restore: the archive's manifest). A name the
 * manifest does not have stops the run here, before anything is moved into
 * place; `--rename` is checked here too (the `rename` step does it).
 * What is left out still travels in the tree and is removed on the target
 * by `remove-unselected`, with Dokku's own commands.
 */
import { StopError } from '../errors.js';
import { $ } from '../ssh/shell.js';
import { runDir } from './common.js';
import type { Manifest } from './manifest.js';
import {
  applySelection,
  describeSelection,
  isEmptyRenames,
  isEmptySelection,
  renameProblems,
} from './selection.js';
import { stageDir } from './stage.js';
import { defineTask, type Json, type RuntimeOf } from './types.js';

const task = defineTask({
  name: 'select',
  summary:
    'take the apps and services chosen by --app/--service (with their linked services), minus --exclude-*',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      manifest: {
        enum: ['run-folder', 'stage'],
        default: 'run-folder',
        description:
          "Where the manifest it narrows is written back: the host's run folder (a source: migrate, backup) or the stage of a transfer (a target: restore).",
      },
    },
  },
  actions: { 'write-manifest': [] },
  skip({ options }) {
    return isEmptySelection(options.selection) && isEmptyRenames(options.rename)
      ? 'no --app, --exclude-app, --service, --exclude-service or --rename: every app and service'
      : undefined;
  },
  plan({ host, params, options, inventory }) {
    const file =
      params.manifest === 'stage'
        ? `${stageDir(options.runId)}/meta/manifest.json`
        : `${runDir(inventory, host!, options.runId)}/manifest.json`;
    const what = describeSelection(options.selection, options.rename);
    return [
      {
        kind: 'remote',
        id: 'write-manifest',
        host: host!.name,
        command: $`umask 077 && cat > ${file}`,
        stdin: 'the manifest of what is taken',
        why: `take ${what}. The services linked to a taken app come along unless left out (the links are read from the manifest at run time); a name the manifest lacks stops the run here. The rest still travels in the tree and is removed on the target (remove-unselected).`,
        changes: true,
      },
    ];
  },
});

/** One line per taken service with why it came, and what is left out. */
function describeTaken(m: Manifest): string[] {
  const sel = m.selection;
  const lines = [`apps taken: ${m.apps.map((a) => a.name).join(', ') || 'none'}`];
  for (const [svc, why] of Object.entries(sel?.taken ?? {})) lines.push(`service ${svc}: ${why}`);
  if (sel) {
    lines.push(
      `left out: apps ${sel.dropped.apps.join(', ') || 'none'}; services ${sel.dropped.services.join(', ') || 'none'}`,
    );
  }
  return lines;
}

async function run(rt: RuntimeOf<typeof task>) {
  const { options } = rt.ctx;
  const host = rt.ctx.host!.name;
  const before = rt.manifest();
  const selected =
    options.selection && !isEmptySelection(options.selection)
      ? applySelection(before, options.selection)
      : { manifest: before, problems: [] };
  const problems = [
    ...selected.problems,
    ...(options.rename && selected.problems.length === 0
      ? renameProblems(selected.manifest, options.rename)
      : []),
  ];
  if (problems.length > 0) {
    rt.task.hostState(
      host,
      rt.ctx.params.manifest === 'stage'
        ? 'the transfer is staged; nothing moved into place'
        : 'unchanged but for its run folder',
    );
    throw new StopError(
      `the selection does not fit what ${before.source.host} holds:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      {
        hint: 'Name apps and services as the manifest has them (PLUGIN/NAME for a service), then run again.',
      },
    );
  }
  const m = selected.manifest;
  for (const line of describeTaken(m)) rt.task.log(line);
  for (const c of m.selection?.cut ?? []) {
    rt.task.warn(
      `${c.app} is linked to ${c.service}, which is left out: on the target the link is removed (dokku PLUGIN:unlink unsets its URL variable)`,
    );
  }
  await rt.exec('write-manifest', {}, { stdin: `${JSON.stringify(m, null, 2)}\n` });
  return { manifest: m as unknown as Json };
}

export default task.runs(run);
