/**
 * A service as `otto cluster status` shows it: desired against running replicas, where, health, errors.
 * A replica on a node that does not answer shows its last known state, marked stale: unreachable is not
 * gone. Pure: computed from the plan and what the agents report.
 */
import type { ServiceConfig } from '../config/schema.js';
import type { ReplicaState } from '../protocol/messages.js';
import type { ReplicaView, ServiceView, ViolationView } from '../http/schemas.js';
import type { ServiceSpecs } from './ledger.js';
import type { NodeLifecycle } from './node-lifecycle.js';
import type { Placement } from './placement.js';

export interface ServiceViewFacts {
  /** The replica's state as its node last reported it, and when. */
  reported: (nodeId: string, replicaName: string) => { state: ReplicaState; at?: number } | undefined;
  nodeState: (nodeId: string) => NodeLifecycle;
  replicaName: (replica: number) => string;
  specs?: ServiceSpecs;
  /** A move under way of the replica: its copy on `from` serves until the one on `to` runs. */
  migration?: (replica: number) => { from: string; to: string } | undefined;
  violations?: ViolationView[];
}

const isUp = (r: ReplicaView) => r.state === 'running' && r.health !== 'unhealthy';

export function serviceView(service: ServiceConfig, placement: Placement, facts: ServiceViewFacts): ServiceView {
  const assignments = placement.assignments.filter((a) => a.service === service.name);
  const replicas: ReplicaView[] = assignments.map(({ replica, nodeId }) => {
    const name = facts.replicaName(replica);
    const nodeState = facts.nodeState(nodeId);
    const known = facts.reported(nodeId, name);
    const migration = facts.migration?.(replica);
    if (migration && known?.state.state !== 'running') {
      // The replica still serves from where it is moving away: shown there, with where it goes.
      const source = facts.reported(migration.from, name);
      const sourceState = facts.nodeState(migration.from);
      if (source) {
        const at = source.at === undefined ? null : new Date(source.at).toISOString();
        return { ...source.state, node: migration.from, node_state: sourceState, stale: sourceState !== 'online', reported_at: at, migrating_to: migration.to };
      }
    }
    const reportedAt = known?.at === undefined ? null : new Date(known.at).toISOString();
    if (known) return { ...known.state, node: nodeId, node_state: nodeState, stale: nodeState !== 'online', reported_at: reportedAt, ...(migration ? { migrating_to: migration.to } : {}) };
    return {
      service: service.name,
      replica,
      name,
      node: nodeId,
      node_state: nodeState,
      stale: nodeState !== 'online',
      reported_at: null,
      state: 'missing',
      health: 'none',
      error: nodeState === 'online' ? undefined : `node ${nodeId} is ${nodeState}; no report of this replica yet`,
    };
  });
  const errors = [
    ...placement.unplaced.filter((u) => u.service === service.name).map((u) => `replica ${u.replica} not placed: ${u.reason}`),
    ...replicas.filter((r) => r.error && !r.stale).map((r) => `${r.name}: ${r.error}`),
    ...replicas.filter((r) => r.stale).map((r) => `${r.name}: node ${r.node} is ${r.node_state}; last known state ${r.state}${r.reported_at ? ` at ${r.reported_at}` : ''}`),
  ];
  const running = replicas.filter(isUp).length;
  const stale = replicas.filter((r) => r.stale && isUp(r)).length;
  const desired = assignments.length + placement.unplaced.filter((u) => u.service === service.name).length;
  return {
    name: service.name,
    image: service.image,
    desired,
    running,
    stale,
    nodes: [...new Set(assignments.map((a) => a.nodeId))],
    revision: facts.specs?.current ?? 1,
    hold: facts.specs?.hold?.message ?? null,
    state: serviceState(desired, running, replicas),
    health: serviceHealth(replicas, Boolean(service.healthcheck)),
    ports: service.ports.map(String),
    replicas,
    errors,
    violations: facts.violations ?? [],
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
