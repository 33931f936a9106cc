/**
 * The node agent: one per node. Publishes node and container metrics every interval, and makes Docker
 * match the node's desired state (received over MQTT, kept on disk). Loses nothing when the broker or
 * Docker goes away: it keeps its containers, keeps reconciling, and retries.
 */
import { access } from 'node:fs/promises';
import { arch, hostname, platform } from 'node:os';
import type Dockerode from 'dockerode';
import mqtt, { type MqttClient } from 'mqtt';
import { InfrastructureError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { LABEL } from '../protocol/labels.js';
import {
  decode,
  desiredStateSchema,
  encode,
  logsControlSchema,
  logsRequestSchema,
  type DesiredState,
  type DockerHealth,
  type NodeState,
  type NodeStatus,
  type ReplicaState,
} from '../protocol/messages.js';
import { topics } from '../protocol/topics.js';
import { DockerRuntime, dockerFromUrl, type ManagedContainer } from '../runtime/docker.js';
import { OTTO_VERSION } from '../version.js';
import { DesiredStore } from './desired-store.js';
import { ImageBackoff } from './image-backoff.js';
import { LogStreamer } from './log-streamer.js';
import { removeAgentPid, runningAgentPid, writeAgentPid } from './pid-file.js';
import { ContainerMetricsCollector, type RunningContainer } from './metrics/container-metrics.js';
import { NodeMetricsCollector } from './metrics/node-metrics.js';
import { planReconcile, type ReconcileAction } from './reconcile-plan.js';

export interface AgentOptions {
  nodeId: string;
  cluster: string;
  mqttUrl: string;
  mqttUsername?: string;
  mqttPassword?: string;
  dockerUrl: string;
  /** Where the last desired state is kept. */
  stateDir: string;
  /** Until a desired state says otherwise. */
  metricsIntervalMs: number;
  logger: Logger;
}

export class Agent {
  private readonly runtime: DockerRuntime;
  private readonly store: DesiredStore;
  private readonly nodeMetrics: NodeMetricsCollector;
  private readonly containerMetrics: ContainerMetricsCollector;
  private readonly pulls = new ImageBackoff();
  private readonly pids = new Map<string, number>();
  private readonly log: Logger;
  private readonly logs: LogStreamer;
  private client?: MqttClient;
  private desired?: DesiredState;
  private docker: DockerHealth = { reachable: false, error: 'not checked yet' };
  private replicaErrors = new Map<string, string>();
  private intervalMs: number;
  /** Docker's container list as of the last reconcile. */
  private listing: Dockerode.ContainerInfo[] = [];
  private timer?: NodeJS.Timeout;
  private reconciling?: Promise<void>;
  private reconcileAgain = false;
  private eventsStream?: NodeJS.ReadableStream;
  private stopped = false;
  invalidMessages = 0;

  constructor(private readonly options: AgentOptions) {
    this.log = options.logger;
    const docker = dockerFromUrl(options.dockerUrl);
    this.runtime = new DockerRuntime(docker, options.cluster, options.nodeId);
    this.store = new DesiredStore(options.stateDir);
    this.nodeMetrics = new NodeMetricsCollector(options.nodeId);
    this.containerMetrics = new ContainerMetricsCollector(docker, options.nodeId);
    this.intervalMs = options.metricsIntervalMs;
    this.logs = new LogStreamer(docker, () => this.client, options.cluster, options.nodeId, this.log);
  }

  async start(): Promise<void> {
    const other = await runningAgentPid(this.options.stateDir);
    if (other) {
      throw new InfrastructureError(`another agent for node ${this.options.nodeId} is running (pid ${other})`, `stop it first: kill ${other}`);
    }
    await writeAgentPid(this.options.stateDir);
    this.desired = await this.store.load();
    if (this.desired) {
      this.intervalMs = this.desired.settings.metrics_interval_ms;
      this.log.info({ revision: this.desired.revision, replicas: this.desired.replicas.length }, 'loaded last desired state from disk');
    }
    this.connect();
    this.scheduleTick(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    (this.eventsStream as { destroy?: () => void } | undefined)?.destroy?.();
    this.logs.stopAll();
    await this.reconciling;
    const client = this.client;
    if (client?.connected) {
      await client.publishAsync(topics.status(this.options.nodeId), encode(this.status('offline', 'agent stopped')), {
        retain: true,
        qos: 1,
      });
    }
    await client?.endAsync();
    await removeAgentPid(this.options.stateDir);
  }

  private status(state: NodeStatus['state'], reason?: string): NodeStatus {
    return {
      node_id: this.options.nodeId,
      state,
      timestamp: new Date().toISOString(),
      reason,
      agent_version: OTTO_VERSION,
      pid: process.pid,
      hostname: hostname(),
      arch: arch(),
      platform: platform(),
    };
  }

  private connect(): void {
    const { nodeId } = this.options;
    const client = mqtt.connect(this.options.mqttUrl, {
      clientId: `otto-agent-${this.options.cluster}-${nodeId}`,
      username: this.options.mqttUsername,
      password: this.options.mqttPassword,
      reconnectPeriod: 2_000,
      connectTimeout: 10_000,
      will: {
        topic: topics.status(nodeId),
        payload: Buffer.from(encode(this.status('offline', 'connection lost'))),
        retain: true,
        qos: 1,
      },
    });
    this.client = client;
    client.on('connect', () => {
      this.log.info({ broker: this.options.mqttUrl }, 'connected to MQTT');
      client.publish(topics.status(nodeId), encode(this.status('online')), { retain: true, qos: 1 });
      client.subscribe([topics.desired(nodeId), topics.logsRequest(nodeId), topics.logsControl(nodeId)], { qos: 1 });
    });
    client.on('offline', () => this.log.warn('MQTT broker unreachable; keeping containers as they are and retrying'));
    client.on('error', (err) => this.log.warn({ err: errorMessage(err) }, 'MQTT error'));
    client.on('message', (topic, payload) => {
      if (topic === topics.desired(nodeId)) void this.onDesired(payload);
      else if (topic === topics.logsRequest(nodeId)) this.onLogsRequest(payload);
      else if (topic === topics.logsControl(nodeId)) {
        const control = decode(logsControlSchema, payload);
        if (control.ok) this.logs.control(control.value);
        else this.invalidMessages++;
      }
    });
  }

  private onLogsRequest(payload: Buffer): void {
    const request = decode(logsRequestSchema, payload);
    if (!request.ok) {
      this.invalidMessages++;
      this.log.warn({ error: request.error }, 'ignored an invalid logs request');
      return;
    }
    void this.logs.serve(request.value);
  }

  private async onDesired(payload: Buffer): Promise<void> {
    const decoded = decode(desiredStateSchema, payload);
    if (!decoded.ok) {
      this.invalidMessages++;
      this.log.warn({ error: decoded.error }, 'ignored an invalid desired state');
      return;
    }
    const desired = decoded.value;
    if (desired.node_id !== this.options.nodeId || desired.cluster !== this.options.cluster) {
      this.invalidMessages++;
      this.log.warn({ node: desired.node_id, cluster: desired.cluster }, 'ignored a desired state meant for another node');
      return;
    }
    if (this.desired && desired.revision === this.desired.revision) return;
    this.desired = desired;
    if (desired.settings.metrics_interval_ms !== this.intervalMs) {
      this.intervalMs = desired.settings.metrics_interval_ms;
      this.scheduleTick(0);
    }
    this.log.info({ revision: desired.revision, replicas: desired.replicas.length }, 'new desired state');
    await this.store.save(desired).catch((err) => this.log.error({ err: errorMessage(err) }, 'cannot save desired state'));
    void this.requestReconcile();
  }

  private scheduleTick(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  /** Reconcile, then metrics from the container list the reconcile just read: one Docker list per tick. */
  private async tick(): Promise<void> {
    const startedAt = Date.now();
    await this.requestReconcile();
    await this.publishMetrics().catch((err) => this.log.warn({ err: errorMessage(err) }, 'metrics cycle failed'));
    this.scheduleTick(Math.max(0, this.intervalMs - (Date.now() - startedAt)));
  }

  /** One reconcile at a time; a request during a run makes exactly one more run. */
  requestReconcile(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return this.reconciling;
    }
    this.reconciling = this.reconcileLoop().finally(() => (this.reconciling = undefined));
    return this.reconciling;
  }

  private async reconcileLoop(): Promise<void> {
    do {
      this.reconcileAgain = false;
      await this.reconcile().catch((err) => this.log.error({ err: errorMessage(err) }, 'reconcile failed'));
    } while (this.reconcileAgain && !this.stopped);
  }

  private async reconcile(): Promise<void> {
    const wasReachable = this.docker.reachable;
    try {
      this.listing = await this.runtime.listAll();
    } catch (err) {
      this.listing = [];
      this.docker = { reachable: false, error: errorMessage(err) };
      if (wasReachable) this.log.error({ error: this.docker.error }, 'Docker unreachable; retrying every interval');
      this.publishState([]);
      return;
    }
    if (!wasReachable) {
      // The version is asked once per (re)connection, not at every tick.
      this.docker = await this.runtime.health();
      this.watchDockerEvents();
    }
    const actions = planReconcile(this.desired?.replicas ?? [], this.runtime.managedOf(this.listing));
    for (const action of actions) {
      if (this.stopped) return;
      await this.apply(action);
    }
    if (actions.length) this.listing = await this.runtime.listAll();
    this.publishState(this.runtime.managedOf(this.listing));
  }

  private async apply(action: ReconcileAction): Promise<void> {
    if (action.kind === 'remove') {
      this.log.info({ container: action.name }, 'removing container that is no longer desired');
      await this.runtime.remove(action.containerId);
      return;
    }
    const { replica } = action;
    this.replicaErrors.delete(replica.name);
    try {
      if (action.kind === 'start') {
        this.log.info({ container: replica.name }, 'starting stopped container');
        await this.runtime.start(action.containerId);
        return;
      }
      if (!(await this.ensureImage(replica.container.image))) return;
      if (action.kind === 'replace') {
        this.log.info({ container: replica.name, spec: replica.spec_hash }, 'spec changed: replacing container');
        await this.runtime.remove(action.containerId);
      } else {
        this.log.info({ container: replica.name }, 'creating container');
      }
      await this.runtime.createAndStart(replica);
    } catch (err) {
      this.replicaErrors.set(replica.name, errorMessage(err));
      this.log.error({ container: replica.name, err: errorMessage(err) }, 'cannot run replica');
    }
  }

  /** True when the image is here; a failed pull is remembered, reported and retried with backoff. */
  private async ensureImage(image: string): Promise<boolean> {
    if (await this.runtime.hasImage(image)) return true;
    if (!this.pulls.canTry(image)) return false;
    this.log.info({ image }, 'pulling image');
    try {
      await this.runtime.pull(image);
      this.pulls.succeeded(image);
      return true;
    } catch (err) {
      this.pulls.failed(image, errorMessage(err));
      this.log.error({ image, err: errorMessage(err) }, 'pull failed; retrying with backoff');
      return false;
    }
  }

  private publishState(actual: ManagedContainer[]): void {
    const byName = new Map(actual.map((c) => [c.name, c]));
    const replicas: ReplicaState[] = (this.desired?.replicas ?? []).map((replica) => {
      const container = byName.get(replica.name);
      const error = this.replicaErrors.get(replica.name) ?? this.pulls.error(replica.container.image);
      if (!container) {
        return {
          service: replica.service,
          replica: replica.replica,
          name: replica.name,
          state: error ? 'error' : 'missing',
          health: 'none',
          spec_hash: replica.spec_hash,
          error,
        };
      }
      return {
        service: replica.service,
        replica: replica.replica,
        name: replica.name,
        container_id: container.id,
        state: container.state,
        health: container.health,
        spec_hash: container.specHash,
        error: container.specHash === replica.spec_hash ? undefined : error,
      };
    });
    const state: NodeState = {
      node_id: this.options.nodeId,
      timestamp: new Date().toISOString(),
      revision: this.desired?.revision ?? -1,
      docker: this.docker,
      replicas,
    };
    this.client?.publish(topics.state(this.options.nodeId), encode(state), { qos: 0 });
  }

  /** Docker tells us at once when a container dies or is removed, so healing does not wait a tick. */
  private watchDockerEvents(): void {
    const filters = { type: ['container' as const], event: ['start', 'die', 'destroy', 'stop', 'health_status'], label: [`${LABEL.cluster}=${this.options.cluster}`, `${LABEL.node}=${this.options.nodeId}`] };
    this.runtime.docker.getEvents({ filters }, (err, stream) => {
      if (err || !stream || this.stopped) return;
      this.eventsStream = stream;
      let debounce: NodeJS.Timeout | undefined;
      stream.on('data', () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => void this.requestReconcile(), 300);
      });
      stream.on('error', () => undefined);
    });
  }

  private async publishMetrics(): Promise<void> {
    const client = this.client;
    const nodeMetrics = await this.nodeMetrics.collect();
    if (client?.connected) client.publish(topics.nodeMetrics(this.options.nodeId), encode(nodeMetrics));
    if (!this.docker.reachable) return;
    const started = performance.now();
    const running = await this.runningContainers();
    const batch = await this.containerMetrics.collect(running);
    if (client?.connected) client.publish(topics.containerMetrics(this.options.nodeId), encode(batch));
    // `npm run bench:agent` reads this line.
    this.log.debug({ containers: batch.containers.length, cycleMs: Math.round((performance.now() - started) * 10) / 10 }, 'container metrics cycle');
  }

  /** Every running container of the node (Otto's and others), with the pid the cgroup reader needs. */
  private async runningContainers(): Promise<RunningContainer[]> {
    const list = this.listing.filter((c) => c.State === 'running');
    const seen = new Set<string>();
    const containers = await Promise.all(
      list.map(async (c): Promise<RunningContainer | undefined> => {
        seen.add(c.Id);
        const pid = await this.cachedPid(c.Id);
        if (!pid) return undefined;
        const ours = c.Labels[LABEL.cluster] === this.options.cluster;
        return {
          id: c.Id,
          name: (c.Names[0] ?? '').replace(/^\//, ''),
          pid,
          service: ours ? c.Labels[LABEL.service] : undefined,
          replica: ours ? Number(c.Labels[LABEL.replica]) : undefined,
        };
      }),
    );
    for (const id of this.pids.keys()) if (!seen.has(id)) this.pids.delete(id);
    return containers.filter((c): c is RunningContainer => c !== undefined);
  }

  /** A container's pid changes only when it restarts, and then its old pid is gone from /proc. */
  private async cachedPid(id: string): Promise<number> {
    const known = this.pids.get(id);
    if (known && (await access(`/proc/${known}`).then(() => true, () => false))) return known;
    const pid = await this.runtime.pid(id).catch(() => 0);
    if (pid) this.pids.set(id, pid);
    return pid;
  }
}
