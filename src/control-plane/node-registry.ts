/**
 * What the control plane knows of every node: its status, its latest metrics and a bounded history,
 * what it runs. A node is online while its status says so and it has been heard from within the
 * heartbeat timeout (3 metrics intervals).
 */
import type { ContainerMetricsBatch, NodeMetrics, NodeState, NodeStatus } from '../protocol/messages.js';

export const HISTORY_LENGTH = 720;

export interface NodeRecord {
  id: string;
  status?: NodeStatus;
  lastSeen?: number;
  metrics?: NodeMetrics;
  history: NodeMetrics[];
  containers?: ContainerMetricsBatch;
  state?: NodeState;
}

export class NodeRegistry {
  private readonly nodes = new Map<string, NodeRecord>();

  constructor(
    nodeIds: string[],
    private heartbeatTimeoutMs: number,
  ) {
    this.setNodes(nodeIds);
  }

  /** Keeps the records of nodes still configured, adds new ones, forgets removed ones. */
  setNodes(nodeIds: string[], heartbeatTimeoutMs = this.heartbeatTimeoutMs): void {
    this.heartbeatTimeoutMs = heartbeatTimeoutMs;
    for (const id of [...this.nodes.keys()]) if (!nodeIds.includes(id)) this.nodes.delete(id);
    for (const id of nodeIds) if (!this.nodes.has(id)) this.nodes.set(id, { id, history: [] });
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  all(): NodeRecord[] {
    return [...this.nodes.values()];
  }

  isOnline(id: string, now = Date.now()): boolean {
    const node = this.nodes.get(id);
    if (!node?.status || node.status.state !== 'online' || node.lastSeen === undefined) return false;
    return now - node.lastSeen <= this.heartbeatTimeoutMs;
  }

  /** Returns false for a node that is not in the config: its messages are ignored. */
  recordStatus(status: NodeStatus, now = Date.now()): boolean {
    const node = this.nodes.get(status.node_id);
    if (!node) return false;
    node.status = status;
    if (status.state === 'online') node.lastSeen = now;
    return true;
  }

  recordMetrics(metrics: NodeMetrics, now = Date.now()): boolean {
    const node = this.heard(metrics.node_id, now);
    if (!node) return false;
    node.metrics = metrics;
    node.history.push(metrics);
    if (node.history.length > HISTORY_LENGTH) node.history.splice(0, node.history.length - HISTORY_LENGTH);
    return true;
  }

  recordContainers(batch: ContainerMetricsBatch, now = Date.now()): boolean {
    const node = this.heard(batch.node_id, now);
    if (!node) return false;
    node.containers = batch;
    return true;
  }

  recordState(state: NodeState, now = Date.now()): boolean {
    const node = this.heard(state.node_id, now);
    if (!node) return false;
    node.state = state;
    return true;
  }

  private heard(id: string, now: number): NodeRecord | undefined {
    const node = this.nodes.get(id);
    if (node) node.lastSeen = now;
    return node;
  }
}
