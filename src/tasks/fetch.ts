/**
 * Streams the run's archive folder (archive, checksum, exports, manifest)
 * from the host to a folder here, then checks every checksum here: an
 * off-host copy, as the seed recommends ("moved offsite"). The bytes pass
 * through pipes (ssh channel → local tar), never held whole in memory.
 *
 * Encrypted (`--encrypt`, `backup.encrypt`): the host encrypts with the age
 * CLI inside the stream, so only ciphertext leaves it and only ciphertext
 * is written here: `meta.tar.age` (manifest, exports with their SHA256SUMS,
 * cron entries, the archive's .sha256), `dokku.tar.<ext>.age`, and when the
 * archive saved images (save-images) `images/<file>.age` for each with
 * `images/SHA256SUMS.age` (their plaintext sums), with `SHA256SUMS` of every
 * ciphertext. The host hashes the ciphertext as it
 * sends it and the archive's plaintext as it encrypts it: here the first
 * must match what arrived, the second the archive step's sum. age (Go,
 * Debian's `age` package) runs on the host because the plaintext is there;
 * this machine never holds a key that can decrypt it.
 */
import { FerryError, StopError } from '../errors.js';
import { $, type Command, hole } from '../ssh/shell.js';
import { formatBytes } from '../util/format.js';
import { COMPRESSION, type Compression, hashed, runDir } from './common.js';
import { archiveNameCommand, compressionOf, sendMetaCommand } from './transfer.js';
import {
  defineTask,
  type Json,
  type PlanContext,
  type PlannedAction,
  type RuntimeOf,
} from './types.js';

export function sendFolderCommand(dir: string): Command {
  const parent = dir.replace(/\/[^/]+$/, '') || '/';
  const name = dir.slice(parent.length + 1);
  return $`tar -C ${parent} -cf - ${name}`;
}

/** Unpacks the folder under `dest`; the folder itself is made root-only (it holds secrets). */
export function receiveFolderCommand(dest: string, name: string): Command {
  return $`mkdir -p -m 0700 ${dest} && tar -C ${dest} --no-same-owner -xf - && chmod 0700 ${`${dest}/${name}`}`;
}

/**
 * Checks the archive against its `.sha256`, every export against
 * SHA256SUMS (none when the host has no datastore) and every saved image
 * against images/SHA256SUMS (none without image apps), then prints the archive's sum line.
 */
export function checkFetchedCommand(folder: string): Command {
  return $`cd ${folder} && sha256sum -c --quiet dokku.tar.*.sha256 && { [ ! -s exports/SHA256SUMS ] || (cd exports && sha256sum -c --quiet SHA256SUMS); } && { [ ! -s images/SHA256SUMS ] || (cd images && sha256sum -c --quiet SHA256SUMS); } && cat dokku.tar.*.sha256`;
}

/** The age CLI encrypting stdin to `recipients` (binary output). */
export function ageEncryptCommand(recipients: readonly string[]): Command {
  return $`age --encrypt ${recipients.flatMap((r) => ['-r', r])}`;
}

/** Where the host keeps the sums of what it sent encrypted, until the controller has read them. */
function sentDir(dir: string): string {
  return `${dir}/sent`;
}

/** The hole for a file of the archive's images/ folder (an image's file, or SHA256SUMS). */
const FILE = hole('file');

/** An images/ file name as save-images writes them (carry-images' `imageFile`), or its SHA256SUMS. */
const IMAGE_FILE = /^(?:[A-Za-z0-9][A-Za-z0-9._:@+-]*\.tar|SHA256SUMS)$/;

/**
 * Prepares the sums folders and answers age's path (nothing: no age), then
 * `image FILE` for each image the archive saved (save-images' SHA256SUMS).
 */
export function prepareEncryptCommand(dir: string): Command {
  return $`install -d -m 0700 ${sentDir(dir)} ${`${sentDir(dir)}/images`} && { command -v age || true; } && { [ ! -s ${dir}/images/SHA256SUMS ] || sed -n 's/^[0-9a-f][0-9a-f]* [ *]/image /p' ${dir}/images/SHA256SUMS; }`;
}

/** Send side of one images/ file, encrypted: its ciphertext hashed to `sent/images/<file>.age`. */
export function sendEncryptedImageCommand(dir: string, recipients: readonly string[]): Command {
  return hashed(
    $`cat -- ${dir}/images/${FILE} | ${ageEncryptCommand(recipients)}`,
    $`${sentDir(dir)}/images/${FILE}.age`,
    'out',
  );
}

/** Receive side of one images/ file: `images/<file>.age`, 0600, in root-only folders, whole or not at all. */
export function receiveEncryptedImageCommand(dest: string, name: string): Command {
  const folder = `${dest}/${name}`;
  const part = $`${folder}/images/${FILE}.age.part`;
  return $`mkdir -p -m 0700 ${dest} && install -d -m 0700 ${folder} ${`${folder}/images`} && umask 077 && cat > ${part} && mv -- ${part} ${folder}/images/${FILE}.age`;
}

/** Send side of the encrypted meta: what restore's meta stream carries, encrypted, its ciphertext hashed. */
export function sendEncryptedMetaCommand(dir: string, recipients: readonly string[]): Command {
  return hashed(
    $`${sendMetaCommand(dir)} | ${ageEncryptCommand(recipients)}`,
    `${sentDir(dir)}/meta.tar.age`,
    'out',
  );
}

/**
 * Send side of the encrypted archive: its plaintext hashed on the way into
 * age (the archive step's sum must match: what is inside is what was
 * checksummed), the ciphertext hashed on the way out.
 */
export function sendEncryptedArchiveCommand(
  dir: string,
  compression: Compression,
  recipients: readonly string[],
): Command {
  const plain = hashed(
    $`cat -- ${`${dir}/dokku.tar.${COMPRESSION[compression].ext}`}`,
    `${sentDir(dir)}/archive`,
    'out',
  );
  return hashed(
    $`${plain} | ${ageEncryptCommand(recipients)}`,
    `${sentDir(dir)}/archive.age`,
    'out',
  );
}

/**
 * Prints `<name> <sha256>` for meta.tar.age, archive.age and archive
 * (plaintext), and `images/<file>.age <sha256>` for each images/ file sent,
 * then removes them.
 */
export function sentSumsCommand(dir: string): Command {
  return $`cd ${sentDir(dir)} && for f in meta.tar.age archive.age archive images/*.age; do [ -f "$f" ] || continue; printf '%s %s\n' "$f" "$(cat -- "$f")"; done && cd / && rm -rf -- ${sentDir(dir)}`;
}

/** Receive side of one encrypted file: written 0600 in the root-only folder, under a temporary name until whole. */
export function receiveEncryptedCommand(dest: string, name: string, file: string): Command {
  const folder = `${dest}/${name}`;
  return $`mkdir -p -m 0700 ${dest} && install -d -m 0700 ${folder} && umask 077 && cat > ${`${folder}/${file}.part`} && mv -- ${`${folder}/${file}.part`} ${`${folder}/${file}`}`;
}

/** The ciphertexts' sums here, in `sha256sum` format. */
export function encryptedSumsCommand(folder: string): Command {
  return $`cd ${folder} && sha256sum -- meta.tar.age dokku.tar.*.age && if [ -d images ]; then sha256sum -- images/*.age; fi`;
}

/** Writes SHA256SUMS (stdin) beside the ciphertexts, 0600. */
export function writeSumsCommand(folder: string): Command {
  return $`umask 077 && cat > ${`${folder}/SHA256SUMS`}`;
}

/** The recipients a fetch encrypts to: --encrypt, else the inventory's backup.encrypt. */
export function recipientsOf(ctx: Pick<PlanContext<unknown>, 'options' | 'inventory'>): string[] {
  return ctx.options.encrypt ?? ctx.inventory.backup.encrypt ?? [];
}

function encryptedActions(
  src: string,
  dir: string,
  dest: string,
  name: string,
  recipients: string[],
): PlannedAction[] {
  const folder = `${dest}/${name}`;
  const streams = (['zstd', 'gzip'] as const).map(
    (c): PlannedAction => ({
      kind: 'stream',
      id: 'fetch-encrypted',
      item: c,
      from: src,
      to: 'controller',
      route: 'relay',
      send: sendEncryptedArchiveCommand(dir, c, recipients),
      receive: receiveEncryptedCommand(dest, name, `dokku.tar.${COMPRESSION[c].ext}.age`),
      why: `the archive, encrypted on ${src}${c === 'zstd' ? ' (dokku.tar.zst)' : ' (instead, when it is dokku.tar.gz)'}: only ciphertext travels and lands here`,
      changes: true,
    }),
  );
  return [
    {
      kind: 'remote',
      id: 'prepare-encrypt',
      host: src,
      command: prepareEncryptCommand(dir),
      expect:
        "age's path (nothing: stop, install age there); `image FILE` for each image the archive saved",
      changes: true,
    },
    {
      kind: 'remote',
      id: 'archive-name',
      host: src,
      command: archiveNameCommand(dir),
      expect: 'dokku.tar.zst or dokku.tar.gz',
    },
    {
      kind: 'stream',
      id: 'fetch-meta',
      from: src,
      to: 'controller',
      route: 'relay',
      send: sendEncryptedMetaCommand(dir, recipients),
      receive: receiveEncryptedCommand(dest, name, 'meta.tar.age'),
      why: "manifest, exports (with their SHA256SUMS), cron entries and the archive's sum, encrypted on the host",
      changes: true,
    },
    ...streams,
    {
      kind: 'stream',
      id: 'fetch-image',
      from: src,
      to: 'controller',
      route: 'relay',
      send: sendEncryptedImageCommand(dir, recipients),
      receive: receiveEncryptedImageCommand(dest, name),
      why: "each file of the archive's images/ (save-images: images no registry has), then its SHA256SUMS, encrypted on the host as images/<file>.age: restore --identity loads them",
      changes: true,
    },
    {
      kind: 'remote',
      id: 'sent-sums',
      host: src,
      command: sentSumsCommand(dir),
      expect: 'the sums of the ciphertexts sent and of the plaintext archive encrypted',
      changes: true,
    },
    {
      kind: 'local',
      id: 'check-here',
      command: encryptedSumsCommand(folder),
      expect: "equal to the host's; the plaintext's equal to the archive step's",
    },
    {
      kind: 'local',
      id: 'write-sums',
      command: writeSumsCommand(folder),
      why: 'the ciphertexts can be checked without the key (sha256sum -c), and restore checks them first',
      changes: true,
    },
  ];
}

const task = defineTask({
  name: 'fetch',
  summary: 'stream the archive, exports and manifest here; check their checksums here',
  runsOn: 'controller',
  roleParams: ['from'],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      from: { type: 'string', default: 'source', description: 'The role holding the archive.' },
    },
  },
  actions: {
    fetch: [],
    'check-here': [],
    'prepare-encrypt': [],
    'archive-name': [],
    'fetch-meta': [],
    // item: the archive's compression
    'fetch-encrypted': [],
    'fetch-image': ['file'],
    'sent-sums': [],
    'write-sums': [],
  },
  plan(ctx) {
    const { params, roles, inventory, options } = ctx;
    const src = roles[params.from]!;
    const dir = runDir(inventory, src, options.runId);
    const dest = options.fetch ?? '<fetch-dir>';
    const name = dir.slice(dir.lastIndexOf('/') + 1);
    const recipients = recipientsOf(ctx);
    if (recipients.length > 0) return encryptedActions(src.name, dir, dest, name, recipients);
    return [
      {
        kind: 'stream',
        id: 'fetch',
        from: src.name,
        to: 'controller',
        route: 'relay',
        send: sendFolderCommand(dir),
        receive: receiveFolderCommand(dest, name),
        changes: true,
      },
      {
        kind: 'local',
        id: 'check-here',
        command: checkFetchedCommand(`${dest}/${name}`),
        expect: "exit 0: the copy here is whole; its sum is the archive step's",
      },
    ];
  },
});

type Runtime = RuntimeOf<typeof task>;

/** The archive step's sum of the archive in `dir`, journalled when it was computed on the host. */
function archiveSum(rt: Runtime, dir: string): string | undefined {
  const found = Object.values(rt.outputs).find(
    (o) =>
      typeof o.path === 'string' && o.path.startsWith(`${dir}/`) && typeof o.sha256 === 'string',
  )?.sha256;
  return typeof found === 'string' ? found : undefined;
}

/** `name sha256` or `sha256  name` lines to a map. */
function sums(text: string, hexFirst: boolean): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = hexFirst
      ? /^([0-9a-f]{64}) [ *](.+)$/.exec(line)
      : /^(\S+) ([0-9a-f]{64})$/.exec(line);
    if (m) out.set(hexFirst ? m[2]! : m[1]!, hexFirst ? m[1]! : m[2]!);
  }
  return out;
}

async function runEncrypted(rt: Runtime, src: string, dir: string, here: string) {
  const said = (await rt.exec('prepare-encrypt')).stdout.split('\n');
  const age = said.find((l) => l.startsWith('/'))?.trim() ?? '';
  const images = said.flatMap((l) => (l.startsWith('image ') ? [l.slice(6)] : []));
  const odd = images.find((f) => !IMAGE_FILE.test(f));
  if (odd !== undefined) {
    throw new StopError(`${dir}/images/SHA256SUMS on ${src} names ${JSON.stringify(odd)}`, {
      hint: 'save-images names each file after its image; run the backup again.',
    });
  }
  if (age === '') {
    throw new StopError(`${src} has no age: the copy cannot be encrypted there`, {
      hint: `Install it on ${src} (apt-get install age), or fetch without --encrypt.`,
    });
  }
  const compression = compressionOf((await rt.exec('archive-name')).stdout.trim());
  if (!compression) throw new StopError(`no dokku.tar.zst or dokku.tar.gz in ${dir} on ${src}`);
  const meta = await rt.stream('fetch-meta');
  const moved = await rt.stream('fetch-encrypted', {}, { item: compression });
  const file = `dokku.tar.${COMPRESSION[compression].ext}.age`;
  // The images an app deployed from an image no registry has needs, and their sums.
  let bytes = meta.bytes + moved.bytes;
  let seconds = meta.seconds + moved.seconds;
  const imageFiles = images.length > 0 ? [...images, 'SHA256SUMS'] : [];
  for (const f of imageFiles) {
    const r = await rt.stream('fetch-image', { file: f });
    bytes += r.bytes;
    seconds += r.seconds;
  }
  rt.task.log(
    `${formatBytes(bytes)} of ciphertext from ${src} in ${seconds.toFixed(1)} s${images.length > 0 ? ` (with ${images.length} saved image(s))` : ''}`,
  );
  const sent = sums((await rt.exec('sent-sums')).stdout, false);
  const got = sums((await rt.exec('check-here')).stdout, true);
  const imagePairs = imageFiles.map((f) => [`images/${f}.age`, `images/${f}.age`] as const);
  for (const [name, sentName] of [
    ['meta.tar.age', 'meta.tar.age'],
    [file, 'archive.age'],
    ...imagePairs,
  ] as const) {
    if (!got.get(name) || got.get(name) !== sent.get(sentName)) {
      throw new FerryError(
        `${here}/${name} does not match what ${src} sent (sha256 ${got.get(name) ?? 'unknown'}, sent ${sent.get(sentName) ?? 'unknown'})`,
        { hint: `Remove ${here} and run the backup again.` },
      );
    }
  }
  const expected = archiveSum(rt, dir);
  const plain = sent.get('archive');
  if (!plain || (expected !== undefined && plain !== expected)) {
    throw new FerryError(
      `the archive encrypted on ${src} is not the one the archive step wrote (sha256 ${plain ?? 'unknown'}, expected ${expected ?? 'unknown'})`,
      { hint: `Remove ${here} and run the backup again.` },
    );
  }
  const lines = ['meta.tar.age', file, ...imagePairs.map(([n]) => n)]
    .map((n) => `${got.get(n)}  ${n}\n`)
    .join('');
  await rt.exec('write-sums', {}, { stdin: lines });
  rt.task.log(
    `checked here: ciphertext sums match the host's; the archive inside is sha256 ${plain}`,
  );
  rt.task.hostState('controller', `encrypted copy at ${here} (no plaintext here)`);
  const out: Record<string, Json> = {
    dir: here,
    bytes,
    seconds,
    sha256: plain,
    encrypted: true,
    images: images.length,
  };
  return out;
}

async function run(rt: Runtime) {
  const { params, roles, inventory, options } = rt.ctx;
  const src = roles[params.from]!;
  const dir = runDir(inventory, src, options.runId);
  const name = dir.slice(dir.lastIndexOf('/') + 1);
  if (!options.fetch) throw new FerryError('fetch needs --fetch DIR');
  const here = `${options.fetch}/${name}`;
  if (recipientsOf(rt.ctx).length > 0) return runEncrypted(rt, src.name, dir, here);
  const moved = await rt.stream('fetch');
  rt.task.log(`${formatBytes(moved.bytes)} from ${src.name} in ${moved.seconds.toFixed(1)} s`);
  const said = (await rt.exec('check-here')).stdout;
  const sha256 = /^([0-9a-f]{64}) /m.exec(said)?.[1];
  const expected = archiveSum(rt, dir);
  if (!sha256 || (expected !== undefined && expected !== sha256)) {
    throw new FerryError(
      `the copy in ${here} does not match the archive on ${src.name} (sha256 ${sha256 ?? 'unknown'}, expected ${String(expected)})`,
      { hint: `Remove ${here} and run the backup again.` },
    );
  }
  rt.task.log(`checked here: archive sha256 ${sha256}, exports and images match their SHA256SUMS`);
  rt.task.hostState('controller', `copy at ${here}`);
  const out: Record<string, Json> = {
    dir: here,
    bytes: moved.bytes,
    seconds: moved.seconds,
    sha256,
  };
  return out;
}

export default task.runs(run);
