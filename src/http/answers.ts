/**
 * What the CLI accepts from the control plane's API, checked without loading zod on the way: zod and the
 * schemas take longer to load than all the rest of `otto cluster status`. An answer the build's
 * predicate accepts (answer-checks.ts) is what zod would return unchanged, so it is returned as it is;
 * any other goes to the zod schema itself, which strips what it does not know or fails naming the field.
 * The zod schemas of schemas.ts stay the one definition of the API.
 */
import { answerChecks } from './answer-checks.js';
import type { ClusterStatus, MigrationPlan, Operation, Removal, Rotation } from './schemas.js';

/** POST /api/v1/rebalance (rebalanceResultSchema). */
export interface RebalanceResult {
  operation: Operation | null;
  moves: MigrationPlan['rebalance'];
}

/** Parses an answer; the zod schemas are one too (tests pass them to ApiClient). */
export interface AnswerParser<T> {
  parse(value: unknown): T | Promise<T>;
}

/** Each answer the CLI reads, and the export of schemas.ts that defines it. */
export const ANSWER_SCHEMAS = {
  clusterStatus: 'clusterStatusSchema',
  operation: 'operationSchema',
  operationList: 'operationListSchema',
  rotation: 'rotationSchema',
  removal: 'removalSchema',
  migrationPlan: 'migrationPlanSchema',
  rebalanceResult: 'rebalanceResultSchema',
} as const satisfies Record<string, keyof typeof import('./schemas.js')>;
export type AnswerName = keyof typeof ANSWER_SCHEMAS;

function answer<T>(name: AnswerName): AnswerParser<T> {
  return {
    parse(value) {
      if (answerChecks[name]?.(value)) return value as T;
      return import('./schemas.js').then((schemas) => schemas[ANSWER_SCHEMAS[name]].parse(value) as T);
    },
  };
}

export const answers = {
  clusterStatus: answer<ClusterStatus>('clusterStatus'),
  operation: answer<Operation>('operation'),
  operationList: answer<Operation[]>('operationList'),
  rotation: answer<Rotation>('rotation'),
  removal: answer<Removal>('removal'),
  migrationPlan: answer<MigrationPlan>('migrationPlan'),
  rebalanceResult: answer<RebalanceResult>('rebalanceResult'),
};
