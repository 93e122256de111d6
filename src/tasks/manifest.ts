/**
 * The manifest: what the source held and how each part was made, written by
 * the `inventory` task, travelling with the archive (manifest.json) and read
 * by every later step (which apps to rebuild and how, which services to start).
 */

/** How an app was deployed, from its `deploy-source` property (reference §5.4-5.6). */
export type DeployMethod = 'git' | 'image' | 'archive' | 'none';

/** One app of the source. */
export interface ManifestApp {
  name: string;
  method: DeployMethod;
  /** `deploy-source` as Dokku recorded it (`git-push`, `docker-image`, `tar`, …), or null. */
  deploySource: string | null;
  /** The image (image apps), the archive URL/path (archive apps), or the sha (git). */
  deploySourceMetadata: string | null;
  deployed: boolean;
  /** `ps:report`'s Running: true, false or mixed. */
  running: 'true' | 'false' | 'mixed';
  /** The ps restore property (automatic restart at boot). */
  restore: boolean;
  /** Locked by the user with `apps:lock` (an empty deploy lock): deploys refused, kept on the target. */
  locked?: boolean;
  mounts: { hostPath: string; containerPath: string }[];
}

/** One datastore service of the source. */
export interface ManifestService {
  plugin: string;
  name: string;
  image: string;
  imageVersion: string;
  links: string[];
  /** `PLUGIN:info --status` on the source (`running`, `stopped`, …); absent in older manifests. */
  status?: string;
}

/** What a datastore plugin of the source can do (see dokku/plugins `PluginCapabilities`). */
export interface ManifestDatastore {
  implemented: string[];
  unimplemented: string[];
  known: boolean;
}

/** One plugin of the source. */
export interface ManifestPlugin {
  name: string;
  version: string;
  enabled: boolean;
  core: boolean;
}

/** What the command line chose (see selection.ts). Empty lists: no choice. */
export interface Selection {
  /** `--app NAME`: these apps (and the services linked to them). */
  apps: string[];
  /** `--exclude-app NAME`. */
  excludeApps: string[];
  /** `--service PLUGIN/NAME`: these services. */
  services: string[];
  /** `--exclude-service PLUGIN/NAME`: left out, even when linked to a chosen app. */
  excludeServices: string[];
}

/** What a manifest records of the selection that made it (an archive carries it). */
export interface ManifestSelection {
  /** The flags as given (the last selection applied). */
  asked: Selection;
  /** Apps and services (`plugin/name`) of the source that were not taken: removed on the target. */
  dropped: { apps: string[]; services: string[] };
  /** Why each taken service came: `asked`, `linked to a, b`, or `every service`. */
  taken: Record<string, string>;
  /** A taken app's link to a service left out: unlinked on the target (its URL variable goes). */
  cut: { service: string; app: string }[];
}

/** Everything the later steps need to know about the source. */
export interface Manifest {
  version: 1;
  runId: string;
  createdAt: string;
  source: {
    host: string;
    address: string;
    dokkuVersion: string;
    arch: string;
    /** The dokku user's uid and gid: the archive keeps owners as numbers (absent in older manifests). */
    dokkuUid?: number;
    dokkuGid?: number;
  };
  apps: ManifestApp[];
  services: ManifestService[];
  plugins: ManifestPlugin[];
  /** Capabilities of each datastore plugin with services, by plugin name (absent in older manifests). */
  datastores?: Record<string, ManifestDatastore>;
  networks: string[];
  /** Size of the Dokku paths, bytes (du). */
  dataBytes: number;
  warnings: string[];
  /** Set when --app/--service/--exclude-* chose part of the source: what was left out and why. */
  selection?: ManifestSelection;
  /** Set once a restore's --rename is done: old name → new (services as `plugin/old`). */
  renamed?: { apps: Record<string, string>; services: Record<string, string> };
}

/**
 * The manifest a run's later steps work with: the last one an earlier step
 * left (the inventory's, an archive's, then the selection's, the rename's).
 */
export function latestManifest(
  outputs: Readonly<Record<string, { manifest?: unknown }>>,
): Manifest | undefined {
  let found: unknown;
  for (const out of Object.values(outputs)) {
    if (out.manifest !== undefined && out.manifest !== null && typeof out.manifest === 'object') {
      found = out.manifest;
    }
  }
  return found as Manifest | undefined;
}

/** Reads a manifest from JSON text, checking its version. */
export function parseManifest(text: string): Manifest {
  const m = JSON.parse(text) as Manifest;
  if (m.version !== 1 || !Array.isArray(m.apps) || !Array.isArray(m.services)) {
    throw new Error('not a dokku-ferry manifest (version 1)');
  }
  return m;
}
