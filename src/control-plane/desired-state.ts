/**
 * What every node must run, computed from the config and the placement. Pure.
 */
import type { OttoConfig, ServiceConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { containerName } from '../protocol/labels.js';
import type { DesiredState, ReplicaSpec } from '../protocol/messages.js';
import { specHash } from '../protocol/spec-hash.js';
import { containerSpecOf } from './container-spec.js';
import { placeReplicas, type Placement } from './placement.js';

export interface ClusterPlan {
  placement: Placement;
  /** Per node id, the replicas it must run (every node of the config has an entry, maybe empty). */
  replicasByNode: Map<string, ReplicaSpec[]>;
}

export function planCluster(config: OttoConfig, replicasOf?: (service: ServiceConfig) => number): ClusterPlan {
  const placement = placeReplicas(config, replicasOf);
  const services = new Map(config.services.map((s) => [s.name, s]));
  const specs = new Map(config.services.map((s) => [s.name, containerSpecOf(s)]));
  const replicasByNode = new Map<string, ReplicaSpec[]>(config.nodes.map((n) => [n.id, []]));
  for (const { service, replica, nodeId } of placement.assignments) {
    const container = specs.get(service)!;
    replicasByNode.get(nodeId)!.push({
      service: services.get(service)!.name,
      replica,
      name: containerName(config.cluster.name, service, replica),
      spec_hash: specHash(container),
      container,
    });
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
