import type { CommandContext } from '../cli.js';
import { FerryError } from '../errors.js';

export async function check(_ctx: CommandContext): Promise<number> {
  throw new FerryError('`ferry check` is not built yet');
}
