import type { CommandContext } from '../cli.js';
import { FerryError } from '../errors.js';

export async function plan(_ctx: CommandContext): Promise<number> {
  throw new FerryError('`ferry plan` is not built yet');
}
