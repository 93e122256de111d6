/**
 * Where a target receives a transfer before extract moves it into place, and
 * where extract keeps what it replaces. transfer writes the stage, verify-archive
 * checks it, extract and start-services read it: this is their shared layout.
 *
 * The tree is unpacked INSIDE the filesystems it goes to: /home/dokku and
 * /var/lib/dokku are often mount points (and always are in the lab), and a
 * mount point cannot be renamed, while a rename across filesystems is a copy.
 * So `home/dokku` lands in /home/dokku/.ferry-stage-RUN and everything else
 * in /var/lib/dokku/.ferry-stage-RUN, where extract moves it into place with
 * renames only.
 */
import { InternalError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { FERRY_ROOT } from './common.js';

/** One run's stage and aside folders on a target. */
export interface StagePaths {
  /** Root-only: data.sha256 and meta/ (manifest, exports). */
  dir: string;
  meta: string;
  /** Checksum of the bytes that arrived. */
  sum: string;
  /** The staged /home/dokku (same filesystem as /home/dokku). */
  home: string;
  /** The stage inside /var/lib/dokku; anything unexpected in the archive stays here. */
  lib: string;
  /** The staged /var/lib/dokku/{config,data,services,plugins} live here. */
  libTree: string;
  /** What /home/dokku held before (its children), kept aside by extract. */
  homeAside: string;
  /** What /var/lib/dokku/{config,...} were before, kept aside by extract. */
  libAside: string;
}

/** Where a target receives a transfer's checksum and meta (manifest, exports). */
export function stageDir(runId: string): string {
  return `${FERRY_ROOT}/stage/${runId}`;
}

/** The stage layout of a run (the run id names folders and appears in a tar --transform). */
export function stagePaths(runId: string): StagePaths {
  if (!/^[A-Za-z0-9_-]+$/.test(runId)) throw new InternalError(`unexpected run id ${runId}`);
  const dir = stageDir(runId);
  const lib = `/var/lib/dokku/.ferry-stage-${runId}`;
  return {
    dir,
    meta: `${dir}/meta`,
    sum: `${dir}/data.sha256`,
    home: `/home/dokku/.ferry-stage-${runId}`,
    lib,
    libTree: `${lib}/var/lib/dokku`,
    homeAside: `/home/dokku/.ferry-pre-${runId}`,
    libAside: `/var/lib/dokku/.ferry-pre-${runId}`,
  };
}

/** Removes a stage whose content cannot be trusted (a failed or mismatched transfer). */
export function discardStageCommand(runId: string): Command {
  const s = stagePaths(runId);
  return $`rm -rf -- ${s.home} ${s.lib} ${s.dir}`;
}
