/**
 * The otto.yaml shape of NFR rules (per service, and cluster-wide defaults) and of migration: how the
 * control plane acts on a violation, and within which limits. schema.ts places these.
 */
import { z } from 'zod';
import { duration } from './fields.js';
import { NFR_METRICS, NFR_RULE_PATTERN, parseNfrRule } from './nfr-rules.js';

const rule = z
  .string()
  .superRefine((text, ctx) => {
    try {
      parseNfrRule(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', input: text, message: (err as Error).message });
    }
  })
  .meta({
    pattern: NFR_RULE_PATTERN,
    examples: ['node.cpu_percent < 85 for 1m', 'memory_percent < 90 for 30s'],
    description: `"METRIC <|<=|>|>= NUMBER [for DURATION]" (default for 1m); METRIC: ${NFR_METRICS.join(', ')} (node.*: the node the replica runs on; the others: the replica's container, memory_percent of its limit)`,
  });

export const nfrActionSchema = z
  .enum(['migrate', 'restart', 'alert'])
  .describe('migrate: move the replica to another node (migration.strategy); restart: restart it; alert: only report the violation');

const nfrFields = {
  rules: z.array(rule).max(16).default([]).describe('What the service needs; a rule is violated when it fails for its whole window'),
  action: nfrActionSchema.optional().describe('What a violation does (default alert)'),
};

export const serviceNfrSchema = z.strictObject(nfrFields).optional().describe("The service's NFR rules; without them, the cluster-wide nfr");
export const nfrDefaultsSchema = z
  .strictObject(nfrFields)
  .default({ rules: [] })
  .describe('NFR rules for every service that has none of its own');

export const migrationSchema = z
  .strictObject({
    strategy: z
      .enum(['least-loaded', 'spread'])
      .default('least-loaded')
      .describe('least-loaded: the matching node with the most headroom on the violated resource after the move; spread: the one with the fewest replicas of the service'),
    mode: z.enum(['auto', 'advise']).default('auto').describe('auto: act on violations; advise: only record what would be done (events, `otto cluster plan`)'),
    cooldown: duration().default('10m').describe('A replica moved (or restarted for a violation) is not moved again for this long'),
    max_in_flight: z.number().int().min(1).max(100).default(2).describe('Moves under way at once, cluster-wide'),
    rebalance: z.enum(['off', 'auto']).default('off').describe('auto: spread replicas back over the nodes when one comes back or joins, within the same limits'),
  })
  .default({ strategy: 'least-loaded', mode: 'auto', cooldown: '10m', max_in_flight: 2, rebalance: 'off' })
  .describe('How replicas move for NFR violations and rebalancing');

export type MigrationConfig = z.infer<typeof migrationSchema>;
