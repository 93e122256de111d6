/**
 * Carries the Docker images a target cannot rebuild or pull, host to host,
 * as streams: `docker save IMAGE` on the sender piped into `docker load` on
 * the target, SHA-256 taken on both ends and compared (a mismatch untags
 * what was loaded and stops the run). An app deployed with `git:from-image`
 * or `git:load-image` (Dokku records both as deploy-source `docker-image`
 * with the image as its metadata, plugins/git/internal-functions) is
 * rebuilt by `git:from-image` of that image, which pulls it when the engine
 * lacks it: a loaded image exists on no registry, and a mutable tag may
 * name other bytes there now, so an app's image always travels. A
 * service's IMAGE:IMAGE_VERSION travels only when the target can neither
 * find nor pull it (an image built or loaded on the source).
 *
 * From a live source (migrate), or from an archive's `images/` folder
 * (restore, drill: written by save-images at backup time). Runs before
 * extract: loading an image touches only the engine, never Dokku's paths.
 */
import { InternalError, StopError } from '../errors.js';
import { $, type Command, hole } from '../ssh/shell.js';
import { type Arg, hashed, P, runDir } from './common.js';
import type { Manifest } from './manifest.js';
import { stageDir } from './stage.js';
import { ageDecryptCommand, archiveSource, latestArchiveCommand } from './transfer.js';
import { defineTask, type PlannedAction, type Route, type RuntimeOf } from './types.js';

/** The hole for an image's file name in `images/` (see {@link imageFile}). */
const FILE = hole('file');

/**
 * A Docker image reference as ferry accepts it from a manifest: a
 * repository path with an optional tag and digest. Never starts with `-`
 * (it reaches docker as an argument) and holds no `+` (file names use it).
 */
export function isImageRef(ref: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/.test(ref) && !ref.includes('..');
}

/** The file of an image in an `images/` folder: `/` becomes `+`, so one flat folder, reversible. */
export function imageFile(ref: string): string {
  return `${ref.replaceAll('/', '+')}.tar`;
}

/** The image reference of an `images/` file name (inverse of {@link imageFile}). */
export function imageOfFile(file: string): string {
  return file.replace(/\.tar$/, '').replaceAll('+', '/');
}

/** One image a manifest names, and who uses it. */
export interface ImageNeed {
  image: string;
  /** `app` images always travel; `service` images only when the target cannot pull them. */
  kind: 'app' | 'service';
  users: string[];
}

/**
 * The images of a manifest: each image app's source image (deploy-source
 * metadata), each service's IMAGE:IMAGE_VERSION; one entry per image (an
 * app's need wins), in manifest order. References ferry will not pass to
 * docker are returned apart, with who uses them.
 */
export function imagesOf(manifest: Manifest): { needs: ImageNeed[]; refused: string[] } {
  const byImage = new Map<string, ImageNeed>();
  const refused: string[] = [];
  const add = (image: string, kind: ImageNeed['kind'], user: string) => {
    if (!isImageRef(image)) {
      refused.push(`${user}: ${JSON.stringify(image)}`);
      return;
    }
    const had = byImage.get(image);
    if (had) {
      had.users.push(user);
      if (kind === 'app') had.kind = 'app';
    } else byImage.set(image, { image, kind, users: [user] });
  };
  for (const a of manifest.apps) {
    if (a.deployed && a.method === 'image' && a.deploySourceMetadata) {
      add(a.deploySourceMetadata, 'app', a.name);
    }
  }
  for (const s of manifest.services) {
    if (s.image === '') continue;
    const ref = s.imageVersion === '' ? s.image : `${s.image}:${s.imageVersion}`;
    add(ref, 'service', `${s.plugin} ${s.name}`);
  }
  return { needs: [...byImage.values()], refused };
}

/** Whether the engine holds `image` (exit 0) or not (exit 1). */
export function hasImageCommand(image: Arg): Command {
  return $`docker image inspect ${image} >/dev/null 2>&1`;
}

/**
 * On the target: `present` when the engine has the image, `pulled` when a
 * pull got it, `missing` when neither (docker's reason on stderr).
 */
export function findOrPullCommand(image: Arg): Command {
  return $`if docker image inspect ${image} >/dev/null 2>&1; then echo present; elif docker image pull ${image} >/dev/null; then echo pulled; else echo missing; fi`;
}

/** Send side: `docker save` of one image, its SHA-256 to `sumFile` (the folder made root-only). */
export function saveStreamCommand(image: Arg, sumDir: Arg, file: Arg): Command {
  return $`install -d -m 0700 ${sumDir} && ${hashed($`docker save ${image}`, $`${sumDir}/${file}.sha256`, 'out')}`;
}

/** Receive side: SHA-256 of what arrives (to `<sumDir>/<file>.sha256`), then `docker load`. */
export function loadStreamCommand(sumDir: Arg, file: Arg): Command {
  return $`install -d -m 0700 ${sumDir} && ${hashed($`docker load`, $`${sumDir}/${file}.sha256`, 'in')}`;
}

/** Send side from an archive: the saved image file as it is. */
export function sendImageFileCommand(dir: Arg, file: Arg): Command {
  return $`cat -- ${dir}/images/${file}`;
}

/** The `SHA256SUMS` of an archive's images (nothing when it has none). */
export function archivedImagesCommand(dir: Arg): Command {
  return $`if [ -f ${dir}/images/SHA256SUMS ]; then cat ${dir}/images/SHA256SUMS; fi`;
}

/**
 * An encrypted copy's (`ferry backup --fetch DIR --encrypt`): each images/
 * file is `<file>.age`. Decrypted here as a stream, never to a file; age
 * authenticates every chunk, and the plaintext sums it gives are then
 * compared with what docker load read on the target.
 */
export function encryptedImagesCommand(dir: Arg, identity: string): Command {
  const sums = $`${dir}/images/SHA256SUMS.age`;
  return $`if [ -f ${sums} ]; then ${ageDecryptCommand(identity, sums)}; fi`;
}

/** Send side from an encrypted copy: one image, decrypted on its way out. */
export function sendEncryptedImageFileCommand(dir: Arg, file: Arg, identity: string): Command {
  return ageDecryptCommand(identity, $`${dir}/images/${file}.age`);
}

/** Untags an image whose bytes did not match: nothing unverified stays in the engine under its name. */
export function untagCommand(image: Arg): Command {
  return $`docker image rm ${image} >/dev/null 2>&1 || true`;
}

/** `hex  file` lines of a SHA256SUMS, by file. */
export function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (m) sums.set(m[2]!, m[1]!);
  }
  return sums;
}

const SHA256 = /^[0-9a-f]{64}$/;

const carryImages = defineTask({
  name: 'carry-images',
  summary:
    'carry the images the target cannot pull (image-deployed apps, unpullable service images), docker save | docker load, checksummed',
  runsOn: 'host',
  roleParams: ['from'],
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['from'],
    properties: {
      from: {
        type: 'string',
        description: 'The role that has the images (live), or holds the archive (latest, given).',
      },
      data: {
        enum: ['live', 'latest', 'given'],
        default: 'live',
        description:
          "live: from the source's engine; latest, given: from the archive's images/ folder (as in transfer).",
      },
      route: {
        enum: ['auto', 'direct', 'relay'],
        default: 'auto',
        description: 'As in transfer; --route overrides it.',
      },
    },
  },
  actions: {
    'source-has': ['image'],
    'find-or-pull': ['image'],
    image: ['image', 'file'],
    'sent-sum': ['file'],
    'received-sum': ['file'],
    untag: ['image'],
    'latest-archive': [],
    'archived-images': ['archive-dir'],
    'archived-image': ['archive-dir', 'file'],
  },
  plan(ctx) {
    const { host, params, roles, options, inventory } = ctx;
    const to = host!.name;
    const route: Route = options.route ?? params.route;
    const mine = `${stageDir(options.runId)}/images`;
    const compare: PlannedAction[] = [
      {
        kind: 'remote',
        id: 'received-sum',
        host: to,
        command: $`cat ${mine}/${FILE}.sha256`,
        why: 'the sum of the bytes docker load read',
      },
      {
        kind: 'remote',
        id: 'untag',
        host: to,
        command: untagCommand(P.image),
        only: 'the sums differ: the loaded image is not trusted',
        changes: true,
      },
    ];
    const findOrPull: PlannedAction = {
      kind: 'remote',
      id: 'find-or-pull',
      host: to,
      command: findOrPullCommand(P.image),
      forEach: 'image',
      where: "services' IMAGE:IMAGE_VERSION in the manifest",
      expect: 'present or pulled: nothing to carry; missing: carried from the source',
      changes: true,
    };
    if (params.data === 'live') {
      const src = roles[params.from]!;
      const sums = `${runDir(inventory, src, options.runId)}/images`;
      return [
        findOrPull,
        {
          kind: 'remote',
          id: 'source-has',
          host: src.name,
          command: hasImageCommand(P.image),
          forEach: 'image',
          where: 'images to carry',
          expect: 'exit 0; 1: the source lacks it (warned; the rebuild will try to pull it)',
        },
        {
          kind: 'stream',
          id: 'image',
          from: src.name,
          to,
          route,
          send: saveStreamCommand(P.image, sums, FILE),
          receive: loadStreamCommand(mine, FILE),
          counts: false,
          why: "image-deployed apps' images always (no registry has a loaded one), service images the target could not pull; <file> is the image with / as +",
          changes: true,
        },
        {
          kind: 'remote',
          id: 'sent-sum',
          host: src.name,
          command: $`cat ${sums}/${FILE}.sha256`,
          why: 'the sum of the bytes docker save wrote',
        },
        ...compare,
      ];
    }
    const where = archiveSource(ctx);
    const holderRoute: Route = where.holder === 'controller' ? 'relay' : route;
    const actions: PlannedAction[] = [];
    if (params.data === 'latest') {
      actions.push({
        kind: 'remote',
        id: 'latest-archive',
        host: where.holder,
        command: latestArchiveCommand(inventory, roles[params.from]!),
        expect: 'the folder transfer read',
      });
    }
    // Only a copy here can be an encrypted one (transfer refuses --identity otherwise).
    const identity = where.holder === 'controller' ? options.ageIdentity : undefined;
    const list =
      identity === undefined
        ? archivedImagesCommand(where.dir)
        : encryptedImagesCommand(where.dir, identity);
    actions.push(
      where.holder === 'controller'
        ? { kind: 'local', id: 'archived-images', command: list }
        : { kind: 'remote', id: 'archived-images', host: where.holder, command: list },
      findOrPull,
      {
        kind: 'stream',
        id: 'archived-image',
        from: where.holder,
        to,
        route: holderRoute,
        send:
          identity === undefined
            ? sendImageFileCommand(where.dir, FILE)
            : sendEncryptedImageFileCommand(where.dir, FILE, identity),
        receive: loadStreamCommand(mine, FILE),
        counts: false,
        why: "each image the archive's images/ holds that is an app's, or a service's the target could not pull",
        changes: true,
      },
      ...compare,
    );
    return actions;
  },
});

type Runtime = RuntimeOf<typeof carryImages>;

/** Loads one image and compares the sums; a mismatch untags it and stops. */
async function checkSums(rt: Runtime, image: string, sent: string): Promise<void> {
  const file = imageFile(image);
  const got = (await rt.exec('received-sum', { file })).stdout.trim();
  if (SHA256.test(sent) && sent === got) return;
  await rt.exec('untag', { image });
  const to = rt.ctx.host!.name;
  rt.task.hostState(to, `image ${image} was loaded with a checksum mismatch and untagged again`);
  throw new StopError(
    `image ${image}: checksum mismatch (sent ${sent || 'nothing'}, received ${got || 'nothing'}); untagged on ${to}`,
    {
      hint: 'The bytes changed on the way (or in the archive). Run again; if an archive is at fault, restore another one.',
    },
  );
}

/** Which of `needs` the target must get: app images always, service images it cannot find or pull. */
async function wanted(rt: Runtime, needs: ImageNeed[]): Promise<ImageNeed[]> {
  const out: ImageNeed[] = [];
  for (const n of needs) {
    if (n.kind === 'app') {
      out.push(n);
      continue;
    }
    const r = await rt.exec('find-or-pull', { image: n.image });
    const said = r.stdout.trim();
    if (said === 'missing') {
      rt.task.log(`${n.image} (${n.users.join(', ')}): the target cannot pull it; carried`);
      out.push(n);
    } else if (said === 'pulled') rt.task.log(`${n.image}: pulled by the target`);
  }
  return out;
}

async function run(rt: Runtime) {
  const { params } = rt.ctx;
  const { needs, refused } = imagesOf(rt.manifest());
  for (const r of refused) {
    rt.task.warn(`image reference not carried (not a Docker reference ferry passes on): ${r}`);
  }
  const carried: string[] = [];
  const missing: string[] = [];
  if (params.data === 'live') {
    for (const n of await wanted(rt, needs)) {
      const has = await rt.exec('source-has', { image: n.image }, { allowCodes: [0, 1] });
      if (has.code !== 0) {
        rt.task.warn(
          `${n.image} (${n.users.join(', ')}) is not in the source's engine: not carried; the rebuild will try to pull it`,
        );
        missing.push(n.image);
        continue;
      }
      const file = imageFile(n.image);
      const r = await rt.stream('image', { image: n.image, file });
      const sent = (await rt.exec('sent-sum', { file })).stdout.trim();
      await checkSums(rt, n.image, sent);
      rt.task.log(`${n.image}: ${r.bytes} bytes, ${r.route}, sha256 ${sent.slice(0, 12)}… matches`);
      carried.push(n.image);
    }
    return { carried, missing };
  }

  if (needs.length === 0) {
    rt.task.log('no image-deployed apps and no service images: nothing to carry');
    return { carried, missing };
  }
  const where = archiveSource(rt.ctx);
  const dir = rt.has('latest-archive')
    ? (await rt.exec('latest-archive')).stdout.trim()
    : typeof where.dir === 'string'
      ? where.dir
      : '';
  if (dir === '') throw new InternalError('carry-images: no archive folder');
  const sums = parseSums((await rt.exec('archived-images', { 'archive-dir': dir })).stdout);
  for (const n of await wanted(rt, needs)) {
    const file = imageFile(n.image);
    const sent = sums.get(file);
    if (sent === undefined) {
      if (n.kind === 'app') {
        rt.task.warn(
          `${n.image} (${n.users.join(', ')}) is not in the archive's images/: the rebuild will try to pull it`,
        );
      } else {
        rt.task.warn(
          `${n.image} (${n.users.join(', ')}): the target cannot pull it and the archive does not hold it`,
        );
      }
      missing.push(n.image);
      continue;
    }
    await rt.stream('archived-image', { 'archive-dir': dir, file });
    await checkSums(rt, n.image, sent);
    rt.task.log(`${n.image}: loaded from the archive, sha256 ${sent.slice(0, 12)}… matches`);
    carried.push(n.image);
  }
  return { carried, missing };
}

export default carryImages.runs(run);
