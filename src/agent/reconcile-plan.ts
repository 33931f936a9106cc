/**
 * Pure diff of what a node must run against what Docker has: the list of actions that makes them equal.
 * No I/O here, so every case is unit-tested fast. The executor (reconciler.ts) runs the actions.
 */
import type { ReplicaSpec } from '../protocol/messages.js';
import type { ManagedContainer } from '../runtime/docker.js';

export type UpdateOrder = 'stop-first' | 'start-first';

export type ReconcileAction =
  | { kind: 'create'; replica: ReplicaSpec }
  /**
   * The spec changed. stop-first: the old container stops, then the new one is created. start-first: the
   * new one is created under a temporary name (or `next`, one left by an interrupted update, is reused),
   * and the old one stops only once the new one is ready.
   */
  | { kind: 'replace'; replica: ReplicaSpec; old: ManagedContainer; order: UpdateOrder; next?: ManagedContainer }
  | { kind: 'start'; replica: ReplicaSpec; containerId: string }
  /** The replica's container carries a temporary name (start-first) and the real one is free. */
  | { kind: 'rename'; replica: ReplicaSpec; containerId: string }
  /** Not desired any more (scaled down, service removed) or a duplicate of a replica: stopped gracefully, then removed. */
  | { kind: 'remove'; container: ManagedContainer; reason: 'not desired' | 'duplicate' };

export interface PlanFacts {
  /** Replica names and container ids with an action in flight: planned again once it ends. */
  busy?: ReadonlySet<string>;
  /** Containers someone stopped by hand (`docker stop`): `unless-stopped` leaves them stopped, as Docker does. */
  stoppedByHand?: ReadonlySet<string>;
  /**
   * Images being pulled, or whose failed pull waits for its retry: a replica that needs one gets no action
   * until the pull ends (the end triggers a new pass), so the agent does not spin while a registry stalls.
   */
  waitingForImage?: (image: string) => boolean;
  /** Replicas whose secrets or registry credential have not reached the node yet: no new container for them. */
  blocked?: (replica: ReplicaSpec) => boolean;
}

const replicaKey = (service: string, replica: number) => `${service}#${replica}`;

/** The name a start-first update gives the new container until the old one is gone. */
export const temporaryName = (replica: ReplicaSpec) => `${replica.name}-${replica.spec_hash.slice(0, 8)}`;

/** A container of the new spec that is not serving yet: a start-first update is still waiting for it. */
const isReady = (c: ManagedContainer) => c.state === 'running' && (c.health === 'healthy' || c.health === 'none');

/**
 * Whether a stopped container should be started again, with Docker's meaning of each restart policy:
 * `no` never, `on-failure` only after a non-zero exit, `always` whatever the exit, `unless-stopped` unless
 * someone stopped it. A container created but never started is always started.
 */
export function needsStart(container: ManagedContainer, replica: ReplicaSpec, stoppedByHand = false): boolean {
  if (container.state === 'created') return true;
  if (container.state !== 'exited' && container.state !== 'dead') return false;
  switch (replica.container.restart) {
    case 'no':
      return false;
    case 'on-failure':
      return container.exitCode !== 0;
    case 'always':
      return true;
    case 'unless-stopped':
      return !stoppedByHand;
  }
}

export function planReconcile(desired: ReplicaSpec[], actual: ManagedContainer[], facts: PlanFacts = {}): ReconcileAction[] {
  const busy = facts.busy ?? new Set<string>();
  const waiting = (replica: ReplicaSpec) => (facts.waitingForImage?.(replica.container.image) ?? false) || (facts.blocked?.(replica) ?? false);
  const byReplica = new Map<string, ManagedContainer[]>();
  for (const container of actual) {
    const key = replicaKey(container.service, container.replica);
    byReplica.set(key, [...(byReplica.get(key) ?? []), container]);
  }

  const actions: ReconcileAction[] = [];
  const removals: ReconcileAction[] = [];
  for (const replica of desired) {
    const key = replicaKey(replica.service, replica.replica);
    const candidates = byReplica.get(key) ?? [];
    byReplica.delete(key);
    if (busy.has(replica.name) || candidates.some((c) => busy.has(c.id))) continue;
    // Rank the containers of the replica: current spec first, then running, then newest.
    const ranked = [...candidates].sort(
      (a, b) =>
        Number(b.specHash === replica.spec_hash) - Number(a.specHash === replica.spec_hash) ||
        Number(b.state === 'running') - Number(a.state === 'running') ||
        b.created - a.created,
    );
    const [best, ...others] = ranked;
    if (!best) {
      if (!waiting(replica)) actions.push({ kind: 'create', replica });
      continue;
    }
    const order: UpdateOrder = replica.update_order ?? 'stop-first';
    if (best.specHash !== replica.spec_hash) {
      for (const extra of others) removals.push({ kind: 'remove', container: extra, reason: 'duplicate' });
      if (!waiting(replica)) actions.push({ kind: 'replace', replica, old: best, order });
      continue;
    }
    // An interrupted start-first update: the new container exists but is not ready, the old one still serves.
    const serving = others.find((c) => c.state === 'running');
    if (order === 'start-first' && serving && !isReady(best)) {
      for (const extra of others) if (extra !== serving) removals.push({ kind: 'remove', container: extra, reason: 'duplicate' });
      actions.push({ kind: 'replace', replica, old: serving, order, next: best });
      continue;
    }
    for (const extra of others) removals.push({ kind: 'remove', container: extra, reason: 'duplicate' });
    if (needsStart(best, replica, facts.stoppedByHand?.has(best.id))) actions.push({ kind: 'start', replica, containerId: best.id });
    else if (best.name === temporaryName(replica) && others.length === 0 && !actual.some((c) => c.name === replica.name)) {
      actions.push({ kind: 'rename', replica, containerId: best.id });
    }
  }
  for (const orphans of byReplica.values()) {
    for (const orphan of orphans) if (!busy.has(orphan.id)) removals.push({ kind: 'remove', container: orphan, reason: 'not desired' });
  }
  // Removals first: they free the names and host ports the creations need.
  return [...removals, ...actions];
}

/** Host ports an action's new container binds; such a creation waits until no removal is in flight. */
export function bindsHostPorts(action: ReconcileAction): boolean {
  return (action.kind === 'create' || action.kind === 'replace') && action.replica.container.ports.length > 0;
}
