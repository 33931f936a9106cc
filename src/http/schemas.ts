/**
 * Shapes of the control plane's HTTP API. The CLI validates what it receives with these same schemas.
 */
import { z } from 'zod';
import { MAX_REPLICAS } from '../config/limits.js';
import { containerMetricsBatchSchema, dockerHealthSchema, nodeMetricsSchema, replicaStateSchema } from '../protocol/messages.js';

export const nodeViewSchema = z.object({
  id: z.string(),
  host: z.string(),
  local: z.boolean(),
  online: z.boolean(),
  /** online; unreachable (missed heartbeats: its replicas stay, shown with their last known state); lost (after lost_after: replicas move). */
  state: z.enum(['online', 'unreachable', 'lost']),
  /** When the node stopped answering (null while online). */
  unreachable_since: z.string().nullable(),
  last_seen: z.string().nullable(),
  agent_version: z.string().nullable(),
  arch: z.string().nullable(),
  agent_pid: z.number().nullable(),
  /** Remote nodes: connected, connecting, reconnecting, disconnected or `failed: REASON`; null for local ones. */
  ssh_state: z.string().nullable().optional(),
  docker: dockerHealthSchema.nullable(),
  /** Its labels in otto.yaml (placement, and searching a fleet on the dashboard). */
  labels: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  metrics: nodeMetricsSchema.nullable(),
  containers: containerMetricsBatchSchema.shape.containers,
});
export type NodeView = z.infer<typeof nodeViewSchema>;

export const replicaViewSchema = replicaStateSchema.extend({
  node: z.string(),
  /** The state of the node that runs the replica; on an unreachable node the replica shows its last known state. */
  node_state: z.enum(['online', 'unreachable', 'lost']),
  /** The last known state comes from a node that does not answer: it may have changed since `reported_at`. */
  stale: z.boolean(),
  /** When the node last reported on this replica. */
  reported_at: z.string().nullable(),
  /** A move under way: the replica starts on this node while its copy on `node` keeps serving. */
  migrating_to: z.string().optional(),
});
export type ReplicaView = z.infer<typeof replicaViewSchema>;

/** An NFR rule a replica violates now (see `nfr` in otto.yaml). */
export const violationViewSchema = z.object({
  replica: z.number().int(),
  node: z.string(),
  rule: z.string(),
  metric: z.string(),
  threshold: z.number(),
  since: z.string().describe('when the requirement started to fail (the start of the window that made it a violation)'),
  value: z.number().describe('the latest sample'),
  failing: z.boolean().describe('the latest sample still fails the requirement (false: back inside, not cleared yet)'),
  action: z.enum(['migrate', 'restart', 'alert']),
});
export type ViolationView = z.infer<typeof violationViewSchema>;

export const serviceViewSchema = z.object({
  name: z.string(),
  image: z.string(),
  desired: z.number().int(),
  /** Replicas running as last reported, including those on unreachable nodes (`stale` of them). */
  running: z.number().int(),
  stale: z.number().int(),
  nodes: z.array(z.string()),
  /** The spec revision new replicas get; replicas still on another are being updated (or the update paused). */
  revision: z.number().int(),
  /** Why the spec in otto.yaml is not being rolled out (an update paused or rolled back), null otherwise. */
  hold: z.string().nullable(),
  state: z.enum(['running', 'starting', 'degraded', 'failing', 'stopped']),
  health: z.enum(['healthy', 'unhealthy', 'starting', 'none']),
  ports: z.array(z.string()),
  replicas: z.array(replicaViewSchema),
  errors: z.array(z.string()),
  violations: z.array(violationViewSchema).default([]),
});
export type ServiceView = z.infer<typeof serviceViewSchema>;

/** A mutating operation on a service: queued, run one at a time in FIFO order, kept in the ledger. */
/** One replica moved by a migrate operation: started on `to`, then its copy on `from` stopped. */
export const moveSchema = z.object({
  service: z.string(),
  replica: z.number().int(),
  from: z.string(),
  to: z.string(),
  reason: z.string(),
  state: z.enum(['pending', 'starting', 'done', 'failed']),
  message: z.string().optional(),
});
export type MoveView = z.infer<typeof moveSchema>;

export const operationSchema = z.object({
  id: z.string(),
  kind: z.enum(['scale', 'restart', 'rolling-restart', 'update', 'rollback', 'migrate']),
  service: z.string().describe('the service; for a migrate, the services it moves, comma-separated'),
  replicas: z.number().int().optional().describe('target of a scale'),
  replica: z.number().int().optional().describe('a restart of this replica only (an NFR action)'),
  moves: z.array(moveSchema).optional().describe('the moves of a migrate'),
  state: z.enum(['queued', 'running', 'succeeded', 'failed', 'paused', 'rolled-back', 'noop']),
  requested_at: z.string(),
  started_at: z.string().optional(),
  finished_at: z.string().optional(),
  progress: z.object({ done: z.number().int(), total: z.number().int() }).optional(),
  message: z.string().optional(),
});
export type Operation = z.infer<typeof operationSchema>;

export const clusterStatusSchema = z.object({
  cluster: z.object({
    name: z.string(),
    config_path: z.string(),
    config_hash: z.string(),
    /** Why the last edit of otto.yaml was rejected (the previous config still runs). */
    config_error: z.string().nullable(),
    started_at: z.string(),
    pid: z.number().int(),
    mqtt_url: z.string(),
    embedded_broker: z.boolean(),
  }),
  nodes: z.array(nodeViewSchema),
  services: z.array(serviceViewSchema),
  /** Services whose running replicas differ from the desired ones. */
  drift: z.array(z.object({ service: z.string(), desired: z.number().int(), running: z.number().int(), since: z.string() })),
  /** The operation under way, and those waiting behind it (FIFO). */
  operation: operationSchema.nullable(),
  queue: z.array(operationSchema),
  counters: z.object({ messages_received: z.number().int(), invalid_messages: z.number().int() }),
});
export type ClusterStatus = z.infer<typeof clusterStatusSchema>;

export const clusterEventSchema = z.object({
  id: z.number().int().describe('grows by one with every event'),
  time: z.string(),
  kind: z.enum([
    'node-online',
    'node-offline',
    'node-unreachable',
    'node-lost',
    'replica-moved',
    'replica-released',
    'remote-agent-ok',
    'remote-agent-failed',
    'credential-rotated',
    'node-joined',
    'node-removed',
    'replica-died',
    'nfr-violated',
    'nfr-cleared',
    'migration-advised',
    'migration-blocked',
    'replica-migrated',
    'migration-failed',
    'replica-healed',
    'drift-found',
    'drift-cleared',
    'config-reloaded',
    'config-rejected',
    'operation-queued',
    'operation-started',
    'operation-progress',
    'operation-finished',
    'control-plane-started',
    'control-plane-stopped',
  ]),
  node: z.string().optional(),
  service: z.string().optional(),
  replica: z.number().int().optional(),
  message: z.string(),
});
export type ClusterEvent = z.infer<typeof clusterEventSchema>;

export const scaleRequestSchema = z.strictObject({ replicas: z.number().int().min(0).max(MAX_REPLICAS) });
export const restartRequestSchema = z.strictObject({ rolling: z.boolean().default(false) });
export const moveRequestSchema = z.strictObject({
  replica: z.number().int().min(1).max(MAX_REPLICAS).describe('the replica to move (1, 2, ...)'),
  to: z.string().min(1).describe('the node it moves to'),
});
export const rebalanceRequestSchema = z.strictObject({ dry_run: z.boolean().default(false).describe('only say what would move') });

/** What the control plane would do now about NFR violations and balance (`otto cluster plan`), without doing it. */
export const plannedMoveSchema = z.object({
  action: z.enum(['move', 'restart', 'blocked', 'wait']),
  service: z.string(),
  replica: z.number().int(),
  from: z.string(),
  to: z.string().optional(),
  reason: z.string(),
});
export const migrationPlanSchema = z.object({
  mode: z.enum(['auto', 'advise']),
  strategy: z.enum(['least-loaded', 'spread']),
  violations: z.array(violationViewSchema.extend({ service: z.string() })),
  nfr: z.array(plannedMoveSchema).describe('what the violations call for'),
  rebalance: z.array(plannedMoveSchema).describe('what `otto cluster rebalance` would move'),
});
export type MigrationPlan = z.infer<typeof migrationPlanSchema>;
/** A rebalance: the operation queued, or (a dry run, or nothing to move) the moves it would make. */
export const rebalanceResultSchema = z.object({ operation: operationSchema.nullable(), moves: z.array(plannedMoveSchema) });

/** What the server-sent event stream carries; `type` is the SSE event name. */
export type LiveEvent =
  | { type: 'node-metrics'; data: import('../protocol/messages.js').NodeMetrics }
  | { type: 'status'; data: ClusterStatus }
  | { type: 'event'; data: ClusterEvent }
  | { type: 'operation'; data: Operation };

/** Every error answer of the API: what went wrong, with the field named for a bad request. */
export const errorSchema = z.object({
  error: z.string(),
  hint: z.string().optional(),
  issues: z.array(z.object({ field: z.string(), message: z.string() })).optional().describe('every problem found in a bad request'),
});
export type ApiError = z.infer<typeof errorSchema>;

export const healthSchema = z.object({ ok: z.literal(true) });

export const rotationSchema = z.object({ node: z.string(), rotated_at: z.string() });
export type Rotation = z.infer<typeof rotationSchema>;

export const removalSchema = z.object({ node: z.string(), removed_at: z.string() });
export type Removal = z.infer<typeof removalSchema>;

export const nodeListSchema = z.array(nodeViewSchema);
export const nodeMetricsListSchema = z.array(nodeMetricsSchema);
export const serviceListSchema = z.array(serviceViewSchema);
export const operationListSchema = z.array(operationSchema);
export const clusterEventListSchema = z.array(clusterEventSchema);

/** Path and query parameters. */
export const nodeParamsSchema = z.object({ id: z.string().min(1).describe('node id, as in otto.yaml') });
export const serviceParamsSchema = z.object({ name: z.string().min(1).describe('service name, as in otto.yaml') });
export const nodeMetricsQuerySchema = z.object({
  since: z
    .string()
    .regex(/^\d{1,15}$|^\d{4}-\d\d-\d\dT/, 'expected an ISO 8601 time or milliseconds since the epoch')
    .refine((value) => !Number.isNaN(/^\d+$/.test(value) ? Number(value) : Date.parse(value)), 'not a valid time')
    .optional()
    .describe('only samples newer than this: an ISO 8601 time or milliseconds since the epoch'),
});
export const eventsQuerySchema = z.object({
  after: z
    .string()
    .regex(/^\d{1,15}$/, 'expected a non-negative integer')
    .optional()
    .describe('only events whose id is greater than this'),
});
export const streamQuerySchema = z.object({
  access_token: z.string().optional().describe('the API token; EventSource cannot send an Authorization header'),
  nodes: z
    .string()
    .max(16_384)
    .regex(/^[a-z0-9,-]*$/, 'expected node ids separated by commas')
    .optional()
    .describe(
      'node ids separated by commas (empty: none): `node-metrics` only for these, and in `status` the metrics and containers of these only (the other nodes with metrics null and no containers). For a client that shows a page of a large fleet.',
    ),
});

/** Milliseconds since the epoch of a `since` parameter already validated by nodeMetricsQuerySchema. */
export function sinceToMs(since: string): number {
  return /^\d+$/.test(since) ? Number(since) : Date.parse(since);
}

/** Event names of GET /api/v1/stream, with the schema of each event's JSON `data`. */
export const liveEventSchemas = {
  'node-metrics': nodeMetricsSchema,
  status: clusterStatusSchema,
  event: clusterEventSchema,
  operation: operationSchema,
} as const;
