/**
 * The ledger's replica records: which container ran which replica on which node, when it came and went.
 * Kept from the nodes' state reports, so a restarted control plane knows where replicas ran. Pure:
 * mutates the records it is given and says whether anything changed.
 */
import type { ReplicaRecord } from './ledger.js';

export interface ContainerSeen {
  service: string;
  replica: number;
  containerId: string;
}

export function recordReplicaContainers(records: ReplicaRecord[], nodeId: string, seen: ContainerSeen[], now = new Date()): boolean {
  const at = now.toISOString();
  const seenIds = new Set(seen.map((s) => s.containerId));
  let changed = false;
  for (const record of records) {
    if (record.node === nodeId && !record.removed && !seenIds.has(record.container_id)) {
      record.removed = at;
      changed = true;
    }
  }
  const known = new Set(records.filter((r) => !r.removed).map((r) => r.container_id));
  for (const s of seen) {
    if (known.has(s.containerId)) continue;
    records.push({ service: s.service, replica: s.replica, node: nodeId, container_id: s.containerId, created: at });
    changed = true;
  }
  return changed;
}
