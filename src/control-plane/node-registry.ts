/**
 * What the control plane knows of every node: its status, its latest metrics and a compact history
 * (metrics-history.ts), what
 * it runs (its last state report), and where it is in its lifecycle (node-lifecycle.ts): online while its
 * status says so and it was heard from within the heartbeat timeout (3 metrics intervals), unreachable
 * after that, lost after its lost_after.
 */
import type { ContainerMetricsBatch, NodeMetrics, NodeState, NodeStatus } from '../protocol/messages.js';
import { MetricsHistory } from './metrics-history.js';
import { nodeLifecycle, type LifecycleState } from './node-lifecycle.js';

export interface NodeRecord {
  id: string;
  lostAfterMs: number;
  status?: NodeStatus;
  lastSeen?: number;
  metrics?: NodeMetrics;
  history: MetricsHistory;
  containers?: ContainerMetricsBatch;
  state?: NodeState;
  /** When the last state report arrived (not the agent's clock). */
  stateReceivedAt?: number;
}

export interface NodeSettings {
  id: string;
  lostAfterMs: number;
}

export class NodeRegistry {
  private readonly nodes = new Map<string, NodeRecord>();

  constructor(
    nodes: NodeSettings[],
    private heartbeatTimeoutMs: number,
    /** When the control plane started watching: nodes not heard from since are unreachable from then. */
    private readonly watchingSince = Date.now(),
  ) {
    this.setNodes(nodes);
  }

  /** Keeps the records of nodes still configured, adds new ones, forgets removed ones. */
  setNodes(nodes: NodeSettings[], heartbeatTimeoutMs = this.heartbeatTimeoutMs): void {
    this.heartbeatTimeoutMs = heartbeatTimeoutMs;
    const ids = new Set(nodes.map((n) => n.id));
    for (const id of [...this.nodes.keys()]) if (!ids.has(id)) this.nodes.delete(id);
    for (const { id, lostAfterMs } of nodes) {
      const record = this.nodes.get(id);
      if (record) record.lostAfterMs = lostAfterMs;
      else this.nodes.set(id, { id, lostAfterMs, history: new MetricsHistory(id) });
    }
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  all(): NodeRecord[] {
    return [...this.nodes.values()];
  }

  lifecycle(id: string, now = Date.now()): LifecycleState {
    const node = this.nodes.get(id);
    return nodeLifecycle(
      {
        saysOnline: node?.status?.state === 'online',
        lastSeen: node?.lastSeen,
        heartbeatTimeoutMs: this.heartbeatTimeoutMs,
        lostAfterMs: node?.lostAfterMs ?? Number.POSITIVE_INFINITY,
        watchingSince: this.watchingSince,
      },
      now,
    );
  }

  isOnline(id: string, now = Date.now()): boolean {
    return this.lifecycle(id, now).state === 'online';
  }

  /**
   * What a previous control plane last knew of a node (its status snapshot): shown as stale until the node
   * speaks. Never counts as hearing from it.
   */
  seed(id: string, known: { lastSeen?: number; state?: NodeState; status?: NodeStatus }): void {
    const node = this.nodes.get(id);
    if (!node || node.lastSeen !== undefined || node.state) return;
    node.state = known.state;
    node.status = known.status && { ...known.status, state: 'offline' };
    node.stateReceivedAt = known.lastSeen;
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
    node.stateReceivedAt = now;
    return true;
  }

  private heard(id: string, now: number): NodeRecord | undefined {
    const node = this.nodes.get(id);
    if (node) node.lastSeen = now;
    return node;
  }
}
