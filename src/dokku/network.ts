/**
 * `network:list [--format json]` (reference §9). The stdout order is Go map
 * order (random), so results are sorted. JSON since 0.35.3; `DokkuManaged` since 0.38.22.
 */
import { bodyLines, type CommandOutput, expectSuccess, jsonObjects, str } from './output.js';

/** One docker network as `network:list --format json` describes it. */
export interface NetworkInfo {
  name: string;
  driver: string;
  scope: string;
  internal: boolean;
  ipv6: boolean;
  /** Undefined before 0.38.22. */
  dokkuManaged?: boolean;
  labels: Record<string, string>;
}

/** Parses `network:list` stdout: names, sorted (the command prints them in random order). */
export function parseNetworkList(out: CommandOutput): string[] {
  expectSuccess('network:list', out);
  return bodyLines(out.stdout)
    .map((l) => l.trim())
    .sort();
}

/** Parses `network:list --format json`, sorted by name. */
export function parseNetworkListJson(out: CommandOutput): NetworkInfo[] {
  return jsonObjects('network:list', out)
    .map((o) => {
      const labels: Record<string, string> = {};
      if (o.Labels && typeof o.Labels === 'object' && !Array.isArray(o.Labels)) {
        for (const [k, val] of Object.entries(o.Labels)) {
          if (typeof val === 'string') labels[k] = val;
        }
      }
      const info: NetworkInfo = {
        name: str(o, 'Name'),
        driver: str(o, 'Driver'),
        scope: str(o, 'Scope'),
        internal: o.Internal === true,
        ipv6: o.IPv6 === true,
        labels,
      };
      if (typeof o.DokkuManaged === 'boolean') info.dokkuManaged = o.DokkuManaged;
      return info;
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
