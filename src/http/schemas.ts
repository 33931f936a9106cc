/**
 * Shapes of the control plane's HTTP API. The CLI validates what it receives with these same schemas.
 */
import { z } from 'zod';
import { containerMetricsBatchSchema, dockerHealthSchema, nodeMetricsSchema, replicaStateSchema } from '../protocol/messages.js';

export const nodeViewSchema = z.object({
  id: z.string(),
  host: z.string(),
  local: z.boolean(),
  online: z.boolean(),
  last_seen: z.string().nullable(),
  agent_version: z.string().nullable(),
  arch: z.string().nullable(),
  agent_pid: z.number().nullable(),
  docker: dockerHealthSchema.nullable(),
  metrics: nodeMetricsSchema.nullable(),
  containers: containerMetricsBatchSchema.shape.containers,
});
export type NodeView = z.infer<typeof nodeViewSchema>;

export const replicaViewSchema = replicaStateSchema.extend({ node: z.string() });
export type ReplicaView = z.infer<typeof replicaViewSchema>;

export const serviceViewSchema = z.object({
  name: z.string(),
  image: z.string(),
  desired: z.number().int(),
  running: z.number().int(),
  nodes: z.array(z.string()),
  state: z.enum(['running', 'starting', 'degraded', 'failing', 'stopped']),
  health: z.enum(['healthy', 'unhealthy', 'starting', 'none']),
  ports: z.array(z.string()),
  replicas: z.array(replicaViewSchema),
  errors: z.array(z.string()),
});
export type ServiceView = z.infer<typeof serviceViewSchema>;

export const clusterStatusSchema = z.object({
  cluster: z.object({
    name: z.string(),
    config_path: z.string(),
    config_hash: z.string(),
    started_at: z.string(),
    pid: z.number().int(),
    mqtt_url: z.string(),
    embedded_broker: z.boolean(),
  }),
  nodes: z.array(nodeViewSchema),
  services: z.array(serviceViewSchema),
  counters: z.object({ messages_received: z.number().int(), invalid_messages: z.number().int() }),
});
export type ClusterStatus = z.infer<typeof clusterStatusSchema>;
