/** Command-line options several commands share. */
import type { CommandContext } from '../cli.js';
import { UsageError } from '../errors.js';
import type { Route } from '../tasks/types.js';

/** `--route direct|relay|auto`, checked. */
export function routeOption(ctx: CommandContext): { route?: Route } {
  const r = ctx.values.route;
  if (r === undefined) return {};
  if (r === 'direct' || r === 'relay' || r === 'auto') return { route: r };
  throw new UsageError(`--route must be direct, relay or auto, got "${String(r)}"`);
}
