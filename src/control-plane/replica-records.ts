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
  const index = indexOf(records);
  const seenIds = new Set(seen.map((s) => s.containerId));
  let changed = false;
  for (const record of index.byNode.get(nodeId) ?? []) {
    if (!record.removed && !seenIds.has(record.container_id)) {
      record.removed = at;
      index.live.delete(record.container_id);
      changed = true;
    }
  }
  for (const s of seen) {
    if (index.live.has(s.containerId)) continue;
    const record: ReplicaRecord = { service: s.service, replica: s.replica, node: nodeId, container_id: s.containerId, created: at };
    records.push(record);
    add(index, record);
    changed = true;
  }
  index.length = records.length;
  return changed;
}

/**
 * The records by node, and the container ids of those not removed: every node reports every interval, and
 * a fleet has thousands of records. Kept per array (the ledger replaces it when it trims or loads), rebuilt
 * when its length changed behind this module's back.
 */
interface RecordIndex {
  length: number;
  byNode: Map<string, ReplicaRecord[]>;
  live: Set<string>;
}

const indexes = new WeakMap<ReplicaRecord[], RecordIndex>();

function indexOf(records: ReplicaRecord[]): RecordIndex {
  let index = indexes.get(records);
  if (!index || index.length !== records.length) {
    index = { length: records.length, byNode: new Map(), live: new Set() };
    for (const record of records) add(index, record);
    indexes.set(records, index);
  }
  return index;
}

function add(index: RecordIndex, record: ReplicaRecord): void {
  const list = index.byNode.get(record.node);
  if (list) list.push(record);
  else index.byNode.set(record.node, [record]);
  if (!record.removed) index.live.add(record.container_id);
}
