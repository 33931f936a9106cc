/**
 * A service as `otto cluster status` shows it: desired against running replicas, where, health, errors.
 * Pure: computed from the plan and what the agents report.
 */
import type { ServiceConfig } from '../config/schema.js';
import type { ReplicaState } from '../protocol/messages.js';
import type { ReplicaView, ServiceView } from '../http/schemas.js';
import type { Placement } from './placement.js';

export function serviceView(
  service: ServiceConfig,
  placement: Placement,
  reportedState: (nodeId: string, replicaName: string) => ReplicaState | undefined,
  replicaName: (replica: number) => string,
  nodeOnline: (nodeId: string) => boolean,
): ServiceView {
  const assignments = placement.assignments.filter((a) => a.service === service.name);
  const replicas: ReplicaView[] = assignments.map(({ replica, nodeId }) => {
    const name = replicaName(replica);
    const reported = reportedState(nodeId, name);
    return reported
      ? { ...reported, node: nodeId }
      : {
          service: service.name,
          replica,
          name,
          node: nodeId,
          state: 'missing',
          health: 'none',
          error: nodeOnline(nodeId) ? undefined : `node ${nodeId} is offline`,
        };
  });
  const errors = [
    ...placement.unplaced.filter((u) => u.service === service.name).map((u) => `replica ${u.replica} not placed: ${u.reason}`),
    ...replicas.filter((r) => r.error).map((r) => `${r.name}: ${r.error}`),
  ];
  const running = replicas.filter((r) => r.state === 'running' && r.health !== 'unhealthy').length;
  const desired = assignments.length + placement.unplaced.filter((u) => u.service === service.name).length;
  return {
    name: service.name,
    image: service.image,
    desired,
    running,
    nodes: [...new Set(assignments.map((a) => a.nodeId))],
    state: serviceState(desired, running, replicas),
    health: serviceHealth(replicas, Boolean(service.healthcheck)),
    ports: service.ports.map(String),
    replicas,
    errors,
  };
}

function serviceState(desired: number, running: number, replicas: ReplicaView[]): ServiceView['state'] {
  if (desired === 0) return 'stopped';
  if (running >= desired) return 'running';
  if (replicas.some((r) => r.state === 'error' || r.health === 'unhealthy' || r.state === 'exited' || r.state === 'dead')) {
    return running > 0 ? 'degraded' : 'failing';
  }
  return 'starting';
}

function serviceHealth(replicas: ReplicaView[], hasHealthcheck: boolean): ServiceView['health'] {
  if (!hasHealthcheck || replicas.length === 0) return 'none';
  if (replicas.some((r) => r.health === 'unhealthy')) return 'unhealthy';
  if (replicas.every((r) => r.health === 'healthy')) return 'healthy';
  return 'starting';
}
