/**
 * The control plane: the embedded broker, one MQTT client subscribed to every node, the node registry,
 * the control loop (config reload, placement, desired state, drift, healing records), the operation
 * queue, the ledger, the local agents, and the HTTP API the CLI and the dashboard use.
 */
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import mqtt, { type MqttClient } from 'mqtt';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { isLocalNode } from '../config/nodes.js';
import type { OttoConfig, ServiceConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { InfrastructureError, NotFoundError, errorMessage } from '../errors.js';
import { startApi } from '../http/api.js';
import type { ApiHandlers, ControlPlaneCounters } from '../http/handlers.js';
import type { ClusterEvent, ClusterStatus, LiveEvent, Operation, ServiceView } from '../http/schemas.js';
import type { Logger } from '../log.js';
import { containerName } from '../protocol/labels.js';
import {
  containerMetricsBatchSchema,
  decode,
  encode,
  nodeMetricsSchema,
  nodeStateSchema,
  nodeStatusSchema,
  type DecodeResult,
  type NodeState,
} from '../protocol/messages.js';
import { privilegedCredentials } from '../protocol/broker-auth.js';
import { brokerUrl, dialableHost } from '../protocol/broker-url.js';
import { controlPlaneSubscriptions, parseTopic, topics } from '../protocol/topics.js';
import { writeAtomic, type Workspace } from '../workspace.js';
import { RemoteAgentManager } from '../remote/manager.js';
import { remoteMqttUrl } from '../remote/mqtt-address.js';
import { AgentSupervisor } from './agent-supervisor.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './broker.js';
import { ConfigWatcher } from './config-watcher.js';
import { containerSpecOf } from './container-spec.js';
import { DriftTracker } from './drift.js';
import { desiredStateFor, planCluster, replicaSpec, type ClusterPlan } from './desired-state.js';
import { Ledger, readEvents } from './ledger.js';
import { NodeRegistry } from './node-registry.js';
import { OperationQueue } from './operations.js';
import { replicaKey } from './placement.js';
import { ReplicaTracker } from './replica-tracker.js';
import { serviceView } from './service-view.js';

const RECENT_EVENTS = 1_000;
/** How long a node never heard from since the control plane started still counts as available. */
const STARTUP_GRACE_MS = 20_000;

export class ControlPlane implements ApiHandlers {
  private loaded!: LoadedConfig;
  private plan!: ClusterPlan;
  private registry!: NodeRegistry;
  private watcher!: ConfigWatcher;
  private broker?: EmbeddedBroker;
  private client?: MqttClient;
  private api?: FastifyInstance;
  private readonly supervisor: AgentSupervisor;
  private readonly remote: RemoteAgentManager;
  private readonly ledger: Ledger;
  private readonly queue: OperationQueue;
  private readonly tracker = new ReplicaTracker();
  private readonly live = new EventEmitter();
  private readonly publishedDesired = new Map<string, { key: string; revision: number }>();
  private readonly drift = new DriftTracker();
  private readonly online = new Set<string>();
  private readonly startedAt = new Date();
  private configError: string | null = null;
  /** The newest events, for the API; the whole history stays in .otto/events.jsonl. */
  private recentEvents: ClusterEvent[] = [];
  private tickTimer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  private statusTimer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopping = false;
  private started = false;
  private readonly stats: ControlPlaneCounters = {
    messages_received: 0,
    invalid_messages: 0,
    reconcile_seconds_sum: 0,
    reconcile_count: 0,
    operations_by_result: {},
  };

  constructor(
    private readonly configPath: string,
    private readonly workspace: Workspace,
    private readonly log: Logger,
    pretty: boolean,
  ) {
    this.supervisor = new AgentSupervisor(configPath, (id) => workspace.agentStateDir(id), log.child({ component: 'supervisor' }), pretty);
    this.remote = new RemoteAgentManager({ workspaceDir: workspace.dir, log: log.child({ component: 'remote' }) });
    this.ledger = new Ledger(workspace.dir);
    this.live.setMaxListeners(0);
    this.queue = new OperationQueue({
      ledger: this.ledger,
      log: log.child({ component: 'operations' }),
      service: (name) => this.config.services.find((s) => s.name === name),
      effectiveReplicas: (service) => this.replicasOf(service),
      replan: () => this.replan(),
      replicas: (name) => this.replicaViews(name),
      converged: () => this.converged(),
      changed: (op) => this.operationChanged(op),
    });
  }

  get config(): OttoConfig {
    return this.loaded.config;
  }

  get mqttUrl(): string {
    return brokerUrl(this.config.mqtt.host, this.config.mqtt.port);
  }

  get apiUrl(): string {
    return `http://${dialableHost(this.config.http.listen)}:${this.config.http.port}`;
  }

  private get heartbeatTimeoutMs(): number {
    return 3 * parseDuration(this.config.metrics.interval);
  }

  async start(): Promise<void> {
    this.loaded = await loadConfig(this.configPath);
    const { config } = this.loaded;
    this.watcher = new ConfigWatcher(this.loaded.path, this.loaded.hash);
    await this.ledger.load();
    this.recentEvents = (await readEvents(this.ledger.eventsFile)).slice(-RECENT_EVENTS);
    this.registry = new NodeRegistry(config.nodes.map((n) => n.id), this.heartbeatTimeoutMs);
    this.plan = this.computePlan();

    if (config.mqtt.embedded) {
      this.broker = await startEmbeddedBroker({
        ...config.mqtt,
        token: await this.workspace.token(),
        onRefused: (clientId, topic) => this.log.warn({ clientId, topic }, 'refused a publish reserved for the control plane'),
      });
      this.log.info({ url: this.mqttUrl }, 'embedded MQTT broker listening');
    }
    await this.connectMqtt();
    this.api = await startApi({
      host: config.http.listen,
      port: config.http.port,
      token: await this.workspace.token(),
      handlers: this,
      metricsPublic: config.http.metrics_public,
      log: this.log.child({ component: 'api' }),
    }).catch((err: NodeJS.ErrnoException) => {
      throw new InfrastructureError(
        `cannot serve the API on ${config.http.listen}:${config.http.port}: ${err.code ?? err.message}`,
        err.code === 'EADDRINUSE' ? 'change http.port in otto.yaml' : undefined,
      );
    });
    this.log.info({ url: this.apiUrl }, 'API and dashboard listening');
    await this.publishDesired();
    await this.supervisor.ensure(config.nodes.filter(isLocalNode).map((n) => n.id));
    await this.ensureRemoteAgents(config);
    this.heartbeatTimer = setInterval(() => this.checkHeartbeats(), 1_000);
    this.scheduleTick();
    await this.workspace.writeControlPlane({ pid: process.pid, api_url: this.apiUrl, started_at: this.startedAt.toISOString() });
    this.started = true;
    await this.event({ kind: 'control-plane-started', message: `control plane started (pid ${process.pid})` });
    this.queue.resume();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.queue.stop();
    clearTimeout(this.tickTimer);
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.statusTimer);
    await this.ticking;
    await this.supervisor.stopAll();
    // `otto cluster stop` only sees this process exit: tell it which remote agents could not be stopped.
    await this.workspace.writeStopReport(await this.remote.stopAll());
    if (this.started) await this.event({ kind: 'control-plane-stopped', message: 'control plane stopped; containers keep running' }).catch(() => undefined);
    await this.api?.close();
    await this.client?.endAsync().catch(() => undefined);
    await this.broker?.close();
    await this.ledger.save();
    await this.workspace.clearControlPlane();
  }

  // ---- MQTT ---------------------------------------------------------------------------------------

  private async connectMqtt(): Promise<void> {
    const { mqtt: mqttConfig } = this.config;
    const client = mqtt.connect(this.mqttUrl, {
      clientId: `otto-control-plane-${this.config.cluster.name}`,
      ...privilegedCredentials(mqttConfig, await this.workspace.token()),
      reconnectPeriod: 2_000,
      connectTimeout: 5_000,
    });
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err) => this.log.warn({ err: errorMessage(err) }, 'MQTT error'));
    client.on('offline', () => this.log.warn({ url: this.mqttUrl }, 'MQTT broker unreachable; retrying'));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.end(true);
        reject(new InfrastructureError(`MQTT broker ${this.mqttUrl} unreachable`, 'start the broker, or set mqtt.embedded: true'));
      }, 10_000);
      client.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await client.subscribeAsync(controlPlaneSubscriptions, { qos: 0 });
    this.log.info({ url: this.mqttUrl }, 'connected to MQTT');
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = parseTopic(topic);
    if (!parsed) return;
    this.stats.messages_received++;
    const id = parsed.nodeId;
    switch (parsed.kind) {
      case 'nodeMetrics':
        return this.accept(topic, id, decode(nodeMetricsSchema, payload), (m) => {
          if (!this.registry.recordMetrics(m)) return false;
          this.emitLive({ type: 'node-metrics', data: m });
          return true;
        });
      case 'containerMetrics':
        return this.accept(topic, id, decode(containerMetricsBatchSchema, payload), (b) => this.registry.recordContainers(b));
      case 'status':
        return this.accept(topic, id, decode(nodeStatusSchema, payload), (s) => this.registry.recordStatus(s));
      case 'state':
        return this.accept(topic, id, decode(nodeStateSchema, payload), (s) => this.onNodeState(s));
    }
  }

  /** Validated messages go on; invalid ones are counted and logged, never thrown. */
  private accept<T extends { node_id: string }>(topic: string, topicNodeId: string, result: DecodeResult<T>, record: (value: T) => boolean): void {
    if (!result.ok) {
      this.stats.invalid_messages++;
      this.log.warn({ topic, error: result.error }, 'invalid message ignored');
      return;
    }
    if (result.value.node_id !== topicNodeId) {
      this.stats.invalid_messages++;
      this.log.warn({ topic, node: result.value.node_id }, 'message names another node than its topic; ignored');
      return;
    }
    if (record(result.value)) {
      this.checkHeartbeats();
      this.statusChanged();
    }
  }

  private onNodeState(state: NodeState): boolean {
    if (!this.registry.recordState(state)) return false;
    const { changes, containers } = this.tracker.observe(state, (name) => this.expectedHash(state.node_id, name));
    for (const change of changes) void this.event({ kind: change.kind, node: change.node, service: change.service, replica: change.replica, message: change.message });
    this.recordContainers(state.node_id, containers);
    return true;
  }

  /** Keeps the ledger's replica records: which container ran which replica, when it came and went. */
  private recordContainers(nodeId: string, seen: { service: string; replica: number; containerId: string }[]): void {
    const now = new Date().toISOString();
    const records = this.ledger.data.replicas;
    const seenIds = new Set(seen.map((s) => s.containerId));
    let changed = false;
    for (const record of records) {
      if (record.node === nodeId && !record.removed && !seenIds.has(record.container_id)) {
        record.removed = now;
        changed = true;
      }
    }
    const known = new Set(records.filter((r) => !r.removed).map((r) => r.container_id));
    for (const s of seen) {
      if (known.has(s.containerId)) continue;
      records.push({ service: s.service, replica: s.replica, node: nodeId, container_id: s.containerId, created: now });
      changed = true;
    }
    if (changed) void this.ledger.save();
  }

  private expectedHash(nodeId: string, name: string): string | undefined {
    return this.plan.replicasByNode.get(nodeId)?.find((r) => r.name === name)?.spec_hash;
  }

  private checkHeartbeats(): void {
    for (const node of this.registry.all()) {
      const online = this.registry.isOnline(node.id);
      if (online === this.online.has(node.id)) continue;
      if (online) this.online.add(node.id);
      else this.online.delete(node.id);
      void this.event({ kind: online ? 'node-online' : 'node-offline', node: node.id, message: `node ${node.id} is ${online ? 'online' : 'offline'}` });
      this.requestTick();
    }
  }

  // ---- control loop -------------------------------------------------------------------------------

  private scheduleTick(): void {
    if (this.stopping) return;
    this.tickTimer = setTimeout(() => this.requestTick(), parseDuration(this.config.control.interval));
  }

  /** One tick at a time; ticks also run on events (node online/offline). */
  private requestTick(): void {
    if (this.ticking || this.stopping) return;
    clearTimeout(this.tickTimer);
    this.ticking = this.tick()
      .catch((err) => this.log.error({ err: errorMessage(err) }, 'control loop tick failed'))
      .finally(() => {
        this.ticking = undefined;
        this.scheduleTick();
      });
  }

  private async tick(): Promise<void> {
    const started = performance.now();
    await this.reloadConfig();
    await this.replan();
    this.recordDrift();
    this.stats.reconcile_count++;
    this.stats.reconcile_seconds_sum += (performance.now() - started) / 1000;
  }

  private async reloadConfig(): Promise<void> {
    const change = await this.watcher.check();
    if (change.kind === 'rejected') {
      this.configError = change.error;
      this.log.error({ error: change.error }, 'otto.yaml changed but is invalid; keeping the running config');
      await this.event({ kind: 'config-rejected', message: `config rejected, still running the previous one: ${change.error}` });
      return;
    }
    if (change.kind === 'restored') {
      this.configError = null;
      await this.event({ kind: 'config-reloaded', message: 'config reloaded: otto.yaml is back to the running config' });
      return;
    }
    if (change.kind !== 'reloaded') return;
    const before = this.config;
    this.loaded = { ...this.loaded, config: change.config, text: change.text, hash: change.hash };
    this.configError = null;
    this.registry.setNodes(change.config.nodes.map((n) => n.id), this.heartbeatTimeoutMs);
    // A scale holds only while the config's replicas for the service stay what they were when it was made.
    for (const [name, scale] of Object.entries(this.ledger.data.scales)) {
      const service = change.config.services.find((s) => s.name === name);
      if (!service || service.replicas !== scale.config_replicas) delete this.ledger.data.scales[name];
    }
    await this.ledger.save();
    await writeAtomic(this.workspace.snapshotPath, change.text);
    await writeAtomic(this.workspace.hashPath, `${change.hash}\n`);
    await this.supervisor.ensure(change.config.nodes.filter(isLocalNode).map((n) => n.id));
    await this.ensureRemoteAgents(change.config).catch((err) => this.log.error({ err: errorMessage(err) }, 'remote agents'));
    this.log.info({ hash: change.hash.slice(0, 12) }, 'otto.yaml reloaded');
    await this.event({ kind: 'config-reloaded', message: `config reloaded: ${describeChange(before, change.config)}` });
  }

  /** Starts (or keeps, or upgrades) the agents of nodes reached over SSH; stops those of nodes removed. */
  private async ensureRemoteAgents(config: OttoConfig): Promise<void> {
    const remoteNodes = config.nodes.filter((n) => !isLocalNode(n));
    const mqttUrl = remoteMqttUrl(config.mqtt);
    if (remoteNodes.length > 0 && !mqttUrl) throw new InfrastructureError('no broker address for remote nodes', 'set mqtt.advertise in otto.yaml');
    await this.remote.ensure(remoteNodes, { cluster: config.cluster.name, mqttUrl: mqttUrl ?? '', interval: config.metrics.interval });
  }

  private replicasOf(service: ServiceConfig): number {
    const scale = this.ledger.data.scales[service.name];
    return scale && scale.config_replicas === service.replicas ? scale.replicas : service.replicas;
  }

  private computePlan(): ClusterPlan {
    const previous = new Map<string, string>();
    for (const record of this.ledger.data.replicas) if (!record.removed) previous.set(replicaKey(record.service, record.replica), record.node);
    for (const a of this.plan?.placement.assignments ?? []) previous.set(replicaKey(a.service, a.replica), a.nodeId);
    // Until its agent had time to say hello, a node counts as available, so a start does not pile every
    // replica on the first node to answer.
    const warmingUp = Date.now() - this.startedAt.getTime() < Math.max(this.heartbeatTimeoutMs, STARTUP_GRACE_MS);
    return planCluster(this.config, {
      replicasOf: (s) => this.replicasOf(s),
      previous,
      available: (id) => this.registry.isOnline(id) || (warmingUp && !this.registry.get(id)?.lastSeen),
      generationOf: (service, replica) => this.ledger.data.generations[service]?.[replica] ?? 0,
    });
  }

  private async replan(): Promise<void> {
    this.plan = this.computePlan();
    await this.publishDesired();
    this.statusChanged();
  }

  /** Publishes each node's desired state (retained, QoS 1) when it changed. */
  private async publishDesired(): Promise<void> {
    for (const [nodeId, replicas] of this.plan.replicasByNode) {
      const key = JSON.stringify([replicas, this.config.metrics.interval, this.config.cluster.name]);
      const previous = this.publishedDesired.get(nodeId);
      if (previous?.key === key) continue;
      const revision = Math.max(Date.now(), (previous?.revision ?? 0) + 1);
      const desired = desiredStateFor(this.config, nodeId, replicas, revision);
      await this.client!.publishAsync(topics.desired(nodeId), encode(desired), { qos: 1, retain: true });
      this.publishedDesired.set(nodeId, { key, revision });
      this.log.info({ node: nodeId, revision, replicas: replicas.length }, 'published desired state');
    }
  }

  /** Every online node has reported on the last desired state it was sent. */
  private converged(): boolean {
    return [...this.publishedDesired].every(([nodeId, { revision }]) => {
      const state = this.registry.get(nodeId)?.state;
      return !this.registry.isOnline(nodeId) || (state !== undefined && state.revision >= revision);
    });
  }

  private recordDrift(): void {
    const { found, cleared } = this.drift.observe(this.serviceViews());
    for (const d of found) void this.event({ kind: 'drift-found', service: d.service, message: `${d.service}: ${d.running}/${d.desired} replicas running` });
    for (const d of cleared) void this.event({ kind: 'drift-cleared', service: d.service, message: `${d.service}: ${d.running}/${d.desired} replicas running` });
  }

  // ---- events and live updates --------------------------------------------------------------------

  private async event(event: Omit<ClusterEvent, 'id' | 'time'>): Promise<void> {
    const full = await this.ledger.appendEvent(event);
    this.recentEvents.push(full);
    if (this.recentEvents.length > RECENT_EVENTS) this.recentEvents.shift();
    this.log.info({ kind: full.kind, node: full.node, service: full.service }, full.message);
    this.emitLive({ type: 'event', data: full });
  }

  private operationChanged(op: Operation): void {
    if (op.state === 'queued') void this.event({ kind: 'operation-queued', service: op.service, message: `${describeOperation(op)} queued` });
    else if (op.state === 'running' && !op.progress) void this.event({ kind: 'operation-started', service: op.service, message: `${describeOperation(op)} started` });
    else if (op.finished_at && op.state !== 'running') {
      this.stats.operations_by_result[op.state] = (this.stats.operations_by_result[op.state] ?? 0) + 1;
      void this.event({ kind: 'operation-finished', service: op.service, message: `${describeOperation(op)} ${op.state}: ${op.message ?? ''}`.trim() });
    }
    this.emitLive({ type: 'operation', data: { ...op } });
    this.statusChanged();
  }

  private emitLive(event: LiveEvent): void {
    this.live.emit('live', event);
  }

  /** Status snapshots for live listeners, at most one per second. */
  private statusChanged(): void {
    if (this.statusTimer || this.live.listenerCount('live') === 0) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      this.emitLive({ type: 'status', data: this.status() });
    }, 1_000);
  }

  // ---- views (ApiHandlers) ------------------------------------------------------------------------

  private serviceViews(): ServiceView[] {
    return this.config.services.map((service) =>
      serviceView(
        service,
        this.plan.placement,
        (nodeId, name) => this.registry.get(nodeId)?.state?.replicas.find((r) => r.name === name),
        (replica) => containerName(this.config.cluster.name, service.name, replica),
        (nodeId) => this.registry.isOnline(nodeId),
      ),
    );
  }

  private replicaViews(serviceName: string) {
    const service = this.config.services.find((s) => s.name === serviceName);
    const view = this.serviceViews().find((v) => v.name === serviceName);
    if (!service || !view) return [];
    const base = containerSpecOf(service);
    return view.replicas.map((r) => ({
      ...r,
      expected_hash: replicaSpec(this.config.cluster.name, service.name, r.replica, base, this.ledger.data.generations[service.name]?.[r.replica] ?? 0).spec_hash,
    }));
  }

  status(): ClusterStatus {
    const { config } = this;
    return {
      cluster: {
        name: config.cluster.name,
        config_path: this.loaded.path,
        config_hash: this.loaded.hash,
        config_error: this.configError,
        started_at: this.startedAt.toISOString(),
        pid: process.pid,
        mqtt_url: this.mqttUrl,
        embedded_broker: config.mqtt.embedded,
      },
      nodes: config.nodes.map((node) => {
        const record = this.registry.get(node.id);
        return {
          id: node.id,
          host: node.host,
          local: isLocalNode(node),
          online: this.registry.isOnline(node.id),
          last_seen: record?.lastSeen ? new Date(record.lastSeen).toISOString() : null,
          agent_version: record?.status?.agent_version ?? null,
          arch: record?.status?.arch ?? null,
          agent_pid: record?.status?.pid ?? (isLocalNode(node) ? null : (this.remote.agentPid(node.id) ?? null)),
          ssh_state: isLocalNode(node) ? null : this.remote.sshState(node.id),
          docker: record?.state?.docker ?? null,
          metrics: record?.metrics ?? null,
          containers: record?.containers?.containers ?? [],
        };
      }),
      services: this.serviceViews(),
      drift: this.drift.current(),
      operation: this.queue.current(),
      queue: this.queue.queued(),
      counters: { messages_received: this.stats.messages_received, invalid_messages: this.stats.invalid_messages },
    };
  }

  nodeMetrics(nodeId: string, sinceMs?: number) {
    const record = this.registry.get(nodeId);
    if (!record) return undefined;
    return sinceMs === undefined ? [...record.history] : record.history.filter((m) => Date.parse(m.timestamp) > sinceMs);
  }

  scale(service: string, replicas: number): Operation {
    this.requireService(service);
    return this.queue.enqueue({ kind: 'scale', service, replicas });
  }

  restart(service: string, rolling: boolean): Operation {
    this.requireService(service);
    return this.queue.enqueue({ kind: rolling ? 'rolling-restart' : 'restart', service });
  }

  operations(): Operation[] {
    return [...this.ledger.data.operations];
  }

  events(afterId = 0): ClusterEvent[] {
    return this.recentEvents.filter((e) => e.id > afterId);
  }

  subscribe(listener: (event: LiveEvent) => void): () => void {
    this.live.on('live', listener);
    this.statusChanged();
    return () => this.live.off('live', listener);
  }

  counters(): ControlPlaneCounters {
    return { ...this.stats, operations_by_result: { ...this.stats.operations_by_result } };
  }

  private requireService(name: string): void {
    if (!this.config.services.some((s) => s.name === name)) {
      throw new NotFoundError(`no such service: ${name}`, `services: ${this.config.services.map((s) => s.name).join(', ')}`);
    }
  }
}

function describeOperation(op: Operation): string {
  return op.kind === 'scale' ? `scale ${op.service}=${op.replicas}` : `${op.kind} ${op.service}`;
}

function describeChange(before: OttoConfig, after: OttoConfig): string {
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
