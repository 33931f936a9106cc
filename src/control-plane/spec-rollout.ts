/**
 * Keeps each service's spec revisions (spec-revisions.ts) in line with the running config, and turns a
 * changed spec (or an update a restart interrupted) into an `update` operation. Also how many replicas a
 * service must have now: the config's, or a scale that still holds.
 */
import type { OttoConfig, ServiceConfig } from '../config/schema.js';
import type { Operation } from '../http/schemas.js';
import { containerSpecOf, type SecretDigests } from './container-spec.js';
import type { Ledger } from './ledger.js';
import type { OperationQueue } from './operations.js';
import { pendingReplicas, syncSpecs } from './spec-revisions.js';

export class SpecRollout {
  constructor(
    private readonly config: () => OttoConfig,
    private readonly ledger: Ledger,
    private readonly queue: () => OperationQueue,
    private readonly secretDigests: () => SecretDigests,
  ) {}

  /** A scale holds only while the config's replicas for the service stay what they were when it was made. */
  replicasOf(service: ServiceConfig): number {
    const scale = this.ledger.data.scales[service.name];
    return scale && scale.config_replicas === service.replicas ? scale.replicas : service.replicas;
  }

  /** Spec revisions in line with the config; returns the services whose spec changed. */
  sync(): string[] {
    const digests = this.secretDigests();
    const services = this.config().services.map((s) => ({ name: s.name, spec: containerSpecOf(s, digests), replicas: this.replicasOf(s) }));
    const changed = syncSpecs(this.ledger.data.specs, services);
    if (changed.length) this.ledger.saveSoon();
    return changed;
  }

  /** A changed spec rolls out as an update operation; so does one interrupted by a restart (not one on hold). */
  enqueueUpdates(changed: string[]): void {
    const queue = this.queue();
    for (const service of this.config().services) {
      const entry = this.ledger.data.specs[service.name];
      if (!entry || entry.hold || queue.hasPendingUpdate(service.name)) continue;
      if (pendingReplicas(entry, this.replicasOf(service)).length === 0) continue;
      const why = changed.includes(service.name) ? 'its spec changed in otto.yaml' : 'resuming an update that did not finish';
      queue.enqueue({ kind: 'update', service: service.name, message: `update of ${service.name}: ${why}` });
    }
  }
}

export function describeOperation(op: Operation): string {
  if (op.kind === 'scale') return `scale ${op.service}=${op.replicas}`;
  if (op.kind === 'migrate') return `migrate ${op.moves?.length ?? 0} replica(s) of ${op.service}`;
  if (op.replica !== undefined) return `${op.kind} ${op.service}#${op.replica}`;
  return `${op.kind} ${op.service}`;
}

/** What a reload of otto.yaml changed, in one line for its event. */
export function describeChange(before: OttoConfig, after: OttoConfig): string {
  const names = (c: OttoConfig) => new Set(c.services.map((s) => s.name));
  const added = [...names(after)].filter((n) => !names(before).has(n));
  const removed = [...names(before)].filter((n) => !names(after).has(n));
  const changed = after.services
    .filter((s) => names(before).has(s.name))
    .filter((s) => JSON.stringify(s) !== JSON.stringify(before.services.find((b) => b.name === s.name)))
    .map((s) => s.name);
  const parts = [
    added.length ? `added ${added.join(', ')}` : '',
    removed.length ? `removed ${removed.join(', ')}` : '',
    changed.length ? `changed ${changed.join(', ')}` : '',
  ].filter(Boolean);
  return parts.join('; ') || 'no service changed';
}
