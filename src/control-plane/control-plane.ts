/**
 * The control plane: wires the embedded broker, the MQTT link to every node, the node registry and its
 * lifecycle (online, unreachable, lost), the control loop (config reload, spec revisions, plan and
 * desired states, drift), the operation queue, the ledger, the local and remote agents, and the HTTP API
 * the CLI and the dashboard use. Decisions live in the modules it wires (cluster-planner, handover,
 * placement, operation-runners); this file only connects them and keeps time.
 */
import { mkdir, readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { isLocalNode } from '../config/nodes.js';
import type { OttoConfig, ServiceConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { InfrastructureError, NotFoundError, errorMessage } from '../errors.js';
import { startApi } from '../http/api.js';
import type { ApiHandlers, ControlPlaneCounters } from '../http/handlers.js';
import { clusterStatusSchema, type ClusterEvent, type ClusterStatus, type LiveEvent, type Operation } from '../http/schemas.js';
import type { Logger } from '../log.js';
import { MAX_MQTT_PACKET_BYTES } from '../protocol/limits.js';
import { PRIVILEGED_MQTT_USER, clientIdAllowed, controlPlaneCredentials, ownClientId, type BrokerIdentity } from '../protocol/broker-auth.js';
import { brokerUrl, dialableHost } from '../protocol/broker-url.js';
import type { NodeState } from '../protocol/messages.js';
import { apiTls, brokerTransport, transportWarnings } from '../config/transport.js';
import { RemoteAgentManager, type EnsureOptions, type NodeResult } from '../remote/manager.js';
import { remoteMqttUrl } from '../remote/mqtt-address.js';
import { Credentials } from '../security/credentials.js';
import { tokenMatches, writeAtomic, type Workspace } from '../workspace.js';
import { AgentSupervisor } from './agent-supervisor.js';
import { startEmbeddedBroker, type EmbeddedBroker, type RefusalKind } from './broker.js';
import { ClusterPlanner } from './cluster-planner.js';
import { servedTls, type ServedTls } from './tls-setup.js';
import { ClusterView } from './cluster-view.js';
import { ConfigWatcher } from './config-watcher.js';
import { containerSpecOf } from './container-spec.js';
import { DesiredPublisher } from './desired-publisher.js';
import type { ClusterPlan } from './desired-state.js';
import { DriftTracker } from './drift.js';
import { EventFeed } from './event-feed.js';
import { Ledger } from './ledger.js';
import { MqttLink } from './mqtt-link.js';
import type { NodeLifecycle } from './node-lifecycle.js';
import { NodeRegistry, type NodeSettings } from './node-registry.js';
import { OperationQueue } from './operations.js';
import { recordReplicaContainers } from './replica-records.js';
import { ReplicaTracker } from './replica-tracker.js';
import { SecretDistributor } from './secret-distributor.js';
import { SecretKeeper } from './secret-keeper.js';
import { pendingReplicas, syncSpecs } from './spec-revisions.js';

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
  private secretsError: string | null = null;
  private readonly view: ClusterView;
  private readonly tracker = new ReplicaTracker();
  private readonly drift = new DriftTracker();
  private readonly lifecycles = new Map<string, NodeLifecycle>();
  private readonly onlineSince = new Map<string, number>();
  private readonly startedAt = new Date();
  private configError: string | null = null;
  private tickTimer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  private snapshotTimer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopping = false;
  private started = false;
  private readonly stats = { reconcile_seconds_sum: 0, reconcile_count: 0, operations_by_result: {} as Record<string, number> };
  private credentials!: Credentials;
  private tls: ServedTls = {};
  private token = '';
  /** Refusals by the embedded broker, by kind; the last time each client's refusal was logged. */
  private readonly refusals: Record<RefusalKind, number> = { connect: 0, publish: 0, subscribe: 0, oversize: 0 };
  private readonly refusalLogged = new Map<string, number>();

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
      effectiveReplicas: (service) => this.replicasOf(service),
      replan: () => this.publisher.replan(),
      replicas: (name) => this.view.replicaProgress(name),
      unplaced: (name) => this.view.unplaced(name),
      leaving: (name) => this.view.leaving(name),
      converged: () => this.converged(),
      changed: (op) => this.operationChanged(op),
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
      replicasOf: (service) => this.replicasOf(service),
      onlineSince: (id) => this.onlineSince.get(id),
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
        config_error: this.configError,
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
    });
  }

  get config(): OttoConfig {
    return this.loaded.config;
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
    const { config } = this.loaded;
    await this.secretValues.load(config, this.loaded, this.workspace.dir);
    this.watcher = new ConfigWatcher(this.loaded.path, this.loaded.hash, (next, text) => this.secretValues.verify(next, { path: this.loaded.path, text }));
    await this.ledger.load();
    await this.feed.load();
    this.registry.setNodes(this.nodeSettings(config), this.heartbeatTimeoutMs);
    await this.seedFromLastStatus();
    for (const node of config.nodes) this.lifecycles.set(node.id, 'unreachable');
    const changedSpecs = this.syncSpecs();
    this.currentPlan = this.planner.compute();
    this.token = await this.workspace.token();
    this.credentials = await new Credentials(this.workspace.credentialsPath).load();
    await this.credentials.ensure(config.nodes.map((n) => n.id));
    this.tls = await servedTls(config, this.workspace.tlsDir);
    for (const warning of transportWarnings(config)) this.log.warn(warning);

    if (config.mqtt.embedded) {
      this.broker = await startEmbeddedBroker({
        host: config.mqtt.host,
        port: brokerTransport(config).port,
        maxPacketBytes: MAX_MQTT_PACKET_BYTES,
        tls: this.tls.broker && { cert: this.tls.broker.cert, key: this.tls.broker.key },
        authenticate: (clientId, username, password) => this.identify(clientId, username, password),
        onRefused: (kind, clientId, detail) => this.brokerRefused(kind, clientId, detail),
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
          this.feed.emit({ type: 'node-metrics', data: m });
          return true;
        },
        containerMetrics: (b) => this.registry.recordContainers(b),
        status: (s) => this.registry.recordStatus(s),
        state: (s) => this.onNodeState(s),
        accepted: (nodeId) => {
          this.checkNodes(nodeId);
          this.feed.statusChanged();
        },
        reconnected: () => this.publisher.republishAll(),
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
    await this.ensureLocalAgents(config);
    // Problems that need the user (an unknown host key...) fail the start; an unreachable node is retried in the background.
    await this.ensureRemoteAgents(config, { waitFirstAttemptMs: 20_000 });
    this.heartbeatTimer = setInterval(() => this.checkNodes(), 1_000);
    this.snapshotTimer = setInterval(() => void this.saveStatusSnapshot(), STATUS_SNAPSHOT_MS);
    this.scheduleTick();
    await this.workspace.writeControlPlane({ pid: process.pid, api_url: this.apiUrl, started_at: this.startedAt.toISOString() });
    this.started = true;
    await this.event({ kind: 'control-plane-started', message: `control plane started (pid ${process.pid})` });
    this.queue.resume();
    this.enqueueUpdates(changedSpecs);
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
      await this.saveStatusSnapshot();
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
    let changed = false;
    const one = onlyNode === undefined ? undefined : this.registry.get(onlyNode);
    for (const node of one ? [one] : this.registry.all()) {
      const { state, unreachableSince } = this.registry.lifecycle(node.id, now);
      const before = this.lifecycles.get(node.id);
      if (state === before) continue;
      changed = true;
      this.lifecycles.set(node.id, state);
      const silent = unreachableSince === undefined ? '' : ` (last heard ${Math.round((now - unreachableSince) / 1000)}s ago)`;
      if (state === 'online') {
        this.onlineSince.set(node.id, now);
        this.supervisor.healthy(node.id);
        void this.secrets.nodeOnline(node.id, this.publisher.lastPublished(node.id));
        void this.event({ kind: 'node-online', node: node.id, message: `node ${node.id} is online` });
      } else if (state === 'unreachable') {
        void this.event({
          kind: 'node-unreachable',
          node: node.id,
          message: `node ${node.id} is unreachable${silent}: its replicas stay assigned to it; they move if it is still away after ${Math.round(node.lostAfterMs / 1000)}s`,
        });
      } else {
        void this.event({ kind: 'node-lost', node: node.id, message: `node ${node.id} is lost${silent}: its replicas start on other matching nodes, if any` });
      }
    }
    return changed;
  }

  private remoteNodeResult(nodeId: string, result: NodeResult): void {
    if (this.stopping || !result.changed) return;
    void this.event({
      kind: result.ok ? 'remote-agent-ok' : 'remote-agent-failed',
      node: nodeId,
      message: result.ok ? `agent of ${nodeId} running (pid ${result.pid}, ${result.action})` : `${result.error}${result.needsUser ? '' : '; retrying'}`,
    });
  }

  /** Starts (or keeps, or upgrades) the agents of nodes reached over SSH; stops those of nodes removed. */
  private async ensureRemoteAgents(config: OttoConfig, options: EnsureOptions): Promise<void> {
    const remoteNodes = config.nodes.filter((n) => !isLocalNode(n));
    const mqttUrl = remoteMqttUrl(config);
    if (remoteNodes.length > 0 && !mqttUrl) throw new InfrastructureError('no broker address for remote nodes', 'set mqtt.advertise in otto.yaml');
    const credentials = Object.fromEntries(remoteNodes.map((n) => [n.id, { username: n.id, password: this.credentials.password(n.id)! }]));
    const ca = this.tls.broker?.ca;
    await this.remote.ensure(remoteNodes, { cluster: config.cluster.name, mqttUrl: mqttUrl ?? '', interval: config.metrics.interval, credentials, ...(ca ? { ca } : {}) }, options);
  }

  /** Local agents get their node's credential in a 0600 file their command line names by path. */
  private async ensureLocalAgents(config: OttoConfig): Promise<void> {
    // The fleet benchmark and test run simulated agents for their (local) nodes: no real agent may start.
    if (process.env.OTTO_SIMULATED_AGENTS === '1') return;
    const local = config.nodes.filter(isLocalNode);
    for (const node of local) {
      await mkdir(this.workspace.agentStateDir(node.id), { recursive: true });
      const credentials = { username: node.id, password: this.credentials.password(node.id) };
      await writeAtomic(this.workspace.agentCredentialsPath(node.id), `${JSON.stringify(credentials)}\n`, 0o600);
    }
    await this.supervisor.ensure(local.map((n) => n.id));
  }

  // ---- broker identities --------------------------------------------------------------------------

  /** The identity these credentials prove on the embedded broker with this client id, or undefined. */
  private identify(clientId: string, username: string | undefined, password: string | undefined): BrokerIdentity | undefined {
    if (!username || password === undefined) return undefined;
    let identity: BrokerIdentity | undefined;
    let ownId: string | undefined;
    if (username === PRIVILEGED_MQTT_USER) {
      identity = tokenMatches(password, this.token) ? { kind: 'control-plane' } : undefined;
    } else {
      const reader = this.config.mqtt.readers.find((r) => r.username === username);
      if (reader) {
        identity = tokenMatches(password, reader.password) ? { kind: 'reader', name: username } : undefined;
      } else {
        const expected = this.config.nodes.some((n) => n.id === username) ? this.credentials.password(username) : undefined;
        identity = expected !== undefined && tokenMatches(password, expected) ? { kind: 'node', node: username } : undefined;
        if (identity) ownId = ownClientId('agent', this.config.cluster.name, username, expected!);
      }
    }
    // A client id it may not use could push another client off the broker.
    return identity && clientIdAllowed(identity, clientId, ownId) ? identity : undefined;
  }

  private brokerRefused(kind: RefusalKind, clientId: string, detail: string): void {
    this.refusals[kind]++;
    // A client that keeps trying is logged once every 10 s, not at every attempt.
    const key = `${kind}:${clientId}`;
    const now = Date.now();
    if (now - (this.refusalLogged.get(key) ?? 0) < 10_000) return;
    this.refusalLogged.set(key, now);
    if (this.refusalLogged.size > 10_000) this.refusalLogged.clear();
    this.log.warn({ kind, clientId, detail }, 'the broker refused a client');
  }

  /** A node's credential no longer works: it is forgotten and its connections are closed. */
  private async revoke(nodeId: string): Promise<void> {
    await this.credentials.revoke(nodeId);
    const closed = this.broker?.disconnect((identity) => identity.kind === 'node' && identity.node === nodeId) ?? 0;
    this.log.info({ node: nodeId, closed }, 'credential revoked');
  }

  /** A new credential for one node; its agent gets it and reconnects; no other node is touched. */
  async rotateCredentials(nodeId: string): Promise<{ node: string; rotated_at: string }> {
    const node = this.config.nodes.find((n) => n.id === nodeId);
    if (!node) throw new NotFoundError(`no such node: ${nodeId}`, `nodes: ${this.config.nodes.map((n) => n.id).join(', ')}`);
    await this.credentials.rotate(nodeId);
    this.broker?.disconnect((identity) => identity.kind === 'node' && identity.node === nodeId);
    if (isLocalNode(node)) {
      await this.ensureLocalAgents(this.config);
      await this.supervisor.restart(nodeId);
    } else {
      await this.ensureRemoteAgents(this.config, { waitFirstAttemptMs: 30_000 });
    }
    await this.event({ kind: 'credential-rotated', node: nodeId, message: `the broker credential of node ${nodeId} was rotated; its agent reconnected with the new one` });
    return { node: nodeId, rotated_at: new Date().toISOString() };
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
    await this.reloadConfig();
    await this.refreshSecrets();
    await this.publisher.replan();
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
    this.secretValues.adoptVerified();
    this.secretsError = null;
    this.configError = null;
    this.registry.setNodes(this.nodeSettings(change.config), this.heartbeatTimeoutMs);
    for (const node of change.config.nodes) if (!this.lifecycles.has(node.id)) this.lifecycles.set(node.id, 'unreachable');
    // A scale holds only while the config's replicas for the service stay what they were when it was made.
    for (const [name, scale] of Object.entries(this.ledger.data.scales)) {
      const service = change.config.services.find((s) => s.name === name);
      if (!service || service.replicas !== scale.config_replicas) delete this.ledger.data.scales[name];
    }
    const changedSpecs = this.syncSpecs();
    await this.ledger.save();
    await writeAtomic(this.workspace.snapshotPath, change.text, 0o600);
    await writeAtomic(this.workspace.hashPath, `${change.hash}\n`);
    await this.credentials.ensure(change.config.nodes.map((n) => n.id));
    for (const removed of before.nodes.filter((n) => !change.config.nodes.some((m) => m.id === n.id))) await this.revoke(removed.id);
    await this.ensureLocalAgents(change.config);
    // SSH provisioning goes on in the background: the control loop never waits for a node.
    await this.ensureRemoteAgents(change.config, { waitFirstAttemptMs: 0 }).catch((err) => this.log.error({ err: errorMessage(err) }, 'remote agents'));
    this.log.info({ hash: change.hash.slice(0, 12) }, 'otto.yaml reloaded');
    await this.event({ kind: 'config-reloaded', message: `config reloaded: ${describeChange(before, change.config)}` });
    this.enqueueUpdates(changedSpecs);
  }

  /** A secret's file or variable changed: the services using it update; one that cannot be read is reported once. */
  private async refreshSecrets(): Promise<void> {
    const result = await this.secretValues.refresh(this.config, this.loaded);
    if (result.kind === 'failed') {
      if (!result.first) return;
      this.secretsError = result.error;
      this.configError ??= result.error;
      this.log.error({ error: result.error }, 'a secret cannot be read; its replicas keep the value read before');
      await this.event({ kind: 'config-rejected', message: `a secret cannot be read; replicas keep the value read before: ${result.error}` });
      return;
    }
    if (this.secretsError !== null) {
      if (this.configError === this.secretsError) this.configError = null;
      this.secretsError = null;
      if (result.kind === 'recovered') await this.event({ kind: 'config-reloaded', message: 'every secret can be read again' });
    }
    if (result.kind !== 'changed') return;
    const changed = this.syncSpecs();
    const what = [...result.secrets.map((name) => `secret ${name}`), ...(result.registries ? ['a registry credential'] : [])].join(', ');
    this.log.info({ secrets: result.secrets, registries: result.registries }, 'secret values changed');
    await this.event({ kind: 'config-reloaded', message: `${what} changed${changed.length ? `: updating ${changed.join(', ')}` : ''}` });
    this.enqueueUpdates(changed);
  }

  /** Spec revisions in line with the config; returns the services whose spec changed. */
  private syncSpecs(): string[] {
    const digests = this.secretValues.digests();
    const services = this.config.services.map((s) => ({ name: s.name, spec: containerSpecOf(s, digests), replicas: this.replicasOf(s) }));
    const changed = syncSpecs(this.ledger.data.specs, services);
    if (changed.length) this.ledger.saveSoon();
    return changed;
  }

  /** A changed spec rolls out as an update operation; so does one interrupted by a restart (not one on hold). */
  private enqueueUpdates(changed: string[]): void {
    for (const service of this.config.services) {
      const entry = this.ledger.data.specs[service.name];
      if (!entry || entry.hold || this.queue.hasPendingUpdate(service.name)) continue;
      if (pendingReplicas(entry, this.replicasOf(service)).length === 0) continue;
      const why = changed.includes(service.name) ? 'its spec changed in otto.yaml' : 'resuming an update that did not finish';
      this.queue.enqueue({ kind: 'update', service: service.name, message: `update of ${service.name}: ${why}` });
    }
  }

  private replicasOf(service: ServiceConfig): number {
    const scale = this.ledger.data.scales[service.name];
    return scale && scale.config_replicas === service.replicas ? scale.replicas : service.replicas;
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

  // ---- status snapshot: `cluster status` while the control plane is down, and a warm start -----------

  private async saveStatusSnapshot(): Promise<void> {
    const snapshot = { saved_at: new Date().toISOString(), status: this.status() };
    await writeAtomic(this.workspace.statusPath, JSON.stringify(snapshot), 0o600).catch((err) => this.log.warn({ err: errorMessage(err) }, 'cannot save the status snapshot'));
  }

  /** What the previous control plane last knew of each node: shown as stale until the node speaks. */
  private async seedFromLastStatus(): Promise<void> {
    const text = await readFile(this.workspace.statusPath, 'utf8').catch(() => undefined);
    if (!text) return;
    let status: ClusterStatus;
    try {
      status = clusterStatusSchema.parse(JSON.parse(text).status);
    } catch {
      return;
    }
    for (const node of status.nodes) {
      const replicas = status.services.flatMap((s) => s.replicas.filter((r) => r.node === node.id));
      const strip = ({ node: _n, node_state: _s, stale: _st, reported_at: _r, ...replica }: (typeof replicas)[number]) => replica;
      this.registry.seed(node.id, {
        lastSeen: node.last_seen ? Date.parse(node.last_seen) : undefined,
        state: { node_id: node.id, timestamp: node.last_seen ?? status.cluster.started_at, revision: -1, docker: node.docker ?? { reachable: false }, replicas: replicas.map(strip) },
      });
    }
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
