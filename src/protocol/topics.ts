/**
 * MQTT topics spoken between agents and the control plane (seed 004 plus status/desired/state).
 * Every topic lives under otto/nodes/{node_id}/...
 */
export const TOPIC_ROOT = 'otto/nodes';

export const topics = {
  nodeMetrics: (nodeId: string) => `${TOPIC_ROOT}/${nodeId}/metrics/node`,
  containerMetrics: (nodeId: string) => `${TOPIC_ROOT}/${nodeId}/metrics/containers`,
  /** Retained; the agent's last will sets it offline. */
  status: (nodeId: string) => `${TOPIC_ROOT}/${nodeId}/status`,
  /** Retained, QoS 1: what the node must run. Published by the control plane. */
  desired: (nodeId: string) => `${TOPIC_ROOT}/${nodeId}/desired`,
  /** What the node runs, published by the agent after every reconcile. */
  state: (nodeId: string) => `${TOPIC_ROOT}/${nodeId}/state`,
  /** A client asks a node's agent for a container's logs, keeps a follow alive, or cancels it. */
  logsRequest: (nodeId: string) => `${TOPIC_ROOT}/${nodeId}/logs/request`,
  logsControl: (nodeId: string) => `${TOPIC_ROOT}/${nodeId}/logs/control`,
  /** The agent streams the lines of one request here: under its own prefix, the only place it may publish. */
  logsStream: (nodeId: string, requestId: string) => `${TOPIC_ROOT}/${nodeId}/logs/stream/${requestId}`,
  /** A device asks to join through a pool (published by the pool's identity); the answer comes on joinReply. */
  joinRequest: (pool: string, requestId: string) => `otto/join/${pool}/${requestId}`,
  joinReply: (pool: string, requestId: string) => `otto/join/${pool}/${requestId}/reply`,
  /** Values of secrets and registry credentials for this node only; QoS 1, never retained. */
  secrets: (nodeId: string) => `${TOPIC_ROOT}/${nodeId}/secrets`,
} as const;

/** Subscriptions the control plane makes: every node, every kind it consumes. */
export const controlPlaneSubscriptions = [
  `${TOPIC_ROOT}/+/metrics/node`,
  `${TOPIC_ROOT}/+/metrics/containers`,
  `${TOPIC_ROOT}/+/status`,
  `${TOPIC_ROOT}/+/state`,
  'otto/join/+/+',
];

export type TopicKind = 'nodeMetrics' | 'containerMetrics' | 'status' | 'desired' | 'state';

const suffixToKind: Record<string, TopicKind> = {
  'metrics/node': 'nodeMetrics',
  'metrics/containers': 'containerMetrics',
  status: 'status',
  desired: 'desired',
  state: 'state',
};

/** Splits `otto/nodes/{id}/{suffix}` into the node id and the message kind; undefined for anything else. */
export function parseTopic(topic: string): { nodeId: string; kind: TopicKind } | undefined {
  if (!topic.startsWith(`${TOPIC_ROOT}/`)) return undefined;
  const rest = topic.slice(TOPIC_ROOT.length + 1);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const kind = suffixToKind[rest.slice(slash + 1)];
  return kind ? { nodeId: rest.slice(0, slash), kind } : undefined;
}
