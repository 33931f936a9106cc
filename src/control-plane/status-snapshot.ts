/**
 * The status snapshot `.otto/status.json`: what `otto cluster status` shows while the control plane is
 * down, and what a starting control plane knows of each node until it speaks (shown as stale).
 */
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../errors.js';
import { clusterStatusSchema, type ClusterStatus } from '../http/schemas.js';
import type { Logger } from '../log.js';
import { writeAtomic } from '../workspace.js';
import type { NodeRegistry } from './node-registry.js';

export async function saveStatusSnapshot(path: string, status: ClusterStatus, log: Logger): Promise<void> {
  const snapshot = { saved_at: new Date().toISOString(), status };
  await writeAtomic(path, JSON.stringify(snapshot), 0o600).catch((err) => log.warn({ err: errorMessage(err) }, 'cannot save the status snapshot'));
}

/** What the previous control plane last knew of each node: shown as stale until the node speaks. */
export async function seedFromSnapshot(path: string, registry: NodeRegistry): Promise<void> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (!text) return;
  let status: ClusterStatus;
  try {
    status = clusterStatusSchema.parse(JSON.parse(text).status);
  } catch {
    return;
  }
  for (const node of status.nodes) {
    const replicas = status.services.flatMap((s) => s.replicas.filter((r) => r.node === node.id));
    const strip = ({ node: _n, node_state: _s, stale: _st, reported_at: _r, migrating_to: _m, ...replica }: (typeof replicas)[number]) => replica;
    registry.seed(node.id, {
      lastSeen: node.last_seen ? Date.parse(node.last_seen) : undefined,
      state: { node_id: node.id, timestamp: node.last_seen ?? status.cluster.started_at, revision: -1, docker: node.docker ?? { reachable: false }, replicas: replicas.map(strip) },
    });
  }
}
