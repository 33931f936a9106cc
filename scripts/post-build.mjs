// After tsc: make the CLI executable and write schema/otto.schema.json from the zod schema.
import { chmodSync, writeFileSync } from 'node:fs';
import { configJsonSchema } from '../dist/config/schema.js';

chmodSync(new URL('../dist/cli/main.js', import.meta.url), 0o755);
writeFileSync(new URL('../schema/otto.schema.json', import.meta.url), JSON.stringify(configJsonSchema(), null, 2) + '\n');
