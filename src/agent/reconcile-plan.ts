/**
 * Pure diff of what a node must run against what Docker has: the list of actions that makes them equal.
 * No I/O here, so every case is unit-tested fast.
 */
import type { ReplicaSpec } from '../protocol/messages.js';
import type { ManagedContainer } from '../runtime/docker.js';

export type ReconcileAction =
  | { kind: 'create'; replica: ReplicaSpec }
  /** The spec changed: the old container goes, a new one comes. */
  | { kind: 'replace'; replica: ReplicaSpec; containerId: string }
  | { kind: 'start'; replica: ReplicaSpec; containerId: string }
  /** Not desired any more (scaled down, service removed) or a duplicate of a replica. */
  | { kind: 'remove'; containerId: string; name: string };

const replicaKey = (service: string, replica: number) => `${service}#${replica}`;

/** A stopped container comes back unless its restart policy says a stopped container stays stopped. */
function needsStart(container: ManagedContainer, replica: ReplicaSpec): boolean {
  if (container.state === 'running' || container.state === 'restarting' || container.state === 'removing') return false;
  return replica.container.restart !== 'no';
}

export function planReconcile(desired: ReplicaSpec[], actual: ManagedContainer[]): ReconcileAction[] {
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
    // Keep the best container of the replica: current spec first, then running, then newest.
    const ranked = [...candidates].sort(
      (a, b) =>
        Number(b.specHash === replica.spec_hash) - Number(a.specHash === replica.spec_hash) ||
        Number(b.state === 'running') - Number(a.state === 'running') ||
        b.created - a.created,
    );
    const [keep, ...duplicates] = ranked;
    for (const extra of duplicates) removals.push({ kind: 'remove', containerId: extra.id, name: extra.name });
    if (!keep) actions.push({ kind: 'create', replica });
    else if (keep.specHash !== replica.spec_hash) actions.push({ kind: 'replace', replica, containerId: keep.id });
    else if (needsStart(keep, replica)) actions.push({ kind: 'start', replica, containerId: keep.id });
  }
  for (const orphans of byReplica.values()) {
    for (const orphan of orphans) removals.push({ kind: 'remove', containerId: orphan.id, name: orphan.name });
  }
  // Removals first: they free the names and host ports the creations need.
  return [...removals, ...actions];
}
