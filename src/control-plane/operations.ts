/**
 * Operations that mutate a service (scale, restart, rolling restart), serialized and run in FIFO order
 * (FleetCTL's opMu and scale queue). Each one changes the ledger, asks for a new desired state, and
 * watches what the agents report until the service got there or failed.
 */
import { randomUUID } from 'node:crypto';
import type { ServiceConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { errorMessage } from '../errors.js';
import type { Operation, ReplicaView } from '../http/schemas.js';
import type { Logger } from '../log.js';
import type { Ledger } from './ledger.js';

export interface OperationHost {
  ledger: Ledger;
  service(name: string): ServiceConfig | undefined;
  /** Replicas the service must have now (config, or a scale that still holds). */
  effectiveReplicas(service: ServiceConfig): number;
  /** Recomputes and publishes every node's desired state; resolves once published. */
  replan(): Promise<void>;
  /** The replicas of the service as last reported, with the spec hash each one should have. */
  replicas(service: string): (ReplicaView & { expected_hash: string })[];
  /** True once every node has reported on the desired state last published to it. */
  converged(): boolean;
  changed(operation: Operation): void;
  log: Logger;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const POLL_MS = 250;

class OperationFailed extends Error {}

export class OperationQueue {
  private running?: Promise<void>;
  private stopped = false;

  constructor(private readonly host: OperationHost) {}

  /** Operations interrupted by a stop or a crash are failed; accepted but unstarted ones run now. */
  resume(): void {
    for (const op of this.host.ledger.data.operations) {
      if (op.state === 'running') {
        Object.assign(op, { state: 'failed', finished_at: new Date().toISOString(), message: 'interrupted: the control plane stopped during the operation' });
      }
    }
    void this.host.ledger.save();
    this.drain();
  }

  stop(): void {
    this.stopped = true;
  }

  current(): Operation | null {
    return this.host.ledger.data.operations.find((op) => op.state === 'running') ?? null;
  }

  queued(): Operation[] {
    return this.host.ledger.data.operations.filter((op) => op.state === 'queued');
  }

  enqueue(request: Pick<Operation, 'kind' | 'service' | 'replicas'>): Operation {
    const op: Operation = { id: randomUUID().slice(0, 8), state: 'queued', requested_at: new Date().toISOString(), ...request };
    this.host.ledger.data.operations.push(op);
    void this.host.ledger.save();
    this.host.changed(op);
    this.drain();
    return op;
  }

  /** Whenever one runs and others wait, the next starts when it ends. */
  private drain(): void {
    if (this.running || this.stopped) return;
    const next = this.queued()[0];
    if (!next) return;
    this.running = this.run(next).finally(() => {
      this.running = undefined;
      this.drain();
    });
  }

  private async run(op: Operation): Promise<void> {
    const update = (fields: Partial<Operation>) => {
      Object.assign(op, fields);
      void this.host.ledger.save();
      this.host.changed(op);
    };
    update({ state: 'running', started_at: new Date().toISOString() });
    try {
      const service = this.host.service(op.service);
      if (!service) throw new OperationFailed(`service "${op.service}" is no longer in the config`);
      const result =
        op.kind === 'scale'
          ? await this.scale(service, op.replicas ?? 0, update)
          : await this.restart(service, op.kind === 'rolling-restart', update);
      update({ ...result, finished_at: new Date().toISOString() });
    } catch (err) {
      update({ state: 'failed', message: errorMessage(err), finished_at: new Date().toISOString() });
    }
    this.host.log.info({ operation: op.id, kind: op.kind, service: op.service, state: op.state, message: op.message }, 'operation finished');
  }

  private async scale(service: ServiceConfig, target: number, update: (f: Partial<Operation>) => void): Promise<Partial<Operation>> {
    const from = this.host.effectiveReplicas(service);
    if (from === target) return { state: 'noop', message: `${service.name} already has ${target} replica(s)` };
    this.host.ledger.data.scales[service.name] = { replicas: target, config_replicas: service.replicas };
    await this.host.ledger.save();
    await this.host.replan();
    const total = Math.abs(target - from);
    update({ progress: { done: 0, total }, message: `scaling ${service.name} from ${from} to ${target}` });
    await this.waitFor(120_000, () => {
      const running = this.host.replicas(service.name).filter((r) => r.state === 'running' && r.spec_hash === r.expected_hash).length;
      update({ progress: { done: Math.min(total, Math.abs(running - from)), total } });
      return this.host.converged() && running === target;
    }, () => `timed out: ${this.runningCount(service.name)}/${target} replicas running`);
    return { state: 'succeeded', progress: { done: total, total }, message: `${service.name} scaled from ${from} to ${target}` };
  }

  private runningCount(service: string): number {
    return this.host.replicas(service).filter((r) => r.state === 'running').length;
  }

  private async restart(service: ServiceConfig, rolling: boolean, update: (f: Partial<Operation>) => void): Promise<Partial<Operation>> {
    const indexes = this.host.replicas(service.name).map((r) => r.replica).sort((a, b) => a - b);
    if (indexes.length === 0) return { state: 'noop', message: `${service.name} has no replicas to restart` };
    const settings = {
      parallelism: service.update?.parallelism ?? 1,
      delayMs: parseDuration(service.update?.delay ?? '0s'),
      monitorMs: parseDuration(service.update?.monitor ?? '5s'),
      failureAction: service.update?.failure_action ?? 'pause',
    };
    const batches = rolling ? chunk(indexes, settings.parallelism) : [indexes];
    const total = indexes.length;
    const generations = (this.host.ledger.data.generations[service.name] ??= {});
    const previous: Record<string, number> = {};
    let done = 0;
    update({ progress: { done, total } });
    for (const [i, batch] of batches.entries()) {
      for (const replica of batch) {
        previous[replica] = generations[replica] ?? 0;
        generations[replica] = previous[replica]! + 1;
      }
      await this.host.ledger.save();
      await this.host.replan();
      try {
        await this.waitReady(service, batch, settings.monitorMs);
      } catch (err) {
        if (!(err instanceof OperationFailed)) throw err;
        if (settings.failureAction === 'rollback') {
          for (const replica of Object.keys(previous)) generations[replica] = previous[replica]!;
          await this.host.ledger.save();
          await this.host.replan();
          await this.waitReady(service, Object.keys(previous).map(Number), settings.monitorMs).catch(() => undefined);
          return { state: 'rolled-back', message: `${err.message}; rolled back ${Object.keys(previous).length} replica(s)` };
        }
        return { state: 'paused', message: `${err.message}; paused at ${done}/${total}` };
      }
      done += batch.length;
      update({ progress: { done, total }, message: `restarted ${done}/${total}` });
      if (rolling && i < batches.length - 1 && settings.delayMs > 0) await sleep(settings.delayMs);
    }
    return { state: 'succeeded', message: `${rolling ? 'rolling ' : ''}restart of ${service.name} done: ${total}/${total}` };
  }

  /**
   * Waits until each replica of the batch runs its new spec and is healthy (with a healthcheck) or has
   * kept running for `monitorMs` (without one). A replica that exits, errs or turns unhealthy fails it.
   */
  private async waitReady(service: ServiceConfig, batch: number[], monitorMs: number): Promise<void> {
    const hc = service.healthcheck;
    const healthBudget = hc ? parseDuration(hc.start_period) + (hc.retries + 1) * (parseDuration(hc.interval) + parseDuration(hc.timeout)) : 0;
    const timeoutMs = 60_000 + monitorMs + healthBudget;
    const runningSince = new Map<number, number>();
    await this.waitFor(timeoutMs, () => {
      const views = this.host.replicas(service.name).filter((r) => batch.includes(r.replica));
      let ready = 0;
      for (const view of views) {
        if (view.spec_hash !== view.expected_hash) continue;
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
      return ready === batch.length;
    }, () => `timed out waiting for replica(s) ${batch.join(', ')} of ${service.name} to become ${hc ? 'healthy' : 'running'}`);
  }

  private async waitFor(timeoutMs: number, done: () => boolean, timeoutMessage: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (this.stopped) throw new OperationFailed('interrupted: the control plane is stopping');
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
