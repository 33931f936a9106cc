/**
 * Operations that mutate a service (scale, restart, rolling restart, update, rollback), serialized and
 * run in FIFO order (FleetCTL's opMu and scale queue), kept in the ledger. What each one does is in
 * operation-runners.ts; this is the queue.
 */
import { randomUUID } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { Operation } from '../http/schemas.js';
import { OperationFailed, runOperation, type OperationHost } from './operation-runners.js';

export type { OperationHost };

export class OperationQueue {
  private running?: Promise<void>;
  private stopped = false;

  constructor(private readonly host: OperationHost) {}

  /**
   * Operations interrupted by a stop or a crash are failed, but a migrate goes on where it was (its moves
   * hold copies that must end one way or the other); accepted but unstarted ones run now.
   */
  resume(): void {
    for (const op of this.host.ledger.data.operations) {
      if (op.state === 'running' && op.kind === 'migrate') {
        Object.assign(op, { state: 'queued', message: 'resumed after a control-plane restart' });
        this.host.changed(op);
      } else if (op.state === 'running') {
        Object.assign(op, { state: 'failed', finished_at: new Date().toISOString(), message: 'interrupted: the control plane stopped during the operation' });
        this.host.changed(op);
      }
    }
    this.host.ledger.saveSoon();
    this.drain();
  }

  stop(): void {
    this.stopped = true;
  }

  /** Resolves when the operation under way has ended (stopped early by `stop()`). */
  async idle(): Promise<void> {
    await this.running;
  }

  current(): Operation | null {
    return this.host.ledger.data.operations.find((op) => op.state === 'running') ?? null;
  }

  queued(): Operation[] {
    return this.host.ledger.data.operations.filter((op) => op.state === 'queued');
  }

  /** An update of this service waits in the queue or runs. */
  hasPendingUpdate(service: string): boolean {
    return this.host.ledger.data.operations.some((op) => op.service === service && op.kind === 'update' && (op.state === 'queued' || op.state === 'running'));
  }

  /** Replicas a queued or running migrate moves (not yet done or failed). */
  movesUnderWay(): Map<string, { from: string; to: string }> {
    const moving = new Map<string, { from: string; to: string }>();
    for (const op of this.host.ledger.data.operations) {
      if (op.kind !== 'migrate' || (op.state !== 'queued' && op.state !== 'running')) continue;
      for (const m of op.moves ?? []) if (m.state === 'pending' || m.state === 'starting') moving.set(`${m.service}#${m.replica}`, { from: m.from, to: m.to });
    }
    return moving;
  }

  enqueue(request: Pick<Operation, 'kind' | 'service' | 'replicas' | 'replica' | 'moves' | 'message'>): Operation {
    const op: Operation = { id: randomUUID().slice(0, 8), state: 'queued', requested_at: new Date().toISOString(), ...request };
    this.host.ledger.data.operations.push(op);
    this.host.ledger.saveSoon();
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
      this.host.ledger.saveSoon();
      this.host.changed(op);
    };
    update({ state: 'running', started_at: new Date().toISOString() });
    try {
      const result = await runOperation(op, this.host, update, () => this.stopped);
      update({ ...result, finished_at: new Date().toISOString() });
    } catch (err) {
      // Stopped by the control plane's own stop: left `running`, so the next start reports it as interrupted.
      if (this.stopped && err instanceof OperationFailed) return;
      update({ state: 'failed', message: errorMessage(err), finished_at: new Date().toISOString() });
    }
    this.host.log.info({ operation: op.id, kind: op.kind, service: op.service, state: op.state, message: op.message }, 'operation finished');
  }
}
