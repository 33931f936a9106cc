/**
 * The predicates of the agent's inputs (inputs.ts), compiled from their zod schemas
 * (protocol/check-codegen.ts); scripts/build-cli.mjs writes them to dist/agent/input-checks.js, before the
 * agent is bundled. Used at build time and by tests only.
 */
import { outputJsonSchema, type JsonSchema } from '../protocol/check-codegen.js';
import { INPUT_SCHEMAS } from './inputs.js';

/** The JSON Schema of each input of INPUT_SCHEMAS. */
export async function inputJsonSchemas(): Promise<Record<string, JsonSchema>> {
  const entries = await Promise.all(Object.entries(INPUT_SCHEMAS).map(async ([name, load]) => [name, outputJsonSchema(await load())] as const));
  return Object.fromEntries(entries);
}
