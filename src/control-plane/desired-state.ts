/**
 * What every node must run, computed from the config, the placement and the ledger (scales, restart
 * generations). Pure.
 */
import type { OttoConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { containerName } from '../protocol/labels.js';
import type { ContainerSpec, DesiredState, ReplicaSpec } from '../protocol/messages.js';
import { specHash } from '../protocol/spec-hash.js';
import { containerSpecOf } from './container-spec.js';
import { placeReplicas, type Placement, type PlacementInput } from './placement.js';

/** Label carrying a replica's restart generation: a new value changes the spec hash, so the agent replaces the container. */
export const RESTART_LABEL = 'otto.restart';

export interface ClusterPlan {
  placement: Placement;
  /** Per node id, the replicas it must run (every node of the config has an entry, maybe empty). */
  replicasByNode: Map<string, ReplicaSpec[]>;
}

export interface PlanInput extends PlacementInput {
  generationOf?: (service: string, replica: number) => number;
}

export function replicaSpec(cluster: string, service: string, replica: number, base: ContainerSpec, generation: number): ReplicaSpec {
  const container = generation > 0 ? { ...base, labels: { ...base.labels, [RESTART_LABEL]: String(generation) } } : base;
  return { service, replica, name: containerName(cluster, service, replica), spec_hash: specHash(container), container };
}

export function planCluster(config: OttoConfig, input: PlanInput = {}): ClusterPlan {
  const placement = placeReplicas(config, input);
  const generationOf = input.generationOf ?? (() => 0);
  const specs = new Map(config.services.map((s) => [s.name, containerSpecOf(s)]));
  const replicasByNode = new Map<string, ReplicaSpec[]>(config.nodes.map((n) => [n.id, []]));
  for (const { service, replica, nodeId } of placement.assignments) {
    replicasByNode.get(nodeId)!.push(replicaSpec(config.cluster.name, service, replica, specs.get(service)!, generationOf(service, replica)));
  }
  return { placement, replicasByNode };
}

export function desiredStateFor(config: OttoConfig, nodeId: string, replicas: ReplicaSpec[], revision: number): DesiredState {
  return {
    cluster: config.cluster.name,
    node_id: nodeId,
    revision,
    generated_at: new Date().toISOString(),
    settings: { metrics_interval_ms: parseDuration(config.metrics.interval) },
    replicas,
  };
}
