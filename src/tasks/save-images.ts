/**
 * The images part of a backup: `docker save` of each image a restore could
 * not pull into `<run folder>/images/`, one 0600 file per image (see
 * carry-images' `imageFile`), each hashed on its way to the disk, and a
 * `SHA256SUMS` that restore compares with what it loads. Image-deployed
 * apps' images always (a `git:load-image` image is on no registry); service
 * images only when asked (`services: true`): they are large, and usually pullable.
 */
import { $, type Command, hole } from '../ssh/shell.js';
import { hasImageCommand, type ImageNeed, imageFile, imagesOf } from './carry-images.js';
import { type Arg, hashed, P, runDir } from './common.js';
import { defineTask, type RuntimeOf } from './types.js';

/** The hole for an image's file name (carry-images' `imageFile`). */
const FILE = hole('file');

/** Saves one image to `<dir>/images/<file>`, its SHA-256 to `<file>.sha256` (hex), written whole or not at all. */
export function saveImageCommand(dir: Arg, image: Arg, file: Arg): Command {
  const d = $`${dir}/images`;
  const write = hashed($`docker save ${image}`, $`${d}/${file}.sha256`, 'out');
  return $`install -d -m 0700 ${d} && umask 077 && { ${write}; } > ${d}/${file}.part && mv ${d}/${file}.part ${d}/${file}`;
}

/** Writes `images/SHA256SUMS` (sha256sum -c format) from the per-image sums, and prints it. */
export function imageSumsCommand(dir: Arg): Command {
  const d = $`${dir}/images`;
  return $`if [ -d ${d} ]; then cd ${d} && umask 077 && for f in *.tar; do [ ! -e "$f" ] || printf '%s  %s\\n' "$(cat "$f.sha256")" "$f"; done > SHA256SUMS && rm -f -- *.sha256 && cat SHA256SUMS; fi`;
}

const saveImages = defineTask({
  name: 'save-images',
  summary:
    "docker save the images a restore could not pull into the run folder's images/, checksummed",
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      services: {
        type: 'boolean',
        default: false,
        description:
          "Also save each service's IMAGE:IMAGE_VERSION (for a restore onto a host that cannot pull them). Image-deployed apps' images are always saved.",
      },
    },
  },
  actions: {
    'has-image': ['image'],
    save: ['image', 'file'],
    sums: [],
  },
  plan({ host, inventory, options }) {
    const h = host!.name;
    const dir = runDir(inventory, host!, options.runId);
    return [
      {
        kind: 'remote',
        id: 'has-image',
        host: h,
        command: hasImageCommand(P.image),
        forEach: 'image',
        where: "image-deployed apps' images (and services' with services: true)",
        expect: 'exit 0; 1: not in the engine (warned, not saved)',
      },
      {
        kind: 'remote',
        id: 'save',
        host: h,
        command: saveImageCommand(dir, P.image, FILE),
        forEach: 'image',
        why: 'a git:load-image image exists on no registry: without it a restored app cannot be rebuilt',
        changes: true,
      },
      {
        kind: 'remote',
        id: 'sums',
        host: h,
        command: imageSumsCommand(dir),
        why: 'restore compares each loaded image with its line here',
        changes: true,
      },
    ];
  },
});

async function run(rt: RuntimeOf<typeof saveImages>) {
  const { needs, refused } = imagesOf(rt.manifest());
  for (const r of refused) rt.task.warn(`image reference not saved: ${r}`);
  const todo: ImageNeed[] = needs.filter((n) => n.kind === 'app' || rt.ctx.params.services);
  if (todo.length === 0) {
    rt.task.log('no image-deployed apps: no images to save');
    return { saved: [], sums: 0 };
  }
  const saved: string[] = [];
  for (const n of todo) {
    const has = await rt.exec('has-image', { image: n.image }, { allowCodes: [0, 1] });
    if (has.code !== 0) {
      rt.task.warn(`${n.image} (${n.users.join(', ')}) is not in the engine: not in this backup`);
      continue;
    }
    await rt.exec('save', { image: n.image, file: imageFile(n.image) });
    saved.push(n.image);
  }
  const sums = (await rt.exec('sums')).stdout.trim();
  rt.task.log(`${saved.length} image(s) saved: ${saved.join(', ')}`);
  return { saved, sums: sums.split('\n').length };
}

export default saveImages.runs(run);
