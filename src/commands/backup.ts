import type { CommandContext } from '../cli.js';
import { FerryError } from '../errors.js';

export async function backup(_ctx: CommandContext): Promise<number> {
  throw new FerryError('`ferry backup` is not built yet');
}
