/**
 * What each operation does. Each one changes the ledger (a scale, restart generations, spec revisions),
 * asks for a new desired state, and watches what the agents report until the service got there or failed.
 * Restart, update and rollback share one engine: `update.parallelism` replicas at a time, each batch
 * health-gated (healthy with a healthcheck, running for `update.monitor` without), `update.delay` between
 * batches, and on failure `failure_action`: pause where it is, or roll back.
 * Replicas on a node that is not online are not waited for: they get the change when their node is back.
 */
import type { ServiceConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { Operation, ReplicaView } from '../http/schemas.js';
import type { Logger } from '../log.js';
import { updateOrderOf } from './desired-state.js';
import type { Ledger } from './ledger.js';
import { runMigration, type MigrationHost } from './migration-runner.js';
import { OperationFailed } from './operation-failed.js';

export { OperationFailed };
import { currentRevision, pendingReplicas, rollBack } from './spec-revisions.js';

export interface ReplicaProgress extends ReplicaView {
  /** The spec hash the replica must reach. */
  expected_hash: string;
}

export interface OperationHost extends MigrationHost {
  ledger: Ledger;
  log: Logger;
  service(name: string): ServiceConfig | undefined;
  /** Replicas the service must have now (config, or a scale that still holds). */
  effectiveReplicas(service: ServiceConfig): number;
  /** Recomputes and publishes every node's desired state; resolves once published. */
  replan(): Promise<void>;
  /** The replicas of the service as last reported, with the spec hash each one should have. */
  replicas(service: string): ReplicaProgress[];
  /** Why replicas of the service cannot be placed (no node matches, host port taken everywhere). */
  unplaced(service: string): string[];
  /** Containers of the service that online nodes are still stopping (scaled away, moved). */
  leaving(service: string): number;
  /** True once every online node has reported on the desired state last published to it. */
  converged(): boolean;
  changed(operation: Operation): void;
}


type Update = (fields: Partial<Operation>) => void;
type Result = Partial<Operation>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const POLL_MS = 250;

interface UpdateSettings {
  parallelism: number;
  delayMs: number;
  monitorMs: number;
  failureAction: 'pause' | 'rollback';
}

function settingsOf(service: ServiceConfig): UpdateSettings {
  return {
    parallelism: service.update?.parallelism ?? 1,
    delayMs: parseDuration(service.update?.delay ?? '0s'),
    monitorMs: parseDuration(service.update?.monitor ?? '5s'),
    failureAction: service.update?.failure_action ?? 'pause',
  };
}

export async function runOperation(op: Operation, host: OperationHost, update: Update, stopped: () => boolean): Promise<Result> {
  // A migrate may move replicas of several services: each move checks its own.
  if (op.kind === 'migrate') return runMigration(op, host, update, stopped);
  const service = host.service(op.service);
  if (!service) throw new OperationFailed(`service "${op.service}" is no longer in the config`);
  const runner = new Runner(host, service, update, stopped);
  switch (op.kind) {
    case 'scale':
      return runner.scale(op.replicas ?? 0);
    case 'restart':
    case 'rolling-restart':
      return runner.restart(op.kind === 'rolling-restart', op.replica);
    case 'update':
    case 'rollback':
      return runner.converge(op.kind);
  }
}

class Runner {
  constructor(
    private readonly host: OperationHost,
    private readonly service: ServiceConfig,
    private readonly update: Update,
    private readonly stopped: () => boolean,
  ) {}

  private get name(): string {
    return this.service.name;
  }

  async scale(target: number): Promise<Result> {
    const { host, name } = this;
    const from = host.effectiveReplicas(this.service);
    if (from === target) return { state: 'noop', message: `${name} already has ${target} replica(s)` };
    host.ledger.data.scales[name] = { replicas: target, config_replicas: this.service.replicas };
    await host.ledger.save();
    await host.replan();
    // A replica that no node can take will not come by waiting: say why now.
    const unplaced = host.unplaced(name).filter((reason) => !reason.includes('waiting for a node'));
    if (unplaced.length > 0) throw new OperationFailed(`${name} scaled to ${target}, but ${unplaced.length} replica(s) cannot be placed: ${unplaced[0]}`);
    const total = Math.abs(target - from);
    this.update({ progress: { done: 0, total }, message: `scaling ${name} from ${from} to ${target}` });
    await this.waitFor(120_000, () => {
      const views = host.replicas(name);
      const settled = views.filter((r) => r.node_state !== 'online' || (r.state === 'running' && r.spec_hash === r.expected_hash)).length;
      this.update({ progress: { done: Math.min(total, Math.abs(settled - from)), total } });
      return host.converged() && views.length === target && settled === target && host.leaving(name) === 0;
    }, () => `timed out: ${this.runningCount()}/${target} replicas running`);
    return { state: 'succeeded', progress: { done: total, total }, message: `${name} scaled from ${from} to ${target}` };
  }

  async restart(rolling: boolean, only?: number): Promise<Result> {
    const { host, name } = this;
    const indexes = host.replicas(name).map((r) => r.replica).filter((r) => only === undefined || r === only).sort((a, b) => a - b);
    if (indexes.length === 0) return { state: 'noop', message: only === undefined ? `${name} has no replicas to restart` : `${name} has no replica ${only}` };
    const settings = settingsOf(this.service);
    const batches = rolling ? chunk(indexes, settings.parallelism) : [indexes];
    const generations = (host.ledger.data.generations[name] ??= {});
    const previous: Record<string, number> = {};
    const total = indexes.length;
    let done = 0;
    this.update({ progress: { done, total }, message: this.orderNote() });
    for (const [i, batch] of batches.entries()) {
      for (const replica of batch) {
        previous[replica] = generations[replica] ?? 0;
        generations[replica] = previous[replica]! + 1;
      }
      await host.ledger.save();
      await host.replan();
      try {
        await this.waitReady(batch, settings.monitorMs);
      } catch (err) {
        if (!(err instanceof OperationFailed) || this.stopped()) throw err;
        if (settings.failureAction === 'rollback') {
          for (const replica of Object.keys(previous)) generations[replica] = previous[replica]!;
          await host.ledger.save();
          await host.replan();
          await this.waitReady(Object.keys(previous).map(Number), settings.monitorMs).catch(() => undefined);
          return { state: 'rolled-back', message: `${err.message}; rolled back ${Object.keys(previous).length} replica(s)` };
        }
        return { state: 'paused', message: `${err.message}; paused at ${done}/${total}` };
      }
      done += batch.length;
      this.update({ progress: { done, total }, message: `restarted ${done}/${total}` });
      if (rolling && i < batches.length - 1 && settings.delayMs > 0) await sleep(settings.delayMs);
    }
    return { state: 'succeeded', message: `${rolling ? 'rolling ' : ''}restart of ${only === undefined ? name : `${name}#${only}`} done: ${total}/${total}` };
  }

  /** Moves every replica to the service's current spec revision (an update), or first back to the previous one (a rollback). */
  async converge(kind: 'update' | 'rollback'): Promise<Result> {
    const { host, name } = this;
    const entry = host.ledger.data.specs[name];
    const count = host.effectiveReplicas(this.service);
    if (!entry) return { state: 'noop', message: `${name} has no spec history` };
    if (kind === 'rollback') {
      if (!rollBack(entry, count, 'rolled back by `otto service rollback`')) return { state: 'noop', message: `${name} has no previous spec to roll back to` };
      host.ledger.saveSoon();
    }
    const target = currentRevision(entry);
    const total = pendingReplicas(entry, count).length;
    if (total === 0) {
      await host.replan();
      return { state: 'noop', message: `${name} already runs spec revision ${target.id}` };
    }
    const settings = settingsOf(this.service);
    const verb = kind === 'rollback' ? 'rolling back' : 'updating';
    let done = 0;
    this.update({ progress: { done, total }, message: `${verb} ${name} to spec revision ${target.id} (${this.orderNote()})` });
    for (let batch = pendingReplicas(entry, count).slice(0, settings.parallelism); batch.length > 0; batch = pendingReplicas(entry, count).slice(0, settings.parallelism)) {
      for (const replica of batch) delete entry.replicas[replica];
      await host.ledger.save();
      await host.replan();
      try {
        await this.waitReady(batch, settings.monitorMs);
      } catch (err) {
        if (!(err instanceof OperationFailed) || this.stopped()) throw err;
        if (kind === 'update' && settings.failureAction === 'rollback') {
          rollBack(entry, count, `update to spec revision ${target.id} failed: ${err.message}`);
          const back = pendingReplicas(entry, count);
          for (const replica of back) delete entry.replicas[replica];
          await host.ledger.save();
          await host.replan();
          await this.waitReady(back, settings.monitorMs).catch(() => undefined);
          return { state: 'rolled-back', message: `${err.message}; rolled back ${back.length} replica(s) to spec revision ${entry.current}` };
        }
        entry.hold = { config_hash: target.hash, state: 'paused', message: `update to spec revision ${target.id} paused: ${err.message}` };
        await host.ledger.save();
        return { state: 'paused', message: `${err.message}; paused at ${done}/${total}` };
      }
      done += batch.length;
      this.update({ progress: { done, total }, message: `${verb} ${name}: ${done}/${total}` });
      if (pendingReplicas(entry, count).length > 0 && settings.delayMs > 0) await sleep(settings.delayMs);
    }
    return { state: 'succeeded', progress: { done: total, total }, message: `${name} ${kind === 'rollback' ? 'rolled back' : 'updated'} to spec revision ${target.id}: ${total}/${total} (${this.orderNote()})` };
  }

  private orderNote(): string {
    const { order, note } = updateOrderOf(this.service);
    return note ?? order;
  }

  private runningCount(): number {
    return this.host.replicas(this.name).filter((r) => r.state === 'running').length;
  }

  /**
   * Waits until each replica of the batch runs its new spec and is healthy (with a healthcheck) or has
   * kept running for `monitorMs` (without one), and no old container of the service is left stopping. A replica that exits, errs or turns unhealthy fails it;
   * one whose node is not online is not waited for. Time spent pulling an image does not count.
   */
  private async waitReady(batch: number[], monitorMs: number): Promise<void> {
    const hc = this.service.healthcheck;
    const healthBudget = hc ? parseDuration(hc.start_period) + (hc.retries + 1) * (parseDuration(hc.interval) + parseDuration(hc.timeout)) : 0;
    const timeoutMs = 60_000 + monitorMs + healthBudget;
    const runningSince = new Map<number, number>();
    let pulledBytes = -1;
    await this.waitFor(
      timeoutMs,
      (extend) => {
        const views = this.host.replicas(this.name).filter((r) => batch.includes(r.replica));
        let ready = 0;
        const bytes = views.reduce((sum, v) => sum + (v.pull?.bytes_done ?? 0), 0);
        if (views.some((v) => v.pull) && bytes !== pulledBytes) extend();
        pulledBytes = bytes;
        for (const view of views) {
          if (view.node_state !== 'online') {
            ready++;
            continue;
          }
          if (view.spec_hash !== view.expected_hash) {
            if (view.error && !view.pull) throw new OperationFailed(`replica ${view.name} did not come up: ${view.error}`);
            continue;
          }
          if (view.state === 'error' || view.state === 'exited' || view.state === 'dead' || view.state === 'restarting') {
            throw new OperationFailed(`replica ${view.name} did not come up: ${view.error ?? view.state}`);
          }
          if (view.health === 'unhealthy') throw new OperationFailed(`replica ${view.name} is unhealthy`);
          if (view.state !== 'running') continue;
          if (hc) {
            if (view.health === 'healthy') ready++;
            continue;
          }
          const since = runningSince.get(view.replica) ?? Date.now();
          runningSince.set(view.replica, since);
          if (Date.now() - since >= monitorMs) ready++;
        }
        // An old container still serving (start-first stops it only now) means the batch is not done yet.
        return ready === batch.length && this.host.leaving(this.name) === 0;
      },
      () => {
        const leaving = this.host.leaving(this.name);
        return leaving > 0
          ? `timed out waiting for ${leaving} old container(s) of ${this.name} to stop`
          : `timed out waiting for replica(s) ${batch.join(', ')} of ${this.name} to become ${hc ? 'healthy' : 'running'}`;
      },
    );
  }

  private async waitFor(timeoutMs: number, done: (extend: () => void) => boolean, timeoutMessage: () => string): Promise<void> {
    let deadline = Date.now() + timeoutMs;
    const extend = () => (deadline = Math.max(deadline, Date.now() + timeoutMs));
    while (!done(extend)) {
      if (this.stopped()) throw new OperationFailed('interrupted: the control plane is stopping');
      if (Date.now() > deadline) throw new OperationFailed(timeoutMessage());
      await sleep(POLL_MS);
    }
  }
}

function chunk<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}
