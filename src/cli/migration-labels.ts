/**
 * How moves and NFR violations read in `otto cluster status` and `otto service ps`: pure, from the status
 * answer, so the happy path of status loads nothing more.
 */
import type { Operation, ReplicaView, ServiceView, ViolationView } from '../http/schemas.js';
import { age } from './format.js';

/**
 * `migrating 1 of 2` while a move of the service's replicas runs: done of total, counted from the running
 * migrate operation's moves (a failed move counts as done, as the operation counts it); from the replicas'
 * `migrating_to` when the operation is not the one running (resumed, or still queued behind another).
 */
export function migrationLabel(service: ServiceView, running: Operation | null): string | undefined {
  const moves = running?.kind === 'migrate' ? (running.moves ?? []).filter((m) => m.service === service.name) : [];
  if (moves.length > 0) {
    const done = moves.filter((m) => m.state === 'done' || m.state === 'failed').length;
    return done < moves.length ? `migrating ${done} of ${moves.length}` : undefined;
  }
  const moving = service.replicas.filter((r) => r.migrating_to !== undefined).length;
  return moving > 0 ? `migrating 0 of ${moving}` : undefined;
}

/**
 * A replica's node cell: `a`, or `a -> b` while it moves (its copy on `a` serves until the one on `b` runs);
 * `-> b` when the status no longer says where it comes from.
 */
export function replicaNodeLabel(replica: Pick<ReplicaView, 'service' | 'replica' | 'node' | 'migrating_to'>, running: Operation | null): string {
  const to = replica.migrating_to;
  if (to === undefined) return replica.node;
  const from = running?.moves?.find((m) => m.service === replica.service && m.replica === replica.replica && m.to === to)?.from ?? (replica.node === to ? undefined : replica.node);
  return from === undefined ? `-> ${to}` : `${from} -> ${to}`;
}

export const VIOLATION_HEADERS = ['SERVICE', 'REPLICA', 'NODE', 'RULE', 'VALUE', 'FOR', 'ACTION'];

/** A violation as a table row; `(back inside)` when the latest sample holds again but the rule is not cleared yet. */
export function violationRow(service: string, v: ViolationView, now = Date.now()): string[] {
  return [service, String(v.replica), v.node, v.rule, `${v.value}${v.failing ? '' : ' (back inside)'}`, age(v.since, now), v.action];
}
