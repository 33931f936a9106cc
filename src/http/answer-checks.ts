/**
 * Predicates that tell, without loading zod, whether an API answer is one zod would accept unchanged.
 * This file is a stand-in: the build (scripts/build-cli.mjs) replaces dist/http/answer-checks.js with the
 * predicates compiled from the zod schemas of schemas.ts (answer-check-codegen.ts). Without them (tests
 * that run the sources), every answer is parsed by zod itself.
 */
import type { AnswerName } from './answers.js';

export const answerChecks: Partial<Record<AnswerName, (value: unknown) => boolean>> = {};
