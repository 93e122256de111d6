import type { CommandContext } from '../cli.js';
import { FerryError } from '../errors.js';

export async function drill(_ctx: CommandContext): Promise<number> {
  throw new FerryError('`ferry drill` is not built yet');
}
