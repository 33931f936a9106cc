/**
 * Which desired states an agent applies. Revisions only grow: an older or equal revision (a late retained
 * message, a redelivery, a control plane that restarted with an old ledger) is ignored, so what a node
 * runs can never go backwards. Pure.
 */
import type { DesiredState } from '../protocol/messages.js';

export type DesiredVerdict = { apply: true } | { apply: false; reason: 'foreign' | 'stale' };

export function judgeDesired(current: DesiredState | undefined, incoming: DesiredState, me: { nodeId: string; cluster: string }): DesiredVerdict {
  if (incoming.node_id !== me.nodeId || incoming.cluster !== me.cluster) return { apply: false, reason: 'foreign' };
  if (current && incoming.revision <= current.revision) return { apply: false, reason: 'stale' };
  return { apply: true };
}
