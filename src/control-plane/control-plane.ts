/**
 * The control plane: the embedded broker, one MQTT client subscribed to every node, the node registry,
 * the desired state of every node, the local agents, and the HTTP API the CLI uses.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { isLocalNode } from '../config/nodes.js';
import { parseDuration } from '../config/units.js';
import { InfrastructureError, errorMessage } from '../errors.js';
import { startApi } from '../http/api.js';
import type { ClusterStatus } from '../http/schemas.js';
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
} from '../protocol/messages.js';
import { controlPlaneSubscriptions, parseTopic, topics } from '../protocol/topics.js';
import type { Workspace } from '../workspace.js';
import { AgentSupervisor } from './agent-supervisor.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './broker.js';
import { desiredStateFor, planCluster, type ClusterPlan } from './desired-state.js';
import { NodeRegistry } from './node-registry.js';
import { serviceView } from './service-view.js';

export function brokerUrl(mqttHost: string, port: number): string {
  const host = mqttHost === '0.0.0.0' || mqttHost === '::' ? '127.0.0.1' : mqttHost;
  return `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export class ControlPlane {
  private loaded!: LoadedConfig;
  private plan!: ClusterPlan;
  private registry!: NodeRegistry;
  private broker?: EmbeddedBroker;
  private client?: MqttClient;
  private api?: FastifyInstance;
  private supervisor: AgentSupervisor;
  private readonly publishedDesired = new Map<string, { key: string; revision: number }>();
  private readonly startedAt = new Date().toISOString();
  private heartbeatTimer?: NodeJS.Timeout;
  private readonly online = new Set<string>();
  private messagesReceived = 0;
  private invalidMessages = 0;

  constructor(
    private readonly configPath: string,
    private readonly workspace: Workspace,
    private readonly log: Logger,
    pretty: boolean,
  ) {
    this.supervisor = new AgentSupervisor(configPath, log.child({ component: 'supervisor' }), pretty);
  }

  get config() {
    return this.loaded.config;
  }

  get mqttUrl(): string {
    return brokerUrl(this.config.mqtt.host, this.config.mqtt.port);
  }

  get apiUrl(): string {
    const host = this.config.http.listen === '0.0.0.0' ? '127.0.0.1' : this.config.http.listen;
    return `http://${host}:${this.config.http.port}`;
  }

  async start(): Promise<void> {
    this.loaded = await loadConfig(this.configPath);
    const { config } = this.loaded;
    const intervalMs = parseDuration(config.metrics.interval);
    this.registry = new NodeRegistry(config.nodes.map((n) => n.id), 3 * intervalMs);
    this.plan = planCluster(config);

    if (config.mqtt.embedded) {
      this.broker = await startEmbeddedBroker(config.mqtt);
      this.log.info({ url: this.mqttUrl }, 'embedded MQTT broker listening');
    }
    await this.connectMqtt();
    this.api = await startApi({
      host: config.http.listen,
      port: config.http.port,
      token: await this.workspace.token(),
      handlers: { status: () => this.status() },
    }).catch((err: NodeJS.ErrnoException) => {
      throw new InfrastructureError(
        `cannot serve the API on ${config.http.listen}:${config.http.port}: ${err.code ?? err.message}`,
        err.code === 'EADDRINUSE' ? 'change http.port in otto.yaml' : undefined,
      );
    });
    this.log.info({ url: this.apiUrl }, 'API listening');
    await this.publishDesired();
    await this.supervisor.ensure(config.nodes.filter(isLocalNode).map((n) => n.id));
    this.heartbeatTimer = setInterval(() => this.checkHeartbeats(), Math.min(1_000, intervalMs));
    await this.workspace.writeControlPlane({ pid: process.pid, api_url: this.apiUrl, started_at: this.startedAt });
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    await this.supervisor.stopAll();
    await this.api?.close();
    await this.client?.endAsync().catch(() => undefined);
    await this.broker?.close();
    await this.workspace.clearControlPlane();
  }

  private async connectMqtt(): Promise<void> {
    const { mqtt: mqttConfig } = this.config;
    const client = mqtt.connect(this.mqttUrl, {
      clientId: `otto-control-plane-${this.config.cluster.name}`,
      username: mqttConfig.username,
      password: mqttConfig.password,
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
    this.messagesReceived++;
    const accepted = (() => {
      switch (parsed.kind) {
        case 'nodeMetrics':
          return this.accept(topic, parsed.nodeId, decode(nodeMetricsSchema, payload), (m) => this.registry.recordMetrics(m));
        case 'containerMetrics':
          return this.accept(topic, parsed.nodeId, decode(containerMetricsBatchSchema, payload), (b) => this.registry.recordContainers(b));
        case 'status':
          return this.accept(topic, parsed.nodeId, decode(nodeStatusSchema, payload), (s) => this.registry.recordStatus(s));
        case 'state':
          return this.accept(topic, parsed.nodeId, decode(nodeStateSchema, payload), (s) => this.registry.recordState(s));
        default:
          return true;
      }
    })();
    if (accepted) this.checkHeartbeats();
  }

  /** Validated messages go to the registry; invalid ones are counted and logged, never thrown. */
  private accept<T extends { node_id: string }>(topic: string, topicNodeId: string, result: DecodeResult<T>, record: (value: T) => boolean): boolean {
    if (!result.ok) {
      this.invalidMessages++;
      this.log.warn({ topic, error: result.error }, 'invalid message ignored');
      return false;
    }
    if (result.value.node_id !== topicNodeId) {
      this.invalidMessages++;
      this.log.warn({ topic, node: result.value.node_id }, 'message names another node than its topic; ignored');
      return false;
    }
    return record(result.value);
  }

  private checkHeartbeats(): void {
    for (const node of this.registry.all()) {
      const online = this.registry.isOnline(node.id);
      if (online && !this.online.has(node.id)) {
        this.online.add(node.id);
        this.log.info({ node: node.id }, 'node online');
      } else if (!online && this.online.has(node.id)) {
        this.online.delete(node.id);
        this.log.warn({ node: node.id }, 'node offline');
      }
    }
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

  status(): ClusterStatus {
    const { config } = this;
    return {
      cluster: {
        name: config.cluster.name,
        config_path: this.loaded.path,
        config_hash: this.loaded.hash,
        started_at: this.startedAt,
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
          agent_pid: record?.status?.pid ?? null,
          docker: record?.state?.docker ?? null,
          metrics: record?.metrics ?? null,
          containers: record?.containers?.containers ?? [],
        };
      }),
      services: config.services.map((service) =>
        serviceView(
          service,
          this.plan.placement,
          (nodeId, name) => this.registry.get(nodeId)?.state?.replicas.find((r) => r.name === name),
          (replica) => containerName(config.cluster.name, service.name, replica),
          (nodeId) => this.registry.isOnline(nodeId),
        ),
      ),
      counters: { messages_received: this.messagesReceived, invalid_messages: this.invalidMessages },
    };
  }
}
