/**
 * Notices the lifecycle transitions of the nodes (online, unreachable, lost: node-lifecycle.ts) as time
 * passes and messages arrive, and says each one once, with when a node last came online (what a handover
 * and rebalancing judge a returning node by). A node the control plane has not heard from since it started
 * counts as unreachable, so its first message is a transition to online.
 */
import type { NodeLifecycle } from './node-lifecycle.js';
import type { NodeRegistry } from './node-registry.js';

export interface LifecycleTransition {
  nodeId: string;
  state: NodeLifecycle;
  /** How long it has been silent (unreachable, lost). */
  silentMs?: number;
  lostAfterMs: number;
}

export class LifecycleWatch {
  private readonly states = new Map<string, NodeLifecycle>();
  private readonly onlineAt = new Map<string, number>();

  constructor(private readonly registry: NodeRegistry) {}

  /** Nodes of the config not seen yet start unreachable; nodes gone are forgotten. */
  track(nodeIds: string[]): void {
    const ids = new Set(nodeIds);
    for (const id of nodeIds) if (!this.states.has(id)) this.states.set(id, 'unreachable');
    for (const id of [...this.states.keys()]) if (!ids.has(id)) this.states.delete(id);
  }

  onlineSince(nodeId: string): number | undefined {
    return this.onlineAt.get(nodeId);
  }

  /** The transitions up to `now` (of every node, or of one), each recorded so it is said once. */
  note(now: number, onlyNode?: string): LifecycleTransition[] {
    const transitions: LifecycleTransition[] = [];
    const one = onlyNode === undefined ? undefined : this.registry.get(onlyNode);
    for (const node of one ? [one] : this.registry.all()) {
      const { state, unreachableSince } = this.registry.lifecycle(node.id, now);
      if (state === this.states.get(node.id)) continue;
      this.states.set(node.id, state);
      if (state === 'online') this.onlineAt.set(node.id, now);
      transitions.push({ nodeId: node.id, state, lostAfterMs: node.lostAfterMs, ...(unreachableSince === undefined ? {} : { silentMs: now - unreachableSince }) });
    }
    return transitions;
  }
}
