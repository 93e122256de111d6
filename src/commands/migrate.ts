import type { CommandContext } from '../cli.js';
import { FerryError } from '../errors.js';

export async function migrate(_ctx: CommandContext): Promise<number> {
  throw new FerryError('`ferry migrate` is not built yet');
}
