/**
 * The limits of otto.yaml, in one place: what Docker and a node accept, and what keeps a node's desired
 * state, its timers and the control plane's work bounded. The README's "Limits" section and the JSON
 * Schema's descriptions say the same numbers.
 */

/** otto.yaml is read whole and kept in memory (and its hash in the ledger): a fleet's config is a few KB. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Collections inside collections; otto.yaml needs about 6 (services > [0] > healthcheck > test > [0]). */
export const MAX_NESTING = 64;

/** Replicas of one service. Each is a container on some node and a line of every status. */
export const MAX_REPLICAS = 100;
/** Docker refuses a CPU limit below 0.01 ("Range of CPUs is from 0.01 to N"). */
export const MIN_CPUS = 0.01;
/** Above any board Otto runs on; Docker also refuses more than the node's own cores, known only there. */
export const MAX_CPUS = 256;
/** Docker's minimum: "Minimum memory limit allowed is 6MB" (6 MiB). */
export const MIN_MEMORY_BYTES = 6 * 1024 ** 2;
export const MAX_MEMORY_BYTES = 1024 ** 4;
export const MAX_HEALTHCHECK_RETRIES = 100;

/** Services, nodes and the cluster are DNS labels (RFC 1123): container names, topics and folders are built of them. */
export const MAX_NAME_LENGTH = 63;
/** Docker container names are `{cluster}-{service}-{replica}`; names above this length are refused. */
export const MAX_CONTAINER_NAME_LENGTH = 253;

export interface DurationBounds {
  minMs: number;
  maxMs: number;
}
const SECOND = 1_000;
const HOUR = 3_600_000;
/** Timers that tick for ever (metrics, control loop): not so fast they spin, not so slow nothing moves. */
export const TICK_BOUNDS: DurationBounds = { minMs: 100, maxMs: HOUR };
/** How long a node may stay away before its replicas move. */
export const LOST_AFTER_BOUNDS: DurationBounds = { minMs: SECOND, maxMs: 168 * HOUR };
/** Every other duration: healthchecks, update delays, stop grace periods. */
export const DURATION_BOUNDS: DurationBounds = { minMs: 0, maxMs: 24 * HOUR };
