/**
 * What every node must run, computed from the config, the placement, the spec revisions (updates) and the
 * ledger (scales, restart generations), plus the copies a lost node keeps until it hands them over. Pure.
 */
import type { OttoConfig, ServiceConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { containerName } from '../protocol/labels.js';
import type { ContainerSpec, DesiredState, ReplicaSpec } from '../protocol/messages.js';
import { specHash } from '../protocol/spec-hash.js';
import { containerSpecOf } from './container-spec.js';
import { placeReplicas, replicaKey, type Placement, type PlacementInput } from './placement.js';

/** Label carrying a replica's restart generation: a new value changes the spec hash, so the agent replaces the container. */
export const RESTART_LABEL = 'otto.restart';

export type UpdateOrder = 'stop-first' | 'start-first';

export interface ClusterPlan {
  placement: Placement;
  /** Per node id, the replicas it must run (every node of the config has an entry, maybe empty). */
  replicasByNode: Map<string, ReplicaSpec[]>;
  /** `service#index` -> node. */
  assignments: Map<string, string>;
}

export interface PlanInput extends PlacementInput {
  generationOf?: (service: string, replica: number) => number;
  /** The spec a replica must run (its spec revision); the config's by default. */
  specOf?: (service: ServiceConfig, replica: number) => ContainerSpec;
  /** Replicas a node keeps although they are assigned elsewhere (a lost node's copies, until handed over). */
  held?: Map<string, ReplicaSpec[]>;
}

/**
 * The order the agent replaces a replica in: the service's `update.order`, except that start-first needs
 * two containers of the replica at once, which cannot both bind a host port.
 */
export function updateOrderOf(service: ServiceConfig): { order: UpdateOrder; note?: string } {
  const wanted = service.update?.order ?? 'stop-first';
  if (wanted === 'start-first' && service.ports.length > 0) {
    return { order: 'stop-first', note: `stop-first: start-first needs the host port free (${service.name} binds ${service.ports.join(', ')})` };
  }
  return { order: wanted };
}

/** The container of each spec and restart generation, with its hash: every reconcile plans every replica. */
const hashed = new WeakMap<ContainerSpec, Map<number, { container: ContainerSpec; hash: string }>>();

function hashedContainer(base: ContainerSpec, generation: number): { container: ContainerSpec; hash: string } {
  let byGeneration = hashed.get(base);
  if (!byGeneration) hashed.set(base, (byGeneration = new Map()));
  let entry = byGeneration.get(generation);
  if (!entry) {
    const container = generation > 0 ? { ...base, labels: { ...base.labels, [RESTART_LABEL]: String(generation) } } : base;
    entry = { container, hash: specHash(container) };
    byGeneration.set(generation, entry);
  }
  return entry;
}

export function replicaSpec(cluster: string, service: string, replica: number, base: ContainerSpec, generation: number, order?: UpdateOrder): ReplicaSpec {
  const { container, hash } = hashedContainer(base, generation);
  return {
    service,
    replica,
    name: containerName(cluster, service, replica),
    spec_hash: hash,
    container,
    ...(order === 'start-first' ? { update_order: order } : {}),
  };
}

export function planCluster(config: OttoConfig, input: PlanInput = {}): ClusterPlan {
  const placement = placeReplicas(config, input);
  const generationOf = input.generationOf ?? (() => 0);
  // Only without specOf: the config's specs need the secrets' hashes, which the caller's specOf knows.
  const configSpecs = input.specOf ? undefined : new Map(config.services.map((s) => [s.name, containerSpecOf(s)]));
  const specOf = input.specOf ?? ((service: ServiceConfig) => configSpecs!.get(service.name)!);
  const services = new Map(config.services.map((s) => [s.name, s]));
  const replicasByNode = new Map<string, ReplicaSpec[]>(config.nodes.map((n) => [n.id, []]));
  const assignments = new Map<string, string>();
  for (const { service: name, replica, nodeId } of placement.assignments) {
    const service = services.get(name)!;
    assignments.set(replicaKey(name, replica), nodeId);
    replicasByNode
      .get(nodeId)!
      .push(replicaSpec(config.cluster.name, name, replica, specOf(service, replica), generationOf(name, replica), updateOrderOf(service).order));
  }
  for (const [nodeId, held] of input.held ?? []) {
    const list = replicasByNode.get(nodeId);
    if (!list) continue;
    for (const spec of held) if (!list.some((r) => r.name === spec.name)) list.push(spec);
  }
  return { placement, replicasByNode, assignments };
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
