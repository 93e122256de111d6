/**
 * Moves the staged tree into place by renames only. transfer unpacked it
 * inside the filesystems it belongs to (/home/dokku/.ferry-stage-RUN,
 * /var/lib/dokku/.ferry-stage-RUN), because /home/dokku and /var/lib/dokku
 * are often mount points: a mount point cannot be renamed (EBUSY) and a
 * rename across filesystems is a copy. So /home/dokku's CHILDREN are swapped
 * (the old ones kept in /home/dokku/.ferry-pre-RUN), and
 * /var/lib/dokku/{config,data,services,plugins} are swapped whole (the old
 * ones kept in /var/lib/dokku/.ferry-pre-RUN). Nothing is deleted, so an
 * interrupted run can be rolled back by hand; a failed rename undoes every
 * rename before it, so the host is never left half-moved. Owners stay numeric
 * (tar --numeric-owner); check-quiet proved the dokku uid/gid match.
 */

import { CORE_PLUGINS, PLUGIN_AVAILABLE, PLUGIN_ENABLED } from '../dokku/layout.js';
import { StopError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { stagePaths } from './stage.js';
import { defineTask, type RuntimeOf } from './types.js';

/** The paths below /var/lib/dokku the seed archives, swapped whole. */
export const LIB_PARTS = ['config', 'data', 'services', 'plugins'] as const;

/**
 * The whole swap as one bash script: checks first (stage there, on the same
 * filesystems, no seed path a mount point), then renames, each logged; on the
 * first failure every logged rename is undone in reverse. Prints
 * `ferry-moved N`, and `ferry-unexpected PATH` for archive members outside
 * the seed's paths (left in the stage).
 */
export function moveIntoPlaceCommand(runId: string): Command {
  const s = stagePaths(runId);
  const parts = LIB_PARTS;
  return $`st=${s.dir}; hs=${s.home}; vst=${s.lib}; vs=${s.libTree}; ha=${s.homeAside}; va=${s.libAside}
umask 077
if [ -e "$st/extracted" ]; then echo 'ferry-already-extracted'; exit 0; fi
[ -d "$hs" ] && [ -d "$vs" ] || { echo "no stage at $hs and $vs (run transfer first)" >&2; exit 1; }
for p in ${parts}; do if mountpoint -q "/var/lib/dokku/$p"; then echo "/var/lib/dokku/$p is a mount point: it cannot be renamed" >&2; exit 1; fi; done
[ "$(stat -c %d "$hs")" = "$(stat -c %d /home/dokku)" ] && [ "$(stat -c %d "$vs")" = "$(stat -c %d /var/lib/dokku)" ] || { echo 'the stage is not on the filesystem of /home/dokku or /var/lib/dokku' >&2; exit 1; }
install -d -m 0700 "$ha" "$va"
stat -c '%u:%g %a' /home/dokku >"$st/home-attrs"
log=$st/moves; : >"$log"; n=0
# Logged before it moves: a move the log could not record (a full disk) never happens.
mv1() { printf '%s\\0%s\\0' "$1" "$2" >>"$log" && mv -T -- "$1" "$2" && n=$((n + 1)); }
moves() {
  shopt -s dotglob nullglob
  local c p
  for c in /home/dokku/*; do case \${c##*/} in .ferry-stage-*|.ferry-pre-*) continue ;; esac; mv1 "$c" "$ha/\${c##*/}" || return 1; done
  for c in "$hs"/*; do mv1 "$c" "/home/dokku/\${c##*/}" || return 1; done
  for p in ${parts}; do
    [ -e "$vs/$p" ] || continue
    if [ -e "/var/lib/dokku/$p" ] || [ -L "/var/lib/dokku/$p" ]; then mv1 "/var/lib/dokku/$p" "$va/$p" || return 1; fi
    mv1 "$vs/$p" "/var/lib/dokku/$p" || return 1
  done
  chown --reference="$hs" /home/dokku && chmod --reference="$hs" /home/dokku
}
undo() {
  local m i
  mapfile -d '' m <"$log"
  for ((i = \${#m[@]} - 2; i >= 0; i -= 2)); do
    # The last entry may be a move that failed: only what did move is moved back.
    if { [ -e "\${m[i+1]}" ] || [ -L "\${m[i+1]}" ]; } && [ ! -e "\${m[i]}" ] && [ ! -L "\${m[i]}" ]; then
      mv -T -- "\${m[i+1]}" "\${m[i]}" || echo "could not move \${m[i+1]} back to \${m[i]}" >&2
    fi
  done
}
if ! moves; then undo; echo 'extract failed: every rename was undone, the stage is kept' >&2; exit 1; fi
# This host's core plugins (its release's, outside the archive) stay linked and enabled, as Dokku's
# own postinst keeps them; a link to one this release no longer ships goes, as postinst removes it.
if [ -d ${CORE_PLUGINS} ] && [ -d ${PLUGIN_AVAILABLE} ]; then
  install -d ${PLUGIN_ENABLED}
  for c in ${CORE_PLUGINS}/*/; do c=\${c%/}; p=\${c##*/}
    if [ ! -e ${PLUGIN_AVAILABLE}/"$p" ]; then ln -s "$c" ${PLUGIN_AVAILABLE}/"$p" && ln -sfn ${PLUGIN_AVAILABLE}/"$p" ${PLUGIN_ENABLED}/"$p" && echo "ferry-core-linked $p"; fi
  done
  find -L ${PLUGIN_AVAILABLE} ${PLUGIN_ENABLED} -maxdepth 1 -type l -print -delete | sed 's/^/ferry-dangling-removed /'
fi
touch "$st/extracted"
rmdir -- "$hs"
find "$vst" -depth -type d -empty -delete
if [ -e "$vst" ]; then { find "$vst" -mindepth 1 -maxdepth 4 ! -type d -printf 'ferry-unexpected /%P\\n' || true; } | head -n 20; fi
echo "ferry-moved $n"`;
}

/**
 * The undo of {@link moveIntoPlaceCommand}: every logged rename reversed, so
 * the data goes back into the stage (a resumed `--live` copy syncs only what
 * changed since) and what the host had comes back from aside; /home/dokku
 * gets its owner and mode back. Services and apps started on the data are
 * stopped by the undos of the later steps, which run first.
 */
export function moveBackCommand(runId: string): Command {
  const s = stagePaths(runId);
  return $`st=${s.dir}; hs=${s.home}; vs=${s.libTree}
[ -e "$st/extracted" ] && [ -s "$st/moves" ] || { echo 'ferry-nothing-to-move-back'; exit 0; }
mkdir -p "$hs" "$vs"
mapfile -d '' m <"$st/moves"
n=0
for ((i = \${#m[@]} - 2; i >= 0; i -= 2)); do mkdir -p "$(dirname "\${m[i]}")"; mv -T -- "\${m[i+1]}" "\${m[i]}"; n=$((n + 1)); done
if [ -s "$st/home-attrs" ]; then read -r own mode <"$st/home-attrs"; chown "$own" /home/dokku; chmod "$mode" /home/dokku; fi
rm -f "$st/extracted" "$st/moves"
echo "ferry-moved-back $n"`;
}

const extract = defineTask({
  name: 'extract',
  summary: 'move the staged Dokku paths into place by renames, keeping what was there aside',
  runsOn: 'host',
  params: { type: 'object', additionalProperties: false, properties: {} },
  actions: { 'move-into-place': [], 'move-back': [] },
  plan({ host, options }) {
    return [
      {
        kind: 'remote' as const,
        id: 'move-into-place',
        host: host!.name,
        command: moveIntoPlaceCommand(options.runId),
        why: '/home/dokku (its children) and /var/lib/dokku/{config,data,services,plugins}: renames within each filesystem, all undone if one fails',
        expect:
          'ferry-moved N (ferry-unexpected lines: archive members outside the seed paths, left in the stage)',
        changes: true,
      },
      {
        kind: 'remote' as const,
        id: 'move-back',
        host: host!.name,
        command: moveBackCommand(options.runId),
        only: "a later step fails before the target is verified (the playbook's undo range)",
        why: 'the data back into the stage, what the host had back in place',
        changes: true,
      },
    ];
  },
});
async function run(rt: RuntimeOf<typeof extract>) {
  const to = rt.ctx.host!.name;
  const s = stagePaths(rt.ctx.options.runId);
  let out: string;
  try {
    out = (await rt.exec('move-into-place')).stdout;
  } catch (e) {
    rt.task.hostState(
      to,
      `nothing moved into place (any rename was undone); stage at ${s.home} and ${s.lib}`,
    );
    throw e;
  }
  if (out.includes('ferry-already-extracted')) {
    rt.task.log('already moved into place by an earlier attempt');
  }
  const unexpected = out
    .split('\n')
    .filter((l) => l.startsWith('ferry-unexpected '))
    .map((l) => l.slice('ferry-unexpected '.length));
  if (unexpected.length > 0) {
    rt.task.warn(
      `the data held paths outside the seed's five (left in ${s.lib}): ${unexpected.join(', ')}`,
    );
  }
  const linked = [...out.matchAll(/^ferry-core-linked (.+)$/gm)].map((m) => m[1]!);
  if (linked.length > 0) {
    rt.task.log(`${to}'s own core plugins kept linked and enabled: ${linked.join(', ')}`);
  }
  const dangling = [...out.matchAll(/^ferry-dangling-removed (.+)$/gm)].map((m) => m[1]!);
  if (dangling.length > 0) {
    rt.task.warn(
      `plugin links to nothing on ${to} (a core plugin its release no longer ships) removed: ${dangling.join(', ')}`,
    );
  }
  const moved = /ferry-moved (\d+)/.exec(out)?.[1];
  if (moved === undefined && !out.includes('ferry-already-extracted')) {
    throw new StopError(`extract on ${to} did not report its moves`, {
      hint: `Look at ${s.dir}/moves (NUL-separated from/to pairs) on ${to}.`,
    });
  }
  rt.task.hostState(
    to,
    `Dokku paths in place from the transfer; what ${to} had is in ${s.homeAside} and ${s.libAside}`,
  );
  return { moved: Number(moved ?? 0) };
}

async function undo(rt: RuntimeOf<typeof extract>) {
  const to = rt.ctx.host!.name;
  const s = stagePaths(rt.ctx.options.runId);
  const out = (await rt.exec('move-back')).stdout;
  const n = /ferry-moved-back (\d+)/.exec(out)?.[1];
  rt.task.log(n === undefined ? 'nothing had been moved into place' : `${n} rename(s) reversed`);
  rt.task.hostState(
    to,
    `back as before the run; the copy is kept in the stage (${s.home}, ${s.lib}) for a resumed run`,
  );
}

export default extract.runs(run, { undo });
