/**
 * Writes (or, with --check, compares) the published JSON Schemas in schemas/,
 * generated from the TypeScript schemas and the task catalogue, so the files
 * editors read can never differ from what ferry checks.
 *   npm run schemas            write them
 *   node dist/src/schema/publish.js --check   exit 1 when a file is stale
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { TASKS } from '../tasks/index.js';
import { ansibleInventorySchema } from './ansible-inventory.js';
import { inventorySchema } from './inventory.js';
import { publishedPlaybookSchema } from './playbook.js';

/** The schemas folder of the package. */
export const SCHEMAS_DIR = fileURLToPath(new URL('../../../schemas/', import.meta.url));

/** File name → exact content of each published schema. */
export function publishedSchemas(): Record<string, string> {
  const text = (o: object) => `${JSON.stringify(o, null, 2)}\n`;
  return {
    'inventory.schema.json': text(inventorySchema),
    'ansible-inventory.schema.json': text(ansibleInventorySchema),
    'playbook.schema.json': text(publishedPlaybookSchema(TASKS)),
  };
}

/** Names of the schema files that differ from what `publishedSchemas` gives. */
export async function staleSchemas(dir = SCHEMAS_DIR): Promise<string[]> {
  const stale: string[] = [];
  for (const [name, content] of Object.entries(publishedSchemas())) {
    const current = await readFile(`${dir}${name}`, 'utf8').catch(() => '');
    if (current !== content) stale.push(name);
  }
  return stale;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--check')) {
    const stale = await staleSchemas();
    for (const s of stale) process.stderr.write(`schemas/${s} is stale: run \`npm run schemas\`\n`);
    return stale.length === 0 ? 0 : 1;
  }
  for (const [name, content] of Object.entries(publishedSchemas())) {
    await writeFile(`${SCHEMAS_DIR}${name}`, content);
    process.stdout.write(`wrote schemas/${name}\n`);
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
