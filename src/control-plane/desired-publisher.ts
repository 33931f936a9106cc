/**
 * The control plane's one reconcile: compute the plan and publish each node's desired state (retained,
 * QoS 1) where it changed, one run at a time. Operations, ticks and node events all ask through
 * `replan()`; a request during a run gets one more run after it, computed then, so a plan made earlier can
 * never be published after a newer one. Revisions only grow per node, across restarts (the ledger keeps
 * the last one) and past whatever the agent says it runs.
 */
import type { OttoConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { DesiredState, ReplicaSpec } from '../protocol/messages.js';
import type { RegistryRef } from '../protocol/secrets.js';
import { desiredStateFor, type ClusterPlan } from './desired-state.js';
import type { Ledger } from './ledger.js';

export interface PublisherHost {
  config(): OttoConfig;
  ledger: Ledger;
  log: Logger;
  computePlan(): ClusterPlan;
  /** The plan of the last run, for views. */
  planned(plan: ClusterPlan): void;
  /** Publishes retained with QoS 1; resolves once the broker has it or the attempt is given up on. */
  publish(nodeId: string, desired: DesiredState): Promise<void>;
  /** The revision the node's agent last said it runs. */
  agentRevision(nodeId: string): number | undefined;
  /** The registry credentials (by hash) a node running these replicas gets. */
  registriesFor?(replicas: ReplicaSpec[]): RegistryRef[];
}

/** A replan asked for "soon" waits at least this, and ten times what the last run took (a fleet reconnecting asks thousands of times). */
const SOON_MIN_MS = 20;

/** What decides a node's desired state: a replica's spec hash stands for its container. */
function contentKey(replicas: ReplicaSpec[], registries: RegistryRef[], interval: string, cluster: string): string {
  let key = `${cluster}|${interval}|${registries.map((r) => `${r.host}@${r.hash}`).join(',')}`;
  for (const r of replicas) key += `|${r.service}#${r.replica}=${r.name}@${r.spec_hash}${r.update_order ? `/${r.update_order}` : ''}`;
  return key;
}

export class DesiredPublisher {
  private readonly published = new Map<string, { key: string; desired: DesiredState }>();
  private running?: Promise<void>;
  private next?: Promise<void>;
  private soonTimer?: NodeJS.Timeout;
  private lastRunMs = 0;
  private stopped = false;

  constructor(private readonly host: PublisherHost) {}

  lastPublished(nodeId: string): DesiredState | undefined {
    return this.published.get(nodeId)?.desired;
  }

  revisions(): [string, number][] {
    return [...this.published].map(([nodeId, { desired }]) => [nodeId, desired.revision]);
  }

  /** Resolves after a run that started after this call. */
  replan(): Promise<void> {
    if (!this.running) {
      this.running = this.run().finally(() => (this.running = undefined));
      return this.running;
    }
    this.next ??= this.running.then(() => {
      this.next = undefined;
      return this.replan();
    });
    return this.next;
  }

  /** A replan shortly: the requests until then share it. For node transitions, which come in bursts. */
  replanSoon(): void {
    if (this.soonTimer || this.stopped) return;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = undefined;
      if (!this.stopped) void this.replan();
    }, Math.max(SOON_MIN_MS, 10 * this.lastRunMs));
  }

  /** No replan is started any more (a run under way finishes). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.soonTimer);
  }

  /**
   * An agent runs a newer revision than we published (our ledger was lost or is older): publish the same
   * content again above it, so the agent does not ignore what the control plane wants.
   */
  agentIsAhead(nodeId: string, revision: number): void {
    const entry = this.published.get(nodeId);
    if (entry && revision > entry.desired.revision) {
      this.published.delete(nodeId);
      void this.replan();
    }
  }

  /** After the broker came back (it may have lost its retained messages): every node's desired state again. */
  republishAll(): void {
    for (const [nodeId, { desired }] of this.published) {
      void this.host.publish(nodeId, desired).catch((err) => this.host.log.warn({ node: nodeId, err: errorMessage(err) }, 'cannot publish desired state'));
    }
  }

  private async run(): Promise<void> {
    const { host } = this;
    const started = performance.now();
    const plan = host.computePlan();
    host.planned(plan);
    const config = host.config();
    const revisions = host.ledger.data.desired_revisions;
    for (const nodeId of [...this.published.keys()]) if (!plan.replicasByNode.has(nodeId)) this.published.delete(nodeId);
    const changed: [string, DesiredState][] = [];
    for (const [nodeId, replicas] of plan.replicasByNode) {
      const registries = host.registriesFor?.(replicas) ?? [];
      const key = contentKey(replicas, registries, config.metrics.interval, config.cluster.name);
      const before = this.published.get(nodeId);
      if (before?.key === key) continue;
      const revision = Math.max(Date.now(), (before?.desired.revision ?? 0) + 1, (revisions[nodeId] ?? 0) + 1, (host.agentRevision(nodeId) ?? 0) + 1);
      const desired = desiredStateFor(config, nodeId, replicas, revision);
      if (registries.length > 0) desired.registries = registries;
      this.published.set(nodeId, { key, desired });
      revisions[nodeId] = revision;
      changed.push([nodeId, desired]);
    }
    this.lastRunMs = performance.now() - started;
    if (changed.length === 0) return;
    host.ledger.saveSoon();
    await Promise.all(
      changed.map(async ([nodeId, desired]) => {
        try {
          await host.publish(nodeId, desired);
          host.log.info({ node: nodeId, revision: desired.revision, replicas: desired.replicas.length }, 'published desired state');
        } catch (err) {
          host.log.warn({ node: nodeId, err: errorMessage(err) }, 'cannot publish desired state; it goes out when the broker is back');
        }
      }),
    );
  }
}
