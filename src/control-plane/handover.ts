/**
 * The end of a move off a lost node. When a node is lost, its replicas start on other nodes, but the lost
 * node may still run its copies (it only lost its link). Its desired state keeps them ("held") while it is
 * away, so nothing ever tells it to drop them. When it comes back and has reported, each replica ends with
 * exactly one copy: the replacement once it is ready, and the returning copy is then stopped gracefully;
 * while the replacement is still starting, both stay; if the replacement failed, the replica goes back to the
 * returning node and the replacement is removed. Pure.
 */
import type { NodeLifecycle } from './node-lifecycle.js';

/** A replica (`service#index`) moved off a lost node. */
export interface Move {
  key: string;
  from: string;
  to: string;
}

export interface HandoverFacts {
  /** Where each desired replica is assigned now. */
  assignmentOf: (key: string) => string | undefined;
  lifecycleOf: (nodeId: string) => NodeLifecycle;
  /** The node has reported what it runs since it came back online. */
  reportedSinceBack: (nodeId: string) => boolean;
  /**
   * How the replica does on that node: ready (running, healthy or without a healthcheck), starting (its
   * image pulling, its container starting or waiting for its first healthy check), or failed.
   */
  readinessOn: (key: string, nodeId: string) => 'ready' | 'starting' | 'failed';
  runningOn: (key: string, nodeId: string) => boolean;
}

export type MoveOutcome =
  /** The returning node's copy is dropped: the replacement serves. */
  | { kind: 'released'; move: Move }
  /** The replacement was not ready: the replica goes back to the returning node. */
  | { kind: 'given-back'; move: Move }
  /** The replica is no longer where the move put it (scaled away, moved again): nothing to hand over. */
  | { kind: 'obsolete'; move: Move };

export interface Handover {
  /** Per node, replicas it keeps in its desired state although they are assigned elsewhere. */
  held: Map<string, string[]>;
  /** Moves that end now; the others go on. */
  outcomes: MoveOutcome[];
}

export function planHandover(moves: Move[], facts: HandoverFacts): Handover {
  const held = new Map<string, string[]>();
  const outcomes: MoveOutcome[] = [];
  const hold = (move: Move) => held.set(move.from, [...(held.get(move.from) ?? []), move.key]);
  for (const move of moves) {
    const assigned = facts.assignmentOf(move.key);
    if (assigned !== move.to) {
      outcomes.push({ kind: 'obsolete', move });
      continue;
    }
    if (facts.lifecycleOf(move.from) !== 'online' || !facts.reportedSinceBack(move.from)) {
      hold(move);
      continue;
    }
    const replacement = facts.readinessOn(move.key, move.to);
    const returningRuns = facts.runningOn(move.key, move.from);
    if (replacement === 'ready' || !returningRuns) outcomes.push({ kind: 'released', move });
    else if (replacement === 'starting') hold(move);
    else outcomes.push({ kind: 'given-back', move });
  }
  return { held, outcomes };
}

/**
 * Moves a new placement makes: replicas that were assigned to a node that is lost now and are assigned
 * elsewhere. Moves already recorded for a replica keep their original node.
 */
export function newMoves(
  before: Record<string, string>,
  after: Map<string, string>,
  lifecycleOf: (nodeId: string) => NodeLifecycle,
  recorded: ReadonlySet<string>,
): Move[] {
  const moves: Move[] = [];
  for (const [key, to] of after) {
    const from = before[key];
    if (from && from !== to && lifecycleOf(from) === 'lost' && !recorded.has(key)) moves.push({ key, from, to });
  }
  return moves;
}
