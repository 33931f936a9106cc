/**
 * Runs the moves of a migrate operation, start-first across nodes, at most `migration.max_in_flight` at
 * once. A move assigns the replica to its target and holds the copy on its source in the source's desired
 * state (ledger `migrations`), so the copy keeps serving; once the one on the target is ready (healthy, or
 * running for `update.monitor` without a healthcheck) the hold ends and the source stops its copy
 * gracefully. If the target fails (its container errs, exits or turns unhealthy, the node goes away, or
 * nothing is ready in time) the replica is given back to the source, which never stopped, and the target's
 * copy is removed. Every step is in the ledger before it takes effect, so a control plane killed half-way
 * resumes the move where it was and the source's copy is held all along.
 */
import type { ServiceConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { ClusterEvent, MoveView, Operation } from '../http/schemas.js';
import type { ReplicaState } from '../protocol/messages.js';
import type { Ledger } from './ledger.js';
import type { NodeLifecycle } from './node-lifecycle.js';
import { OperationFailed } from './operation-failed.js';
import { replicaKey } from './placement.js';

export interface MigrationHost {
  ledger: Ledger;
  service(name: string): ServiceConfig | undefined;
  /** Recomputes and publishes every node's desired state; resolves once published. */
  replan(): Promise<void>;
  /** What the node last reported of the replica (`service#replica`). */
  reported(key: string, nodeId: string): ReplicaState | undefined;
  /** The replica's container is on its way out on the node (being stopped). */
  leavingOn(key: string, nodeId: string): boolean;
  /** The spec hash the node's desired state gives the replica, if it has it. */
  expectedHash(key: string, nodeId: string): string | undefined;
  lifecycle(nodeId: string): NodeLifecycle;
  maxInFlight(): number;
  event(event: Omit<ClusterEvent, 'id' | 'time'>): void;
}

type Update = (fields: Partial<Operation>) => void;
class MoveFailed extends Error {}

const POLL_MS = 250;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A target that is not online this long during a move fails it (the source still serves). */
const TARGET_AWAY_MS = 15_000;

export async function runMigration(op: Operation, host: MigrationHost, update: Update, stopped: () => boolean): Promise<Partial<Operation>> {
  const moves = op.moves ?? [];
  const total = moves.length;
  const progress = () => ({ done: moves.filter((m) => m.state === 'done' || m.state === 'failed').length, total });
  const changed = (message?: string) => update({ moves: moves.map((m) => ({ ...m })), progress: progress(), ...(message ? { message } : {}) });
  changed(`migrating ${progress().done} of ${total}`);
  const pending = moves.filter((m) => m.state === 'pending' || m.state === 'starting');
  const workers = Array.from({ length: Math.min(host.maxInFlight(), pending.length) }, async () => {
    for (let move = pending.shift(); move; move = pending.shift()) {
      if (stopped()) return;
      await new MoveRun(op, move, host, stopped, () => changed()).run();
      changed(`migrating ${progress().done} of ${total}`);
    }
  });
  await Promise.all(workers);
  // Stopped by the control plane's own stop: left running, resumed at the next start.
  if (stopped()) throw new OperationFailed('interrupted: the control plane is stopping');
  const failed = moves.filter((m) => m.state === 'failed');
  const done = moves.length - failed.length;
  if (failed.length === 0) return { state: 'succeeded', progress: progress(), message: `moved ${done} of ${total}: ${moves.map(describe).join(', ')}` };
  return {
    state: 'failed',
    progress: progress(),
    message: `moved ${done} of ${total}; ${failed.map((m) => `${describe(m)} failed: ${m.message}`).join('; ')} (each stayed where it was)`,
  };
}

const describe = (m: MoveView) => `${m.service}#${m.replica} ${m.from} -> ${m.to}`;

class MoveRun {
  private readonly key: string;

  constructor(
    private readonly op: Operation,
    private readonly move: MoveView,
    private readonly host: MigrationHost,
    private readonly stopped: () => boolean,
    /** Copies the move's state into the operation, which lives in the ledger: call before each ledger save, so a restart resumes from it. */
    private readonly record: () => void,
  ) {
    this.key = replicaKey(move.service, move.replica);
  }

  async run(): Promise<void> {
    const { move, host } = this;
    try {
      if (move.state === 'pending') await this.begin();
      await this.waitReady();
    } catch (err) {
      if (this.stopped()) return;
      await this.giveBack(err instanceof MoveFailed ? err.message : String(err));
      return;
    }
    if (this.stopped()) return;
    await this.cutOver();
    host.event({ kind: 'replica-migrated', service: move.service, replica: move.replica, node: move.to, message: `${move.service}#${move.replica} moved from ${move.from} to ${move.to}: ${move.reason}` });
  }

  /** Assigns the replica to the target, holding the source's copy; in the ledger before anything is sent. */
  private async begin(): Promise<void> {
    const { move, host, key } = this;
    const data = host.ledger.data;
    const service = host.service(move.service);
    if (!service) throw new MoveFailed(`service ${move.service} is no longer in the config`);
    if (data.assignments[key] !== move.from) throw new MoveFailed(`${key} is not on ${move.from} any more (${data.assignments[key] ? `on ${data.assignments[key]}` : 'scaled away'})`);
    if (host.lifecycle(move.to) !== 'online') throw new MoveFailed(`${move.to} is not online`);
    // Replaced, never changed in place: the planner keeps its map of the assignments per record (cluster-planner.ts).
    data.assignments = { ...data.assignments, [key]: move.to };
    data.migrations = [...data.migrations.filter((m) => m.key !== key), { key, from: move.from, to: move.to, at: new Date().toISOString(), operation: this.op.id }];
    move.state = 'starting';
    this.record();
    await host.ledger.save();
    await host.replan();
  }

  /** Until the target's copy is ready; throws MoveFailed with the reason when it will not be. */
  private async waitReady(): Promise<void> {
    const { move, host, key } = this;
    const service = host.service(move.service);
    if (!service) throw new MoveFailed(`service ${move.service} is no longer in the config`);
    const hc = service.healthcheck;
    const monitorMs = parseDuration(service.update?.monitor ?? '5s');
    const healthBudget = hc ? parseDuration(hc.start_period) + (hc.retries + 1) * (parseDuration(hc.interval) + parseDuration(hc.timeout)) : 0;
    const budgetMs = 60_000 + monitorMs + healthBudget;
    let deadline = Date.now() + budgetMs;
    let pulled = -1;
    let runningSince: number | undefined;
    let awaySince: number | undefined;
    for (;;) {
      if (this.stopped()) return;
      if (host.ledger.data.assignments[key] !== move.to) throw new MoveFailed(`${key} was assigned elsewhere meanwhile (scaled away or its node lost)`);
      if (host.lifecycle(move.to) !== 'online') {
        awaySince ??= Date.now();
        if (Date.now() - awaySince > TARGET_AWAY_MS) throw new MoveFailed(`${move.to} stopped answering`);
      } else {
        awaySince = undefined;
        const r = host.reported(key, move.to);
        const expected = host.expectedHash(key, move.to);
        if (r?.pull && (r.pull.bytes_done ?? 0) !== pulled) {
          // A pull that makes progress is not a failure: time spent pulling does not count.
          pulled = r.pull.bytes_done ?? 0;
          deadline = Math.max(deadline, Date.now() + budgetMs);
        }
        if (r && expected && r.spec_hash === expected) {
          if (r.state === 'error' || r.state === 'exited' || r.state === 'dead' || r.state === 'restarting') throw new MoveFailed(`${r.error ?? `its container is ${r.state}`}`);
          if (r.health === 'unhealthy') throw new MoveFailed('it is unhealthy');
          if (r.state === 'running') {
            if (hc ? r.health === 'healthy' : Date.now() - (runningSince ??= Date.now()) >= monitorMs) return;
          } else runningSince = undefined;
        } else if (r?.error && !r.pull) {
          throw new MoveFailed(r.error);
        }
      }
      if (Date.now() > deadline) throw new MoveFailed(`not ${hc ? 'healthy' : 'running'} on ${move.to} within ${Math.round(budgetMs / 1000)}s`);
      await sleep(POLL_MS);
    }
  }

  /** The target serves: the hold ends and the source stops its copy gracefully. */
  private async cutOver(): Promise<void> {
    const { move, host, key } = this;
    const data = host.ledger.data;
    data.migrations = data.migrations.filter((m) => m.key !== key);
    data.last_moves[key] = { at: new Date().toISOString() };
    move.state = 'done';
    move.message = `running on ${move.to}`;
    this.record();
    await host.ledger.save();
    await host.replan();
    // Until the source's copy is gone (its graceful stop), so the operation ends with one copy; not for a source that is away.
    const service = host.service(move.service);
    const graceMs = parseDuration(service?.stop_grace_period ?? '10s');
    const until = Date.now() + graceMs + 30_000;
    while (Date.now() < until && !this.stopped() && host.lifecycle(move.from) === 'online') {
      if (!host.reported(key, move.from) && !host.leavingOn(key, move.from)) break;
      await sleep(POLL_MS);
    }
  }

  /** The target did not make it: the replica stays on the source, which never stopped; the target's copy goes. */
  private async giveBack(reason: string): Promise<void> {
    const { move, host, key } = this;
    const data = host.ledger.data;
    const held = data.migrations.some((m) => m.key === key);
    data.migrations = data.migrations.filter((m) => m.key !== key);
    if (held && data.assignments[key] === move.to) data.assignments = { ...data.assignments, [key]: move.from };
    data.last_moves[key] = { at: new Date().toISOString(), failed_to: move.to };
    move.state = 'failed';
    move.message = reason;
    this.record();
    await host.ledger.save();
    await host.replan();
    host.event({
      kind: 'migration-failed',
      service: move.service,
      replica: move.replica,
      node: move.to,
      message: `${move.service}#${move.replica} did not move from ${move.from} to ${move.to}: ${reason}; ${held ? `it keeps running on ${move.from}` : 'nothing was changed'}`,
    });
  }
}
