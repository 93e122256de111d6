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
}

/** Reads a manifest from JSON text, checking its version. */
export function parseManifest(text: string): Manifest {
  const m = JSON.parse(text) as Manifest;
  if (m.version !== 1 || !Array.isArray(m.apps) || !Array.isArray(m.services)) {
    throw new Error('not a dokku-ferry manifest (version 1)');
  }
  return m;
}
