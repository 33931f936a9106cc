/**
 * The node agent: one per node. Wires the MQTT connection to its three jobs, each of which runs on its
 * own and never waits for another: metrics and heartbeats (metrics-publisher.ts), making Docker match the
 * node's desired state (reconciler.ts), and logs (log-streamer.ts). Loses nothing when the broker, the
 * control plane or Docker goes away: it keeps its containers, keeps reconciling its last desired state
 * (kept on disk), and retries.
 */
import { arch, hostname, platform } from 'node:os';
import mqtt, { type MqttClient } from 'mqtt';
import { InfrastructureError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { NodeState, NodeStatus } from '../protocol/messages.js';
import { encode } from '../protocol/codec.js';
import { isoTime } from '../protocol/iso-time.js';
import type { SecretRef } from '../protocol/secrets.js';
import { ownClientId } from '../protocol/broker-auth.js';
import { topics } from '../protocol/topics.js';
import { DockerRuntime, dockerFromUrl } from '../runtime/docker.js';
import { OTTO_VERSION } from '../version.js';
import { decodeDesired, withRejected, type RejectedReplica } from './desired-decode.js';
import { judgeDesired } from './desired-gate.js';
import { DesiredStore } from './desired-store.js';
import { checkedByZod, decodeInput } from './inputs.js';
import { LogStreamer } from './log-streamer.js';
import { MetricsPublisher } from './metrics-publisher.js';
import { removeAgentPid, runningAgentPid, writeAgentPid } from './pid-file.js';
import { Reconciler } from './reconciler.js';
import { RegistryAuth } from './registry-auth.js';
import { SecretStore, secretReadableBy } from './secret-store.js';

export interface AgentOptions {
  nodeId: string;
  cluster: string;
  mqttUrl: string;
  mqttUsername?: string;
  mqttPassword?: string;
  /** PEM of the CA that signed the broker's certificate (mqtts): the agent refuses any other broker. */
  mqttCa?: string;
  dockerUrl: string;
  /** Where the last desired state is kept. */
  stateDir: string;
  /** Until a desired state says otherwise. */
  metricsIntervalMs: number;
  logger: Logger;
  /** Give up an image pull that made no progress for this long (default 5 minutes). */
  pullStallMs?: number;
}

export class Agent {
  private readonly store: DesiredStore;
  private readonly reconciler: Reconciler;
  private readonly metrics: MetricsPublisher;
  private readonly log: Logger;
  private readonly logs: LogStreamer;
  private readonly secrets: SecretStore;
  private client?: MqttClient;
  private intervalMs: number;
  private reconcileTimer?: NodeJS.Timeout;
  /** Desired states are saved one after the other, newest last. */
  private saving: Promise<void> = Promise.resolve();
  /** Messages are handled one after the other, in the order they arrived (checking one may load zod). */
  private inbox: Promise<void> = Promise.resolve();
  private lastReport = '';
  /** Replicas of the desired state this agent cannot run: reported in `error`, never run. */
  private rejected: { revision: number; replicas: RejectedReplica[] } = { revision: -1, replicas: [] };
  private stopped = false;
  invalidMessages = 0;

  constructor(private readonly options: AgentOptions) {
    this.log = options.logger;
    const docker = dockerFromUrl(options.dockerUrl);
    this.secrets = new SecretStore(options.stateDir);
    const warnedUsers = new Set<string>();
    const secretFile = (ref: SecretRef, user: string) => {
      if (!secretReadableBy(user) && !warnedUsers.has(user)) {
        warnedUsers.add(user);
        this.log.warn({ user, agentUid: process.getuid?.() }, 'an image runs as a user that may not read its secrets (0600, owned by the agent user): run it as root or as a numeric uid');
      }
      return this.secrets.fileFor(ref, user);
    };
    const runtime = new DockerRuntime(docker, options.cluster, options.nodeId, { secretFile });
    this.store = new DesiredStore(options.stateDir);
    this.intervalMs = options.metricsIntervalMs;
    this.reconciler = new Reconciler({
      runtime,
      cluster: options.cluster,
      nodeId: options.nodeId,
      log: this.log,
      pullStallMs: options.pullStallMs,
      report: (state) => this.publishState(state),
      secrets: this.secrets,
      registryAuth: new RegistryAuth(this.secrets, () => this.reconciler.desiredState),
    });
    this.metrics = new MetricsPublisher({
      nodeId: options.nodeId,
      cluster: options.cluster,
      runtime,
      log: this.log,
      publish: (topic, payload) => {
        if (this.client?.connected) this.client.publish(topic, payload);
      },
      latestListing: () => this.reconciler.latestListing(),
    });
    this.logs = new LogStreamer(docker, () => this.client, options.cluster, options.nodeId, this.log);
  }

  async start(): Promise<void> {
    const other = await runningAgentPid(this.options.stateDir);
    if (other) {
      throw new InfrastructureError(`another agent for node ${this.options.nodeId} is running (pid ${other})`, `stop it first: kill ${other}`);
    }
    await writeAgentPid(this.options.stateDir);
    await this.secrets.load();
    const saved = await this.store.load();
    if (saved.state) {
      this.intervalMs = saved.state.settings.metrics_interval_ms;
      this.log.info({ revision: saved.state.revision, replicas: saved.state.replicas.length }, 'loaded last desired state from disk');
      this.setRejected(saved.state.revision, saved.rejected);
      this.reconciler.setDesired(saved.state);
    } else if (saved.problem) {
      // Running nothing would remove every container: touch nothing until the control plane speaks.
      this.log.error({ problem: saved.problem }, 'no usable desired state on disk; containers left as they are until the control plane sends one');
    }
    this.connect();
    this.metrics.start(this.intervalMs);
    this.scheduleReconcile();
    void this.reconciler.requestPass();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconcileTimer);
    this.metrics.stop();
    this.logs.stopAll();
    await this.reconciler.stop();
    await this.saving;
    const client = this.client;
    if (client?.connected) {
      await client
        .publishAsync(topics.status(this.options.nodeId), encode(this.status('offline', 'agent stopped')), { retain: true, qos: 1 })
        .catch(() => undefined);
    }
    await client?.endAsync().catch(() => undefined);
    await removeAgentPid(this.options.stateDir);
  }

  private status(state: NodeStatus['state'], reason?: string): NodeStatus {
    return {
      node_id: this.options.nodeId,
      state,
      timestamp: isoTime(),
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
      // Its own id, derived from its credential: no other client can take it (and push it off the broker).
      clientId: ownClientId('agent', this.options.cluster, nodeId, this.options.mqttPassword ?? ''),
      username: this.options.mqttUsername,
      password: this.options.mqttPassword,
      ...(this.options.mqttCa ? { ca: this.options.mqttCa, rejectUnauthorized: true } : {}),
      // A broker that is back should hear from its nodes at once; a connect attempt costs next to nothing.
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      // Otherwise mqtt-packet pre-builds 65,536 two-byte buffers for packet ids: 6 MB of heap for nothing.
      writeCache: false,
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
      // Subscribed before saying online: the broker handles both in order, so what the control plane sends
      // when it sees the node online (its secrets, not retained) finds the subscription in place.
      client.subscribe([topics.desired(nodeId), topics.logsRequest(nodeId), topics.logsControl(nodeId), topics.secrets(nodeId)], { qos: 1 });
      client.publish(topics.status(nodeId), encode(this.status('online')), { retain: true, qos: 1 });
      void this.reconciler.requestPass();
    });
    client.on('offline', () => this.log.warn('MQTT broker unreachable; keeping containers as they are and retrying'));
    client.on('error', (err) => this.log.warn({ err: errorMessage(err) }, 'MQTT error'));
    client.on('message', (topic, payload) => {
      this.inbox = this.inbox.then(() => this.onMessage(topic, payload)).catch((err) => this.log.error({ topic, err: errorMessage(err) }, 'cannot handle a message'));
    });
  }

  private async onMessage(topic: string, payload: Buffer): Promise<void> {
    const nodeId = this.options.nodeId;
    const zodBefore = checkedByZod.size;
    if (topic === topics.desired(nodeId)) await this.onDesired(payload);
    else if (topic === topics.secrets(nodeId)) await this.onSecrets(payload);
    else if (topic === topics.logsRequest(nodeId)) await this.onLogsRequest(payload);
    else if (topic === topics.logsControl(nodeId)) {
      const control = await decodeInput('logsControl', payload);
      if (control.ok) this.logs.control(control.value);
      else this.invalidMessages++;
    }
    if (checkedByZod.size > zodBefore) this.log.info({ topic }, 'checked a message with zod (the build\'s check did not accept it): the agent now holds zod in memory');
  }

  /** Values for this node's replicas: kept on disk (0600), then the replicas waiting for them go ahead. Never logged. */
  private async onSecrets(payload: Buffer): Promise<void> {
    const decoded = await decodeInput('secretsMessage', payload);
    if (!decoded.ok || decoded.value.node_id !== this.options.nodeId || decoded.value.cluster !== this.options.cluster) {
      this.invalidMessages++;
      // zod's messages name a field, never its value; JSON.parse's quote the text, so only their kind is logged.
      const error = decoded.ok ? 'meant for another node' : decoded.error.startsWith('not JSON') ? 'not JSON' : decoded.error;
      this.log.warn({ error }, 'ignored an invalid secrets message');
      return;
    }
    const { secrets, registries } = decoded.value;
    this.saving = this.saving.then(() =>
      this.secrets.put(secrets, registries).then(
        (changedHosts) => {
          this.log.info({ secrets: secrets.map((s) => s.name), registries: registries.map((r) => r.host) }, 'received secrets');
          this.reconciler.secretsArrived(changedHosts);
        },
        (err) => this.log.error({ err: errorMessage(err) }, 'cannot save secrets; the control plane sends them again when asked'),
      ),
    );
  }

  private async onLogsRequest(payload: Buffer): Promise<void> {
    const request = await decodeInput('logsRequest', payload);
    if (!request.ok) {
      this.invalidMessages++;
      this.log.warn({ error: request.error }, 'ignored an invalid logs request');
      return;
    }
    void this.logs.serve(request.value);
  }

  private async onDesired(payload: Buffer): Promise<void> {
    const decoded = await decodeDesired(payload);
    if (!decoded.ok) {
      this.invalidMessages++;
      this.log.warn({ error: decoded.error }, 'ignored an invalid desired state');
      return;
    }
    const { desired, envelope } = decoded;
    const verdict = judgeDesired(this.reconciler.desiredState, desired, { nodeId: this.options.nodeId, cluster: this.options.cluster });
    if (!verdict.apply) {
      if (verdict.reason === 'foreign') {
        this.invalidMessages++;
        this.log.warn({ node: desired.node_id, cluster: desired.cluster }, 'ignored a desired state meant for another node');
      } else if (desired.revision < this.reconciler.revision) {
        this.log.warn({ revision: desired.revision, current: this.reconciler.revision }, 'ignored an older desired state');
      }
      return;
    }
    this.log.info({ revision: desired.revision, replicas: desired.replicas.length }, 'new desired state');
    this.setRejected(desired.revision, decoded.rejected);
    this.reconciler.setDesired(desired);
    if (desired.settings.metrics_interval_ms !== this.intervalMs) {
      this.intervalMs = desired.settings.metrics_interval_ms;
      this.metrics.setInterval(this.intervalMs);
      this.scheduleReconcile();
    }
    // Saved in arrival order; a failed save is retried by the next desired state, the running one is in memory.
    this.saving = this.saving.then(() => this.store.save(envelope).catch((err) => this.log.error({ err: errorMessage(err) }, 'cannot save desired state')));
  }

  /** A pass every interval besides those Docker events and desired states trigger: the safety net. */
  private scheduleReconcile(): void {
    clearTimeout(this.reconcileTimer);
    if (this.stopped) return;
    this.reconcileTimer = setTimeout(() => {
      void this.reconciler.requestPass();
      this.scheduleReconcile();
    }, this.intervalMs);
  }

  private setRejected(revision: number, replicas: RejectedReplica[]): void {
    this.rejected = { revision, replicas };
    for (const replica of replicas) this.log.error({ revision, replica: replica.name, error: replica.error }, 'a replica this agent cannot run; the others run');
  }

  private publishState(reconciled: NodeState): void {
    const state = withRejected(reconciled, this.rejected);
    this.client?.publish(topics.state(this.options.nodeId), encode(state), { qos: 0 });
    // The last report on disk, for `cluster status` while the control plane is down: only when it changed.
    const { timestamp: _ignored, ...content } = state;
    const key = JSON.stringify(content);
    if (key === this.lastReport) return;
    this.lastReport = key;
    this.saving = this.saving.then(() => this.store.saveReport(state).catch(() => undefined));
  }
}
