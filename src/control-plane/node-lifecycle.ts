/**
 * A node's lifecycle as the control plane sees it, after Nomad's disconnect handling. Missing heartbeats
 * make a node *unreachable*: nothing about what it must run changes, because a node that does not answer is
 * usually still serving (Wi-Fi down, broker restarting). Only after `lost_after` is it *lost*, and its
 * replicas may start elsewhere. Pure: facts and the time in, the state out.
 */
export type NodeLifecycle = 'online' | 'unreachable' | 'lost';

export interface LifecycleFacts {
  /** Its status message says online (the last will says offline). */
  saysOnline: boolean;
  /** When it was last heard from (any message); undefined if never since the control plane started. */
  lastSeen?: number;
  /** Silence longer than this (3 metrics intervals) makes it unreachable. */
  heartbeatTimeoutMs: number;
  lostAfterMs: number;
  /** Since when the control plane watches: a node never heard from counts as unreachable since then. */
  watchingSince: number;
}

export interface LifecycleState {
  state: NodeLifecycle;
  /** When the node stopped answering (undefined while online). */
  unreachableSince?: number;
}

export function nodeLifecycle(facts: LifecycleFacts, now: number): LifecycleState {
  const { lastSeen } = facts;
  if (facts.saysOnline && lastSeen !== undefined && now - lastSeen <= facts.heartbeatTimeoutMs) return { state: 'online' };
  const unreachableSince = lastSeen ?? facts.watchingSince;
  // The lost clock never starts before the control plane watched: a node is not lost because the control
  // plane itself was down (its last report may be old, the node may have served all along).
  const silentSince = Math.max(unreachableSince, facts.watchingSince);
  return { state: now - silentSince >= facts.lostAfterMs ? 'lost' : 'unreachable', unreachableSince };
}
