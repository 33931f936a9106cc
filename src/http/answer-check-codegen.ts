/**
 * The predicates of the API answers the CLI reads (answers.ts), compiled from the zod schemas of
 * schemas.ts (protocol/check-codegen.ts); scripts/build-cli.mjs writes them to dist/http/answer-checks.js.
 * Used at build time and by tests only.
 */
import { outputJsonSchema, type JsonSchema } from '../protocol/check-codegen.js';
import { ANSWER_SCHEMAS } from './answers.js';
import * as schemas from './schemas.js';

/** The JSON Schema of each answer of ANSWER_SCHEMAS. */
export function answerJsonSchemas(): Record<string, JsonSchema> {
  return Object.fromEntries(Object.entries(ANSWER_SCHEMAS).map(([answer, exported]) => [answer, outputJsonSchema(schemas[exported])]));
}
