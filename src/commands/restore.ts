import type { CommandContext } from '../cli.js';
import { FerryError } from '../errors.js';

export async function restore(_ctx: CommandContext): Promise<number> {
  throw new FerryError('`ferry restore` is not built yet');
}
