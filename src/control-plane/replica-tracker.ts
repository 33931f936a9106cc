/**
 * Follows the replicas the agents report, to tell what happened between two reports: a replica died, a
 * container vanished and was recreated, a dead one is back. Pure: state in, events out.
 */
import type { NodeState, ReplicaState } from '../protocol/messages.js';

export interface ReplicaChange {
  kind: 'replica-died' | 'replica-healed';
  node: string;
  service: string;
  replica: number;
  message: string;
}

export interface ContainerSeen {
  node: string;
  service: string;
  replica: number;
  containerId: string;
}

interface Seen {
  state: ReplicaState['state'];
  health: ReplicaState['health'];
  containerId?: string;
  specHash?: string;
  down: boolean;
}

const isUp = (r: ReplicaState) => r.state === 'running' && r.health !== 'unhealthy';

export class ReplicaTracker {
  /** Per node, per replica name. */
  private readonly seen = new Map<string, Map<string, Seen>>();

  /**
   * Compares a node's report with the previous one. `expectedHash` is the spec the control plane wants for
   * a replica: a container replaced for a new spec (scale, restart, config change) is planned, not a death.
   */
  observe(report: NodeState, expectedHash: (name: string) => string | undefined): { changes: ReplicaChange[]; containers: ContainerSeen[] } {
    const changes: ReplicaChange[] = [];
    const containers: ContainerSeen[] = [];
    // A replica no longer in the node's report (scaled away, moved) starts afresh if it comes back.
    let seen = this.seen.get(report.node_id);
    if (!seen) this.seen.set(report.node_id, (seen = new Map()));
    const reported = new Set(report.replicas.map((r) => r.name));
    for (const name of seen.keys()) if (!reported.has(name)) seen.delete(name);
    for (const replica of report.replicas) {
      const key = replica.name;
      const before = seen.get(key);
      const planned = replica.spec_hash !== expectedHash(replica.name) || (before?.specHash !== undefined && before.specHash !== replica.spec_hash);
      const change = (kind: ReplicaChange['kind'], message: string) =>
        changes.push({ kind, node: report.node_id, service: replica.service, replica: replica.replica, message });
      let down = before?.down ?? false;
      if (before && !planned) {
        if (!before.down && !isUp(replica) && before.state === 'running') {
          down = true;
          change('replica-died', `${replica.name} is ${replica.health === 'unhealthy' ? 'unhealthy' : replica.state}`);
        } else if (before.down && isUp(replica)) {
          down = false;
          change('replica-healed', `${replica.name} is running again`);
        } else if (!before.down && isUp(replica) && before.containerId && replica.container_id && before.containerId !== replica.container_id) {
          change('replica-died', `${replica.name}: container ${before.containerId.slice(0, 12)} disappeared`);
          change('replica-healed', `${replica.name} recreated as ${replica.container_id.slice(0, 12)}`);
        }
      }
      if (planned && isUp(replica)) down = false;
      seen.set(key, { state: replica.state, health: replica.health, containerId: replica.container_id, specHash: replica.spec_hash, down });
      if (replica.container_id) {
        containers.push({ node: report.node_id, service: replica.service, replica: replica.replica, containerId: replica.container_id });
      }
    }
    return { changes, containers };
  }
}
