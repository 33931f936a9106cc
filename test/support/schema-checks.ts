/**
 * Testing predicates compiled from zod schemas (src/protocol/check-codegen.ts): a predicate that says true
 * must mean zod accepts the value and returns it unchanged. Used by the CLI's answer checks and the
 * agent's input checks.
 */
import type { z } from 'zod';
import { expect } from 'vitest';
import { compileChecks, type JsonSchema } from '../../src/protocol/check-codegen.js';

export type Check = (value: unknown) => boolean;

/** The predicates, as the build writes them, evaluated here. */
export function compile(jsonSchemas: Record<string, JsonSchema>): { checks: Record<string, Check>; deferred: string[] } {
  const { body, table, deferred } = compileChecks(jsonSchemas);
  return { checks: new Function(`${body}\nreturn ${table};`)() as Record<string, Check>, deferred };
}

const WRONG_VALUES: unknown[] = [null, 0, -1, 1.5, 2 ** 60, '', 'x', '2024-13-01T00:00:00Z', true, [], {}, [1], { x: 1 }];

/** Every value reachable in `value`, each replaced by wrong ones, deleted, or given an unknown key. */
export function* mutations(value: unknown): Generator<unknown> {
  for (const wrong of WRONG_VALUES) yield wrong;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      for (const mutated of mutations(value[i])) yield value.map((item, j) => (j === i ? mutated : item));
      yield value.filter((_, j) => j !== i);
    }
  } else if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    yield { ...record, unexpected: 1 };
    for (const key of Object.keys(record)) {
      for (const mutated of mutations(record[key])) yield { ...record, [key]: mutated };
      const { [key]: _, ...without } = record;
      yield without;
    }
  }
}

/** Fails on the first sample its predicate refuses, naming it. */
export function expectEverySampleAccepted(checks: Record<string, Check>, samples: Record<string, unknown[]>): void {
  for (const [name, values] of Object.entries(samples)) {
    for (const value of values) expect(checks[name]!(value), `${name}: ${JSON.stringify(value)}`).toBe(true);
  }
}

/**
 * Tries every mutation of every sample against its predicate and its zod schema, failing on any the
 * predicate accepts and zod refuses or changes. Returns how many were tried, refused by the predicate, and
 * refused by zod.
 */
export function expectNoPredicateBeyondZod(checks: Record<string, Check>, samples: Record<string, unknown[]>, schemaOf: (name: string) => z.ZodType) {
  const counts = { tried: 0, rejected: 0, zodRejected: 0 };
  for (const [name, values] of Object.entries(samples)) {
    const schema = schemaOf(name);
    for (const value of values) {
      for (const mutated of mutations(value)) {
        counts.tried++;
        const parsed = schema.safeParse(mutated);
        if (!parsed.success) counts.zodRejected++;
        if (checks[name]!(mutated)) {
          expect(parsed.success, `${name} accepted ${JSON.stringify(mutated)}`).toBe(true);
          expect(parsed.data).toStrictEqual(mutated);
        } else {
          counts.rejected++;
        }
      }
    }
  }
  return counts;
}
