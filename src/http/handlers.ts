/**
 * The seam between the HTTP API and the control plane: the API calls only these, so routes, OpenAPI and
 * the dashboard can be built and tested apart from the control loop. Every method is called synchronously
 * on a request (keep them cheap: no I/O); whatever they return is validated with the API's zod schemas
 * before it is sent, and an answer that does not match is a 500 naming the field (a bug to fix here).
 */
import type { NodeMetrics } from '../protocol/messages.js';
import type { ClusterEvent, ClusterStatus, LiveEvent, MigrationPlan, Operation, Removal, Rotation } from './schemas.js';

/** GET /metrics: cumulative since the control plane started. */
export interface ControlPlaneCounters {
  messages_received: number;
  invalid_messages: number;
  /** otto_reconcile_duration_seconds summary: total seconds and number of control-loop reconciles. */
  reconcile_seconds_sum: number;
  reconcile_count: number;
  /** otto_operations_total{result}: finished operations by their final state (succeeded, failed, ...). */
  operations_by_result: Record<string, number>;
}

export interface ApiHandlers {
  /** GET /api/v1/status, /nodes, /services, /services/{name} (404 when the name is not in `services`), /metrics, and SSE `status`. */
  status(): ClusterStatus;
  /** GET /api/v1/nodes/{id}/metrics: samples oldest first, only those newer than `sinceMs` when given; undefined: no such node (404). */
  nodeMetrics(nodeId: string, sinceMs?: number): NodeMetrics[] | undefined;
  /** POST .../scale (202): queue and return at once. NotFoundError -> 404, UsageError -> 400, InfrastructureError -> 503. */
  scale(service: string, replicas: number): Operation;
  /** POST .../restart (202), `rolling` false when the body leaves it out. Same errors as scale. */
  restart(service: string, rolling: boolean): Operation;
  /** POST .../rollback (202): queue a return to the previous spec. Same errors as scale. */
  rollback(service: string): Operation;
  /** POST /api/v1/nodes/{id}/rotate-credentials: the one handler that does I/O (it waits for the node's agent). NotFoundError -> 404. */
  rotateCredentials(nodeId: string): Promise<Rotation>;
  /** POST /api/v1/nodes/{id}/remove: a node that joined through a pool. NotFoundError -> 404, UsageError (declared in otto.yaml) -> 400. */
  removeNode(nodeId: string): Promise<Removal>;
  /** POST .../move (202): a migrate operation of one replica. NotFoundError -> 404 (service, node), UsageError (cannot go there) -> 400. */
  move(service: string, replica: number, to: string): Operation;
  /** POST /api/v1/rebalance: the moves that spread replicas evenly; queued as one migrate operation unless `dryRun`. */
  rebalance(dryRun: boolean): { operation: Operation | null; moves: { service: string; replica: number; from: string; to: string; reason: string }[] };
  /** GET /api/v1/plan: what NFR violations and balance call for now, without acting. */
  migrationPlan(): MigrationPlan;
  /** GET /api/v1/operations: the ledger, oldest first. */
  operations(): Operation[];
  /** GET /api/v1/events?after= and the SSE replay for Last-Event-ID: events with id > afterId, oldest first. */
  events(afterId?: number): ClusterEvent[];
  /**
   * Live updates for GET /api/v1/stream. The API subscribes once, when the first client connects, and calls
   * the returned function when the last one leaves or the server closes. Call the listener synchronously:
   * `node-metrics` for every accepted node metrics message, `event` for every event added to the history
   * (its id is the SSE id), `operation` on every change of an operation's state or progress, and `status`
   * when you like (the API also sends one shortly after every event/operation and every 2 s).
   */
  subscribe(listener: (event: LiveEvent) => void): () => void;
  counters(): ControlPlaneCounters;
}
