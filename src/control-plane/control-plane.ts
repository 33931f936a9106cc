/**
 * The control plane: wires the embedded broker, the MQTT link to every node, the node registry and its
 * lifecycle (online, unreachable, lost), the control loop (config reload, spec revisions, plan and
 * desired states, drift), the operation queue, the ledger, the local and remote agents, and the HTTP API
 * the CLI and the dashboard use. Decisions live in the modules it wires (cluster-planner, handover, config-reload,
 * placement, operation-runners); this file only connects them and keeps time.
 */
import type { FastifyInstance } from 'fastify';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import type { OttoConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { InfrastructureError, NotFoundError, errorMessage } from '../errors.js';
import { startApi } from '../http/api.js';
import type { ApiHandlers, ControlPlaneCounters } from '../http/handlers.js';
import type { ClusterEvent, ClusterStatus, LiveEvent, MigrationPlan, Operation } from '../http/schemas.js';
import type { Logger } from '../log.js';
import { MAX_MQTT_PACKET_BYTES } from '../protocol/limits.js';
import { controlPlaneCredentials, ownClientId } from '../protocol/broker-auth.js';
import { brokerUrl, dialableHost } from '../protocol/broker-url.js';
import type { NodeState } from '../protocol/messages.js';
import { apiTls, brokerTransport, transportWarnings } from '../config/transport.js';
import { RemoteAgentManager, type NodeResult } from '../remote/manager.js';
import { Credentials } from '../security/credentials.js';
import type { Workspace } from '../workspace.js';
import { AgentProvisioning } from './agent-provisioning.js';
import { AgentSupervisor } from './agent-supervisor.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './broker.js';
import { ClusterPlanner } from './cluster-planner.js';
import { JoinDesk } from './join-desk.js';
import { topics } from '../protocol/topics.js';
import { encode } from '../protocol/codec.js';
import { servedTls, type ServedTls } from './tls-setup.js';
import { ClusterView } from './cluster-view.js';
import { ConfigReload } from './config-reload.js';
import { ConfigWatcher } from './config-watcher.js';
import { DesiredPublisher } from './desired-publisher.js';
import type { ClusterPlan } from './desired-state.js';
import { DriftTracker } from './drift.js';
import { EventFeed } from './event-feed.js';
import { Ledger } from './ledger.js';
import { LifecycleWatch } from './lifecycle-watch.js';
import { Migrations } from './migrations.js';
import { NodeAccess } from './node-access.js';
import { MqttLink } from './mqtt-link.js';
import { NodeRegistry, type NodeSettings } from './node-registry.js';
import { OperationQueue } from './operations.js';
import { replicaKey } from './placement.js';
import { describeOperation, SpecRollout } from './spec-rollout.js';
import { saveStatusSnapshot, seedFromSnapshot } from './status-snapshot.js';
import { recordReplicaContainers } from './replica-records.js';
import { ReplicaTracker } from './replica-tracker.js';
import { SecretDistributor } from './secret-distributor.js';
import { SecretKeeper } from './secret-keeper.js';

/** How long a node never heard from since the control plane started may still take new replicas. */
const STARTUP_GRACE_MS = 20_000;
const STATUS_SNAPSHOT_MS = 10_000;
export { MAX_MQTT_PACKET_BYTES };

export class ControlPlane implements ApiHandlers {
  private loaded!: LoadedConfig;
  private currentPlan!: ClusterPlan;
  private readonly registry: NodeRegistry;
  private watcher!: ConfigWatcher;
  private broker?: EmbeddedBroker;
  private link?: MqttLink;
  private api?: FastifyInstance;
  private readonly supervisor: AgentSupervisor;
  private readonly remote: RemoteAgentManager;
  private readonly ledger: Ledger;
  private readonly queue: OperationQueue;
  private readonly feed: EventFeed;
  private readonly planner: ClusterPlanner;
  private readonly publisher: DesiredPublisher;
  /** Secret values (memory only) and who gets them. */
  private readonly secretValues = new SecretKeeper();
  private readonly secrets: SecretDistributor;
  /** A secret of the running config that cannot be read any more (its last value stays in use). */
  private readonly view: ClusterView;
  private readonly tracker = new ReplicaTracker();
  private readonly drift = new DriftTracker();
  private readonly lifecycle: LifecycleWatch;
  private readonly specs: SpecRollout;
  private readonly migrations: Migrations;
  private readonly access: NodeAccess;
  private agents!: AgentProvisioning;
  private readonly startedAt = new Date();
  private reload!: ConfigReload;
  private tickTimer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  private snapshotTimer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopping = false;
  private started = false;
  private readonly stats = { reconcile_seconds_sum: 0, reconcile_count: 0, operations_by_result: {} as Record<string, number> };
  private credentials!: Credentials;
  private joinDesk!: JoinDesk;
  private tls: ServedTls = {};
  private token = '';

  constructor(
    private readonly configPath: string,
    private readonly workspace: Workspace,
    private readonly log: Logger,
    pretty: boolean,
  ) {
    // Its nodes come with the config, at start; it watches from now on.
    this.registry = new NodeRegistry([], 15_000, this.startedAt.getTime());
    this.supervisor = new AgentSupervisor(configPath, (id) => workspace.agentStateDir(id), log.child({ component: 'supervisor' }), pretty);
    this.remote = new RemoteAgentManager({
      workspaceDir: workspace.dir,
      log: log.child({ component: 'remote' }),
      onNodeResult: (id, result) => this.remoteNodeResult(id, result),
    });
    this.ledger = new Ledger(workspace.dir, { onError: (err) => this.log.error({ err: err.message }, 'cannot write the ledger or the event log; retrying at the next change') });
    this.feed = new EventFeed(this.ledger, log, () => this.status());
    this.queue = new OperationQueue({
      ledger: this.ledger,
      log: log.child({ component: 'operations' }),
      service: (name) => this.config.services.find((s) => s.name === name),
      effectiveReplicas: (service) => this.specs.replicasOf(service),
      replan: () => this.publisher.replan(),
      replicas: (name) => this.view.replicaProgress(name),
      unplaced: (name) => this.view.unplaced(name),
      leaving: (name) => this.view.leaving(name),
      converged: () => this.converged(),
      changed: (op) => this.operationChanged(op),
      reported: (key, nodeId) => this.reportedReplica(key, nodeId),
      leavingOn: (key, nodeId) => this.registry.get(nodeId)?.state?.leaving?.some((c) => replicaKey(c.service, c.replica) === key) ?? false,
      expectedHash: (key, nodeId) => this.currentPlan.replicasByNode.get(nodeId)?.find((r) => replicaKey(r.service, r.replica) === key)?.spec_hash,
      lifecycle: (nodeId) => this.registry.lifecycle(nodeId).state,
      maxInFlight: () => this.config.migration.max_in_flight,
      event: (event) => void this.event(event),
    });
    this.lifecycle = new LifecycleWatch(this.registry);
    this.specs = new SpecRollout(() => this.config, this.ledger, () => this.queue, () => this.secretValues.digests());
    this.migrations = new Migrations({
      config: () => this.config,
      plan: () => this.currentPlan,
      registry: this.registry,
      ledger: this.ledger,
      queue: this.queue,
      event: (event) => void this.event(event),
    });
    this.access = new NodeAccess({
      fileConfig: () => this.loaded.config,
      token: () => this.token,
      credentials: () => this.credentials,
      broker: () => this.broker,
      log: log.child({ component: 'access' }),
      event: (event) => this.event(event),
      nodesChanged: () => this.nodesChanged(),
      reprovision: (nodeId, kind) => this.agents.reprovision(this.config, nodeId, kind),
    });
    this.secrets = new SecretDistributor(
      {
        cluster: () => this.config.cluster.name,
        publish: (nodeId, message) => this.link!.publishSecrets(nodeId, message),
        log: log.child({ component: 'secrets' }),
      },
      this.secretValues,
    );
    this.planner = new ClusterPlanner({
      config: () => this.config,
      ledger: this.ledger,
      registry: this.registry,
      replicasOf: (service) => this.specs.replicasOf(service),
      onlineSince: (id) => this.lifecycle.onlineSince(id),
      warmingUp: () => Date.now() - this.startedAt.getTime() < Math.max(this.heartbeatTimeoutMs, STARTUP_GRACE_MS),
      lastPublished: (id) => this.publisher.lastPublished(id),
      event: (event) => void this.event(event),
      secretDigests: () => this.secretValues.digests(),
    });
    this.publisher = new DesiredPublisher({
      config: () => this.config,
      ledger: this.ledger,
      log: log.child({ component: 'desired' }),
      computePlan: () => {
        const now = Date.now();
        this.noteLifecycles(now);
        return this.planner.compute(now);
      },
      planned: (plan) => {
        this.currentPlan = plan;
        this.feed.statusChanged();
      },
      publish: async (_nodeId, desired) => {
        // The values first, so the agent has them when the desired state that needs them arrives.
        await this.secrets.beforeDesired(desired);
        await this.link!.publishDesired(desired);
      },
      agentRevision: (id) => this.registry.get(id)?.state?.revision,
      registriesFor: (replicas) => this.secretValues.registriesFor(replicas),
    });
    this.view = new ClusterView({
      config: () => this.config,
      cluster: () => ({
        config_path: this.loaded.path,
        config_hash: this.loaded.hash,
        config_error: this.reload?.error ?? null,
        started_at: this.startedAt.toISOString(),
        pid: process.pid,
        mqtt_url: this.mqttUrl,
      }),
      registry: this.registry,
      ledger: this.ledger,
      plan: () => this.currentPlan,
      remote: (id) => ({ agentPid: this.remote.agentPid(id), sshState: this.remote.sshState(id) }),
      drift: () => this.drift.current(),
      operation: () => this.queue.current(),
      queue: () => this.queue.queued(),
      counters: () => ({ ...(this.link?.counters ?? { messages_received: 0, invalid_messages: 0 }) }),
      violations: () => this.migrations.violationsByService(),
      violationChanges: () => this.migrations.violationChanges(),
    });
  }

  /** The running config: otto.yaml's, with the nodes that joined through its pools. */
  get config(): OttoConfig {
    return this.access.config;
  }

  get mqttUrl(): string {
    const transport = brokerTransport(this.config);
    return brokerUrl(this.config.mqtt.host, transport.port, transport.tls);
  }

  get apiUrl(): string {
    return `${apiTls(this.config).tls ? 'https' : 'http'}://${dialableHost(this.config.http.listen)}:${this.config.http.port}`;
  }

  private get heartbeatTimeoutMs(): number {
    return 3 * parseDuration(this.config.metrics.interval);
  }

  private nodeSettings(config: OttoConfig): NodeSettings[] {
    return config.nodes.map((n) => ({ id: n.id, lostAfterMs: parseDuration(n.lost_after ?? config.control.lost_after) }));
  }

  async start(): Promise<void> {
    this.loaded = await loadConfig(this.configPath);
    this.token = await this.workspace.token();
    this.credentials = await new Credentials(this.workspace.credentialsPath).load();
    await this.credentials.ensure(this.loaded.config.nodes.map((n) => n.id));
    await this.credentials.ensurePools(this.loaded.config.node_pools.map((p) => p.name));
    this.access.refresh();
    const config = this.config;
    await this.secretValues.load(config, this.loaded, this.workspace.dir);
    this.watcher = new ConfigWatcher(this.loaded.path, this.loaded.hash, (next, text) => this.secretValues.verify(next, { path: this.loaded.path, text }));
    this.reload = new ConfigReload({
      watcher: this.watcher,
      ledger: this.ledger,
      specs: this.specs,
      secretValues: this.secretValues,
      workspace: this.workspace,
      log: this.log,
      config: () => this.config,
      loaded: () => this.loaded,
      adopt: async (loaded) => {
        this.loaded = loaded;
        await this.credentials.ensurePools(loaded.config.node_pools.map((p) => p.name));
        this.access.refresh();
        this.migrations.configChanged();
        this.registry.setNodes(this.nodeSettings(this.config), this.heartbeatTimeoutMs);
        this.lifecycle.track(this.config.nodes.map((n) => n.id));
      },
      provision: async (config, before) => {
        await this.credentials.ensure(config.nodes.map((n) => n.id));
        for (const removed of before.nodes.filter((n) => !config.nodes.some((m) => m.id === n.id))) await this.access.revoke(removed.id);
        await this.agents.ensureLocal(config);
        // SSH provisioning goes on in the background: the control loop never waits for a node.
        await this.agents.ensureRemote(config, { waitFirstAttemptMs: 0 }).catch((err) => this.log.error({ err: errorMessage(err) }, 'remote agents'));
      },
      event: (event) => this.event(event),
    });
    await this.ledger.load();
    await this.feed.load();
    this.registry.setNodes(this.nodeSettings(config), this.heartbeatTimeoutMs);
    await seedFromSnapshot(this.workspace.statusPath, this.registry);
    this.lifecycle.track(config.nodes.map((n) => n.id));
    this.migrations.configChanged();
    const changedSpecs = this.specs.sync();
    this.currentPlan = this.planner.compute();
    this.tls = await servedTls(config, this.workspace.tlsDir);
    this.agents = new AgentProvisioning(this.workspace, () => this.credentials, this.supervisor, this.remote, () => this.tls.broker?.ca);
    this.joinDesk = new JoinDesk({
      config: () => this.loaded.config,
      credentials: this.credentials,
      reply: (pool, requestId, reply) => this.link!.publish(topics.joinReply(pool, requestId), encode(reply)),
      admitted: (nodeId, pool) => void this.access.joined(nodeId, pool),
      log: this.log.child({ component: 'join' }),
    });
    for (const warning of transportWarnings(config)) this.log.warn(warning);

    if (config.mqtt.embedded) {
      this.broker = await startEmbeddedBroker({
        host: config.mqtt.host,
        port: brokerTransport(config).port,
        maxPacketBytes: MAX_MQTT_PACKET_BYTES,
        tls: this.tls.broker && { cert: this.tls.broker.cert, key: this.tls.broker.key },
        authenticate: (clientId, username, password) => this.access.identify(clientId, username, password),
        onRefused: (kind, clientId, detail) => this.access.refused(kind, clientId, detail),
      });
      this.log.info({ url: this.mqttUrl }, 'embedded MQTT broker listening');
    }
    this.link = new MqttLink({
      url: this.mqttUrl,
      clientId: ownClientId('control-plane', config.cluster.name, 'main', this.token),
      ...controlPlaneCredentials(this.token),
      ca: this.tls.broker?.ca,
      log: this.log,
      handlers: {
        nodeMetrics: (m) => {
          if (!this.registry.recordMetrics(m)) return false;
          this.migrations.onNodeMetrics(m);
          this.feed.emit({ type: 'node-metrics', data: m });
          return true;
        },
        containerMetrics: (b) => {
          if (!this.registry.recordContainers(b)) return false;
          this.migrations.onContainerMetrics(b);
          return true;
        },
        status: (s) => this.registry.recordStatus(s),
        state: (s) => this.onNodeState(s),
        accepted: (nodeId) => {
          this.checkNodes(nodeId);
          this.feed.statusChanged();
        },
        reconnected: () => this.publisher.republishAll(),
        joinRequest: (pool, payload) => void this.joinDesk.handle(pool, payload).catch((err) => this.log.error({ err: errorMessage(err) }, 'join request failed')),
      },
    });
    await this.link.connect();
    this.api = await startApi({
      host: config.http.listen,
      port: config.http.port,
      token: await this.workspace.token(),
      handlers: this,
      metricsPublic: config.http.metrics_public,
      https: this.tls.api,
      log: this.log.child({ component: 'api' }),
    }).catch((err: NodeJS.ErrnoException) => {
      throw new InfrastructureError(
        `cannot serve the API on ${config.http.listen}:${config.http.port}: ${err.code ?? err.message}`,
        err.code === 'EADDRINUSE' ? 'change http.port in otto.yaml' : undefined,
      );
    });
    this.log.info({ url: this.apiUrl }, 'API and dashboard listening');
    await this.publisher.replan();
    await this.agents.ensureLocal(config);
    // Problems that need the user (an unknown host key...) fail the start; an unreachable node is retried in the background.
    await this.agents.ensureRemote(config, { waitFirstAttemptMs: 20_000 });
    this.heartbeatTimer = setInterval(() => this.checkNodes(), 1_000);
    this.snapshotTimer = setInterval(() => void saveStatusSnapshot(this.workspace.statusPath, this.status(), this.log), STATUS_SNAPSHOT_MS);
    this.scheduleTick();
    await this.workspace.writeControlPlane({ pid: process.pid, api_url: this.apiUrl, started_at: this.startedAt.toISOString() });
    this.started = true;
    await this.event({ kind: 'control-plane-started', message: `control plane started (pid ${process.pid})` });
    this.queue.resume();
    this.specs.enqueueUpdates(changedSpecs);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.publisher.stop();
    this.queue.stop();
    clearTimeout(this.tickTimer);
    clearInterval(this.heartbeatTimer);
    clearInterval(this.snapshotTimer);
    this.feed.close();
    await this.ticking;
    await this.queue.idle();
    await this.supervisor.stopAll();
    // `otto cluster stop` only sees this process exit: tell it which remote agents could not be stopped.
    await this.workspace.writeStopReport(await this.remote.stopAll());
    if (this.started) {
      await saveStatusSnapshot(this.workspace.statusPath, this.status(), this.log);
      await this.event({ kind: 'control-plane-stopped', message: 'control plane stopped; containers keep running' });
    }
    await this.api?.close();
    await this.link?.close();
    await this.broker?.close();
    await this.ledger.save().catch((err) => this.log.error({ err: errorMessage(err) }, 'cannot save the ledger'));
    await this.ledger.idle();
    await this.workspace.clearControlPlane();
  }

  // ---- nodes --------------------------------------------------------------------------------------

  /** What the node last reported of the replica (`service#replica`). */
  private reportedReplica(key: string, nodeId: string) {
    return this.registry.get(nodeId)?.state?.replicas.find((r) => replicaKey(r.service, r.replica) === key);
  }

  private onNodeState(state: NodeState): boolean {
    if (!this.registry.recordState(state)) return false;
    const expected = (name: string) => this.currentPlan.replicasByNode.get(state.node_id)?.find((r) => r.name === name)?.spec_hash;
    const { changes, containers } = this.tracker.observe(state, expected);
    for (const change of changes) void this.event({ kind: change.kind, node: change.node, service: change.service, replica: change.replica, message: change.message });
    if (recordReplicaContainers(this.ledger.data.replicas, state.node_id, containers)) this.ledger.saveSoon();
    this.publisher.agentIsAhead(state.node_id, state.revision);
    if (state.missing_secrets?.length || state.missing_registries?.length) void this.secrets.answer(state, this.publisher.lastPublished(state.node_id));
    // A node back from unreachable reported: the handover of its moved replicas can be decided.
    if (this.config.nodes.length > 1 && this.ledger.data.moves.some((m) => m.from === state.node_id)) void this.publisher.replan();
    return true;
  }

  /**
   * Lifecycle transitions (of one node, after its message; of all, every second): events, and a new plan
   * soon (an unreachable node changes nothing; a lost one may). Transitions come in bursts: they share one.
   */
  private checkNodes(onlyNode?: string): void {
    if (this.noteLifecycles(Date.now(), onlyNode)) this.publisher.replanSoon();
  }

  /**
   * Records the lifecycle transitions up to `now` (events; when a node came back online); true if any.
   * Every plan calls it first: a plan made between two heartbeat checks must not move the replicas of a
   * node before its node-lost event, nor judge a returning node's handover against its previous onlineSince.
   */
  private noteLifecycles(now: number, onlyNode?: string): boolean {
    const transitions = this.lifecycle.note(now, onlyNode);
    for (const { nodeId, state, silentMs, lostAfterMs } of transitions) {
      const silent = silentMs === undefined ? '' : ` (last heard ${Math.round(silentMs / 1000)}s ago)`;
      if (state === 'online') {
        this.supervisor.healthy(nodeId);
        this.migrations.nodeOnline(nodeId, now);
        void this.secrets.nodeOnline(nodeId, this.publisher.lastPublished(nodeId));
        void this.event({ kind: 'node-online', node: nodeId, message: `node ${nodeId} is online` });
      } else if (state === 'unreachable') {
        void this.event({
          kind: 'node-unreachable',
          node: nodeId,
          message: `node ${nodeId} is unreachable${silent}: its replicas stay assigned to it; they move if it is still away after ${Math.round(lostAfterMs / 1000)}s`,
        });
      } else {
        void this.event({ kind: 'node-lost', node: nodeId, message: `node ${nodeId} is lost${silent}: its replicas start on other matching nodes, if any` });
      }
    }
    return transitions.length > 0;
  }

  private remoteNodeResult(nodeId: string, result: NodeResult): void {
    if (this.stopping || !result.changed) return;
    void this.event({
      kind: result.ok ? 'remote-agent-ok' : 'remote-agent-failed',
      node: nodeId,
      message: result.ok ? `agent of ${nodeId} running (pid ${result.pid}, ${result.action})` : `${result.error}${result.needsUser ? '' : '; retrying'}`,
    });
  }

  /** The running config's nodes changed (a device joined, a node was removed): everything that tracks nodes follows. */
  private async nodesChanged(): Promise<void> {
    this.registry.setNodes(this.nodeSettings(this.config), this.heartbeatTimeoutMs);
    this.lifecycle.track(this.config.nodes.map((n) => n.id));
    await this.publisher.replan();
  }

  removeNode(nodeId: string): Promise<{ node: string; removed_at: string }> {
    return this.access.remove(nodeId);
  }

  rotateCredentials(nodeId: string): Promise<{ node: string; rotated_at: string }> {
    return this.access.rotate(nodeId);
  }

  // ---- control loop -------------------------------------------------------------------------------

  private scheduleTick(): void {
    if (this.stopping) return;
    this.tickTimer = setTimeout(() => this.requestTick(), parseDuration(this.config.control.interval));
  }

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
    await this.reload.checkConfig();
    await this.reload.checkSecrets();
    await this.publisher.replan();
    this.recordDrift();
    this.migrations.tick();
    this.stats.reconcile_count++;
    this.stats.reconcile_seconds_sum += (performance.now() - started) / 1000;
  }

  /** Every online node has reported on the last desired state it was sent. */
  private converged(): boolean {
    return this.publisher.revisions().every(([nodeId, revision]) => {
      const state = this.registry.get(nodeId)?.state;
      return !this.registry.isOnline(nodeId) || (state !== undefined && state.revision >= revision);
    });
  }

  private recordDrift(): void {
    const { found, cleared } = this.drift.observe(this.view.services());
    for (const d of found) void this.event({ kind: 'drift-found', service: d.service, message: `${d.service}: ${d.running}/${d.desired} replicas running` });
    for (const d of cleared) void this.event({ kind: 'drift-cleared', service: d.service, message: `${d.service}: ${d.running}/${d.desired} replicas running` });
  }

  // ---- events -------------------------------------------------------------------------------------

  private async event(event: Omit<ClusterEvent, 'id' | 'time'>): Promise<void> {
    await this.feed.event(event);
  }

  private operationChanged(op: Operation): void {
    const what = describeOperation(op);
    if (op.state === 'queued') void this.event({ kind: 'operation-queued', service: op.service, message: `${what} queued${op.message ? `: ${op.message}` : ''}` });
    else if (op.state === 'running' && !op.progress) void this.event({ kind: 'operation-started', service: op.service, message: `${what} started` });
    else if (op.finished_at && op.state !== 'running') {
      this.stats.operations_by_result[op.state] = (this.stats.operations_by_result[op.state] ?? 0) + 1;
      void this.event({ kind: 'operation-finished', service: op.service, message: `${what} ${op.state}: ${op.message ?? ''}`.trim() });
    }
    this.feed.emit({ type: 'operation', data: { ...op } });
    this.feed.statusChanged();
  }

  // ---- ApiHandlers --------------------------------------------------------------------------------

  status(): ClusterStatus {
    return this.view.status();
  }

  nodeMetrics(nodeId: string, sinceMs?: number) {
    const record = this.registry.get(nodeId);
    if (!record) return undefined;
    return record.history.samples(sinceMs);
  }

  scale(service: string, replicas: number): Operation {
    this.requireService(service);
    return this.queue.enqueue({ kind: 'scale', service, replicas });
  }

  restart(service: string, rolling: boolean): Operation {
    this.requireService(service);
    return this.queue.enqueue({ kind: rolling ? 'rolling-restart' : 'restart', service });
  }

  rollback(service: string): Operation {
    this.requireService(service);
    return this.queue.enqueue({ kind: 'rollback', service });
  }

  move(service: string, replica: number, to: string): Operation {
    return this.migrations.move(service, replica, to);
  }

  rebalance(dryRun: boolean) {
    return this.migrations.rebalance(dryRun);
  }

  migrationPlan(): MigrationPlan {
    return this.migrations.plan();
  }

  operations(): Operation[] {
    return [...this.ledger.data.operations];
  }

  events(afterId = 0): ClusterEvent[] {
    return this.feed.events(afterId);
  }

  subscribe(listener: (event: LiveEvent) => void): () => void {
    return this.feed.subscribe(listener);
  }

  counters(): ControlPlaneCounters {
    return { ...(this.link?.counters ?? { messages_received: 0, invalid_messages: 0 }), ...this.stats, operations_by_result: { ...this.stats.operations_by_result } };
  }

  private requireService(name: string): void {
    if (!this.config.services.some((s) => s.name === name)) {
      throw new NotFoundError(`no such service: ${name}`, `services: ${this.config.services.map((s) => s.name).join(', ')}`);
    }
  }
}

