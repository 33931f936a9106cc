/**
 * Predicates that tell, without loading zod, whether an input of the agent is one zod would accept
 * unchanged. This file is a stand-in: the build (scripts/build-cli.mjs) replaces dist/agent/input-checks.js
 * with the predicates compiled from the schemas of inputs.ts (input-check-codegen.ts). Without them (tests
 * that run the sources), every input is checked by zod itself.
 */
import type { InputName } from './inputs.js';

export const inputChecks: Partial<Record<InputName, (value: unknown) => boolean>> = {};
