/**
 * Decides what every node must run now, from the config, the ledger and what the nodes report: placement
 * (stable; an unreachable node keeps its replicas, a lost one gives them up to nodes that can take them),
 * the spec revision and restart generation of each replica, and the handover of a lost node's copies
 * when it comes back. The decisions are the pure functions of placement.ts, handover.ts and
 * desired-state.ts; this class gathers their facts and records their outcome in the ledger.
 */
import type { OttoConfig, ServiceConfig } from '../config/schema.js';
import type { ClusterEvent } from '../http/schemas.js';
import type { DesiredState, ReplicaSpec } from '../protocol/messages.js';
import { containerSpecOf, type SecretDigests } from './container-spec.js';
import { planCluster, replicaSpec, updateOrderOf, type ClusterPlan, type PlanInput } from './desired-state.js';
import { newMoves, planHandover, type Move } from './handover.js';
import type { Ledger } from './ledger.js';
import type { NodeLifecycle } from './node-lifecycle.js';
import type { NodeRegistry } from './node-registry.js';
import { replicaKey } from './placement.js';
import { revisionOf } from './spec-revisions.js';

export interface PlannerHost {
  config(): OttoConfig;
  ledger: Ledger;
  registry: NodeRegistry;
  /** Replicas a service must have now (config, or a scale that still holds). */
  replicasOf(service: ServiceConfig): number;
  /** When the node last came online (for "has it reported since it is back?"). */
  onlineSince(nodeId: string): number | undefined;
  /** Until a node had time to say hello after a start, one never heard from may take new replicas. */
  warmingUp(): boolean;
  lastPublished(nodeId: string): DesiredState | undefined;
  event(event: Omit<ClusterEvent, 'id' | 'time'>): void;
  /** Hashes of the secrets' current values, for the spec of a service not in the ledger yet. */
  secretDigests?(): SecretDigests;
}

const keyOf = (r: { service: string; replica: number }) => replicaKey(r.service, r.replica);
const assignmentMaps = new WeakMap<Record<string, string>, Map<string, string>>();

/** The same replicas on the same nodes, in the same order (the ledger keeps them in plan order). */
function sameAssignments(plan: Map<string, string>, recorded: Record<string, string>): boolean {
  const keys = Object.keys(recorded);
  if (keys.length !== plan.size) return false;
  let i = 0;
  for (const [key, node] of plan) {
    if (keys[i++] !== key || recorded[key] !== node) return false;
  }
  return true;
}

export class ClusterPlanner {
  constructor(private readonly host: PlannerHost) {}

  compute(now = Date.now()): ClusterPlan {
    const { ledger, registry } = this.host;
    const config = this.host.config();
    const data = ledger.data;
    const lifecycle = (id: string): NodeLifecycle => registry.lifecycle(id, now).state;
    const warmingUp = this.host.warmingUp();
    let previous = this.previousAssignments();
    const digests = this.host.secretDigests?.();
    const specs = new Map(config.services.map((s) => [s.name, containerSpecOf(s, digests)]));
    const input: PlanInput = {
      replicasOf: (s) => this.host.replicasOf(s),
      previous,
      available: (id) => lifecycle(id) === 'online' || (warmingUp && registry.get(id)?.lastSeen === undefined),
      keeps: (id) => lifecycle(id) !== 'lost',
      generationOf: (service, replica) => data.generations[service]?.[replica] ?? 0,
      specOf: (service, replica) => {
        const entry = data.specs[service.name];
        return entry ? revisionOf(entry, replica).spec : specs.get(service.name)!;
      },
    };
    let plan = planCluster(config, input);

    const recorded = new Set(data.moves.map((m) => m.key));
    for (const move of newMoves(data.assignments, plan.assignments, lifecycle, recorded)) {
      data.moves.push({ ...move, at: new Date(now).toISOString() });
      const [service, replica] = move.key.split('#');
      this.host.event({
        kind: 'replica-moved',
        node: move.to,
        service,
        replica: Number(replica),
        message: `${service}#${replica} started on ${move.to}: node ${move.from} is lost (its copy keeps running there until it is back and hands over)`,
      });
    }

    const handover = planHandover(data.moves, {
      assignmentOf: (key) => plan.assignments.get(key),
      lifecycleOf: lifecycle,
      reportedSinceBack: (id) => (registry.get(id)?.stateReceivedAt ?? 0) > (this.host.onlineSince(id) ?? Number.POSITIVE_INFINITY),
      readinessOn: (key, id) => {
        const r = this.reported(key, id);
        if (lifecycle(id) !== 'online' || !r) return lifecycle(id) === 'online' ? 'starting' : 'failed';
        if (r.state === 'running' && (r.health === 'healthy' || r.health === 'none')) return 'ready';
        if (r.error || r.health === 'unhealthy' || r.state === 'exited' || r.state === 'dead') return 'failed';
        return 'starting';
      },
      runningOn: (key, id) => this.reported(key, id)?.state === 'running',
    });
    if (handover.outcomes.length > 0) {
      const ended = new Set(handover.outcomes.map((o) => o.move));
      data.moves = data.moves.filter((m) => !ended.has(m as Move));
      let givenBack = false;
      for (const { kind, move } of handover.outcomes) {
        const [service, replica] = move.key.split('#');
        const subject = { service, replica: Number(replica), node: move.from };
        if (kind === 'released') {
          this.host.event({ kind: 'replica-released', ...subject, message: `${service}#${replica}: ${move.from} is back; its copy stops gracefully, the replacement on ${move.to} serves` });
        } else if (kind === 'given-back') {
          // The map is shared with later plans (previousAssignments): changed on a copy.
          if (!givenBack) previous = new Map(previous);
          previous.set(move.key, move.from);
          givenBack = true;
          this.host.event({ kind: 'replica-released', ...subject, message: `${service}#${replica} stays on ${move.from} (back); its replacement on ${move.to} was not ready and is removed` });
        }
      }
      if (givenBack) plan = planCluster(config, { ...input, previous });
    }
    // A migration under way: the source keeps serving its copy until the target's is ready (migration-runner.ts).
    const held = new Map(handover.held);
    for (const m of data.migrations) if (plan.assignments.get(m.key) === m.to) held.set(m.from, [...(held.get(m.from) ?? []), m.key]);
    if (held.size > 0) plan = planCluster(config, { ...input, previous, held: this.heldSpecs(held, config) });

    if (handover.outcomes.length > 0 || !sameAssignments(plan.assignments, data.assignments)) {
      data.assignments = Object.fromEntries(plan.assignments);
      ledger.saveSoon();
    }
    return plan;
  }

  /**
   * Where each replica was assigned: the ledger's record, or (a ledger from before assignments were kept)
   * where its container ran. The ledger's record is replaced, never changed, so its map is made once.
   */
  private previousAssignments(): Map<string, string> {
    const { data } = this.host.ledger;
    const recorded = assignmentMaps.get(data.assignments);
    if (recorded) return recorded;
    if (Object.keys(data.assignments).length > 0) {
      const map = new Map(Object.entries(data.assignments));
      assignmentMaps.set(data.assignments, map);
      return map;
    }
    const previous = new Map<string, string>();
    for (const record of data.replicas) if (!record.removed) previous.set(keyOf(record), record.node);
    return previous;
  }

  private reported(key: string, nodeId: string) {
    return this.host.registry.get(nodeId)?.state?.replicas.find((r) => keyOf(r) === key);
  }

  /** A held copy keeps the spec its node was last sent, so a node coming back does not replace a copy it is about to drop. */
  private heldSpecs(held: Map<string, string[]>, config: OttoConfig): Map<string, ReplicaSpec[]> {
    const result = new Map<string, ReplicaSpec[]>();
    for (const [nodeId, keys] of held) {
      const last = this.host.lastPublished(nodeId)?.replicas ?? [];
      const specs: ReplicaSpec[] = [];
      for (const key of keys) {
        const known = last.find((r) => keyOf(r) === key);
        if (known) {
          specs.push(known);
          continue;
        }
        const [name, index] = key.split('#') as [string, string];
        const service = config.services.find((s) => s.name === name);
        const entry = this.host.ledger.data.specs[name];
        if (!service || !entry) continue;
        const replica = Number(index);
        const generation = this.host.ledger.data.generations[name]?.[replica] ?? 0;
        specs.push(replicaSpec(config.cluster.name, name, replica, revisionOf(entry, replica).spec, generation, updateOrderOf(service).order));
      }
      result.set(nodeId, specs);
    }
    return result;
  }
}
