/**
 * Message schemas of the wire protocol. Agents and the control plane both import this module; every
 * message is validated with these schemas when it is received. Field names of the metrics messages are
 * those of seed 004 (NodeMetrics, ContainerMetrics, ContainerMetricsBatch).
 */
import { z } from 'zod';
import { registryRefSchema, secretRefSchema } from './secrets.js';

const isoTimestamp = z.iso.datetime({ offset: true });

export const nodeMetricsSchema = z.object({
  node_id: z.string().min(1),
  timestamp: isoTimestamp,
  cpu_percent: z.number().min(0),
  memory_percent: z.number().min(0),
  memory_used_mb: z.number().min(0),
  memory_total_mb: z.number().min(0),
  disk_percent: z.number().min(0),
  disk_used_gb: z.number().min(0),
  disk_total_gb: z.number().min(0),
  network_bytes_sent: z.number().int().min(0),
  network_bytes_recv: z.number().int().min(0),
  /** Otto's addition: the node's cores, to weigh a container's CPU (100 % = one core) on the node's (100 % = all). */
  cpu_count: z.number().int().min(1).optional(),
});
export type NodeMetrics = z.infer<typeof nodeMetricsSchema>;

export const containerMetricsSchema = z.object({
  container_id: z.string().min(1),
  container_name: z.string(),
  cpu_percent: z.number().min(0),
  memory_percent: z.number().min(0),
  memory_usage_mb: z.number().min(0),
  memory_limit_mb: z.number().min(0),
  network_rx_bytes: z.number().int().min(0),
  network_tx_bytes: z.number().int().min(0),
  block_read_bytes: z.number().int().min(0),
  block_write_bytes: z.number().int().min(0),
  /** Otto's additions: which service replica the container is (absent for containers Otto does not manage). */
  service: z.string().optional(),
  replica: z.number().int().optional(),
});
export type ContainerMetrics = z.infer<typeof containerMetricsSchema>;

export const containerMetricsBatchSchema = z.object({
  node_id: z.string().min(1),
  timestamp: isoTimestamp,
  containers: z.array(containerMetricsSchema),
});
export type ContainerMetricsBatch = z.infer<typeof containerMetricsBatchSchema>;

export const dockerHealthSchema = z.object({
  reachable: z.boolean(),
  version: z.string().optional(),
  error: z.string().optional(),
});
export type DockerHealth = z.infer<typeof dockerHealthSchema>;

export const nodeStatusSchema = z.object({
  node_id: z.string().min(1),
  state: z.enum(['online', 'offline']),
  timestamp: isoTimestamp,
  reason: z.string().optional(),
  agent_version: z.string().optional(),
  pid: z.number().int().optional(),
  hostname: z.string().optional(),
  arch: z.string().optional(),
  platform: z.string().optional(),
});
export type NodeStatus = z.infer<typeof nodeStatusSchema>;

export const portMappingSchema = z.object({
  host_ip: z.string().optional(),
  host_port: z.number().int().min(1).max(65535),
  container_port: z.number().int().min(1).max(65535),
  protocol: z.enum(['tcp', 'udp']),
});
export type PortMapping = z.infer<typeof portMappingSchema>;

export const restartPolicySchema = z.enum(['no', 'always', 'on-failure', 'unless-stopped']);
export type RestartPolicy = z.infer<typeof restartPolicySchema>;

/** A container fully resolved by the control plane: the agent needs no config to run it. */
export const containerSpecSchema = z.object({
  image: z.string().min(1),
  command: z.array(z.string()).optional(),
  env: z.record(z.string(), z.string()),
  ports: z.array(portMappingSchema),
  volumes: z.array(z.string()),
  restart: restartPolicySchema,
  labels: z.record(z.string(), z.string()),
  healthcheck: z
    .object({
      test: z.array(z.string()).min(1),
      interval_ms: z.number().int().min(0),
      timeout_ms: z.number().int().min(0),
      retries: z.number().int().min(0),
      start_period_ms: z.number().int().min(0),
    })
    .optional(),
  nano_cpus: z.number().int().min(0).optional(),
  memory_bytes: z.number().int().min(0).optional(),
  /** Docker's init process as PID 1 (tini): signals reach the workload. */
  init: z.boolean().optional(),
  /** Docker's StopSignal; absent: SIGTERM. */
  stop_signal: z.string().min(1).optional(),
  /** How long a stop waits after the signal before it kills; absent: 10 s (Docker's and Compose's default). */
  stop_grace_ms: z.number().int().min(0).optional(),
  /** Secrets mounted read-only at /run/secrets/NAME, by name and hash of the value (never the value), sorted by name. */
  secrets: z.array(secretRefSchema).optional(),
});
export type ContainerSpec = z.infer<typeof containerSpecSchema>;

export const replicaSpecSchema = z.object({
  service: z.string().min(1),
  replica: z.number().int().min(1),
  /** Docker container name, Compose style: {cluster}-{service}-{replica}. */
  name: z.string().min(1),
  spec_hash: z.string().min(1),
  container: containerSpecSchema,
  /**
   * How the agent replaces this replica's container when its spec changes: stop-first (the old one stops,
   * then the new one starts) or start-first (the new one runs and is ready before the old one stops). The
   * control plane sends start-first only where no host port would collide. Not part of the spec hash.
   */
  update_order: z.enum(['stop-first', 'start-first']).optional(),
});
export type ReplicaSpec = z.infer<typeof replicaSpecSchema>;

export const desiredStateSchema = z.object({
  cluster: z.string().min(1),
  node_id: z.string().min(1),
  /** Grows with every change, so an agent can tell which desired state a report answers. */
  revision: z.number().int().min(0),
  generated_at: isoTimestamp,
  /** Agent settings that come from the cluster config, so a remote agent needs no copy of otto.yaml. */
  settings: z.object({ metrics_interval_ms: z.number().int().min(100) }),
  replicas: z.array(replicaSpecSchema),
  /** Registries whose credential the control plane sends this node (by hash); other hosts use the node's own docker login. */
  registries: z.array(registryRefSchema).optional(),
});
export type DesiredState = z.infer<typeof desiredStateSchema>;

/**
 * A desired state whose replicas are left to check one by one (agent/desired-decode.ts): a replica the
 * agent cannot run fails alone, with its reason in the node's state, and the others run.
 */
export const desiredEnvelopeSchema = desiredStateSchema.extend({ replicas: z.array(z.unknown()) });
export type DesiredEnvelope = z.infer<typeof desiredEnvelopeSchema>;

export const replicaStateSchema = z.object({
  service: z.string(),
  replica: z.number().int(),
  name: z.string(),
  container_id: z.string().optional(),
  /** Docker's state, or what the agent is doing about a replica that has no container yet. */
  state: z.enum(['running', 'created', 'restarting', 'exited', 'paused', 'dead', 'removing', 'pulling', 'missing', 'error']),
  health: z.enum(['healthy', 'unhealthy', 'starting', 'none']),
  spec_hash: z.string().optional(),
  started_at: z.string().optional(),
  error: z.string().optional(),
  /** Exit code of a stopped container. */
  exit_code: z.number().int().optional(),
  /** The image of the replica's desired spec is being pulled. */
  pull: z
    .object({
      image: z.string(),
      percent: z.number().min(0).max(100).optional(),
      bytes_done: z.number().int().min(0).optional(),
      bytes_total: z.number().int().min(0).optional(),
    })
    .optional(),
  /** After a failure, when the agent tries again (exponential backoff). */
  retry_at: isoTimestamp.optional(),
});
export type ReplicaState = z.infer<typeof replicaStateSchema>;

export const nodeStateSchema = z.object({
  node_id: z.string().min(1),
  timestamp: isoTimestamp,
  revision: z.number().int().min(-1),
  docker: dockerHealthSchema,
  replicas: z.array(replicaStateSchema),
  /** Containers of this cluster on the node on their way out (being stopped and removed): those of replicas no longer desired, and the old copy of a replica whose new container is ready. */
  leaving: z
    .array(z.object({ name: z.string(), service: z.string(), replica: z.number().int(), state: z.string() }))
    .optional(),
  /** `name@hash` of secrets the desired state needs and the node lacks: the control plane sends them again. */
  missing_secrets: z.array(z.string()).optional(),
  /** `host@hash` of registry credentials the desired state names and the node lacks. */
  missing_registries: z.array(z.string()).optional(),
});
export type NodeState = z.infer<typeof nodeStateSchema>;

export const logsRequestSchema = z.object({
  request_id: z.string().regex(/^[\w-]{6,64}$/),
  container: z.string().min(1),
  follow: z.boolean(),
  tail: z.number().int().min(0).optional(),
  /**
   * Flow control by the requester: the agent sends at most this many chunks beyond the `received` its
   * keepalives confirm, so a slow or killed reader stops the agent's reading. Absent: broker acks only.
   */
  window: z.number().int().min(1).optional(),
});
export type LogsRequest = z.infer<typeof logsRequestSchema>;

/** `keepalive` every few seconds while a request is served; without it the agent ends the stream. */
export const logsControlSchema = z.object({
  request_id: z.string(),
  action: z.enum(['keepalive', 'cancel']),
  /** With `keepalive`: how many chunks (seq 0 up to received - 1) the requester has printed. */
  received: z.number().int().min(0).optional(),
});
export type LogsControl = z.infer<typeof logsControlSchema>;

export const logsChunkSchema = z.object({
  request_id: z.string(),
  seq: z.number().int().min(0),
  lines: z.array(z.object({ stream: z.enum(['stdout', 'stderr']), text: z.string() })),
  end: z.boolean().optional(),
  error: z.string().optional(),
});
export type LogsChunk = z.infer<typeof logsChunkSchema>;

/** A device asks to join through a node pool (it holds the pool's bootstrap token). */
export const joinRequestSchema = z.object({
  request_id: z.string().regex(/^[\w-]{16,64}$/),
  /** The id it asks for (`--node-id`); by default one is made from its hostname. */
  node_id: z.string().max(63).optional(),
  hostname: z.string().min(1).max(253),
  arch: z.string().max(32).optional(),
  platform: z.string().max(32).optional(),
  /** X25519 public key (SPKI, base64): the credential comes back sealed for it (security/join-seal.ts). */
  public_key: z.string().min(40).max(200),
});
export type JoinRequest = z.infer<typeof joinRequestSchema>;

export const joinReplySchema = z.object({
  request_id: z.string(),
  cluster: z.string(),
  ok: z.boolean(),
  node_id: z.string().optional(),
  error: z.string().optional(),
  /** The node's password, sealed for the requester's key. */
  credential: z.object({ public_key: z.string(), iv: z.string(), ciphertext: z.string(), tag: z.string() }).optional(),
});
export type JoinReply = z.infer<typeof joinReplySchema>;
