/**
 * The control plane's MQTT client: subscribed to every node, it validates each message with the protocol's
 * schemas and hands the good ones on; a bad one is counted and logged, never thrown. Publishes desired
 * states with a deadline, so a broker that went away delays nothing (mqtt.js sends them once it is back).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { InfrastructureError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { containerMetricsBatchSchema, nodeMetricsSchema, nodeStateSchema, nodeStatusSchema, type ContainerMetricsBatch, type DesiredState, type NodeMetrics, type NodeState, type NodeStatus } from '../protocol/messages.js';
import { decode, encode, type DecodeResult } from '../protocol/codec.js';
import type { SecretsMessage } from '../protocol/secrets.js';
import { controlPlaneSubscriptions, parseTopic, topics } from '../protocol/topics.js';

export interface InboxHandlers {
  /** Each returns false for a message it ignores (a node not in the config). */
  nodeMetrics(metrics: NodeMetrics): boolean;
  containerMetrics(batch: ContainerMetricsBatch): boolean;
  status(status: NodeStatus): boolean;
  state(state: NodeState): boolean;
  /** A message of this node was taken: views may have changed. */
  accepted(nodeId: string): void;
  /** The connection is back after a loss (the broker may have forgotten retained messages). */
  reconnected(): void;
  /** A device asks to join through a pool (otto/join/<pool>/<request>). */
  joinRequest(pool: string, payload: Buffer): void;
}

export interface MqttLinkOptions {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  /** The CA the broker's certificate must be signed by (mqtts). */
  ca?: string;
  log: Logger;
  handlers: InboxHandlers;
}

const PUBLISH_DEADLINE_MS = 5_000;

export class MqttLink {
  readonly counters = { messages_received: 0, invalid_messages: 0 };
  private client?: MqttClient;
  private everConnected = false;

  constructor(private readonly options: MqttLinkOptions) {}

  /** Connects and subscribes; rejects if the broker cannot be reached within 10 s. */
  async connect(): Promise<void> {
    const { url, log } = this.options;
    const client = mqtt.connect(url, {
      clientId: this.options.clientId,
      username: this.options.username,
      password: this.options.password,
      ...(this.options.ca ? { ca: this.options.ca, rejectUnauthorized: true } : {}),
      reconnectPeriod: 1_000,
      connectTimeout: 5_000,
    });
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err) => log.warn({ err: errorMessage(err) }, 'MQTT error'));
    client.on('offline', () => log.warn({ url }, 'MQTT broker unreachable; retrying'));
    client.on('connect', () => {
      // A new session: subscribe again, and let the control plane republish what the broker may have lost.
      void client.subscribeAsync(controlPlaneSubscriptions, { qos: 0 }).catch((err) => log.warn({ err: errorMessage(err) }, 'MQTT subscribe failed'));
      if (this.everConnected) {
        log.info({ url }, 'MQTT broker back');
        this.options.handlers.reconnected();
      }
      this.everConnected = true;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.end(true);
        reject(new InfrastructureError(`MQTT broker ${url} unreachable`, 'start the broker, or set mqtt.embedded: true'));
      }, 10_000);
      client.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    log.info({ url }, 'connected to MQTT');
  }

  async close(): Promise<void> {
    await this.client?.endAsync().catch(() => undefined);
  }

  /** Retained, QoS 1. Resolves when the broker acknowledged it; rejects after a deadline (mqtt.js still delivers it later). */
  async publishDesired(desired: DesiredState): Promise<void> {
    await this.publishAcked(topics.desired(desired.node_id), encode(desired), true);
  }

  /** Secret values for one node: QoS 1 and never retained, so no later subscriber ever receives them. */
  async publishSecrets(nodeId: string, message: SecretsMessage): Promise<void> {
    await this.publishAcked(topics.secrets(nodeId), encode(message), false);
  }

  private async publishAcked(topic: string, payload: string, retain: boolean): Promise<void> {
    const client = this.client;
    if (!client) throw new InfrastructureError('not connected to MQTT');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new InfrastructureError(`broker did not acknowledge within ${PUBLISH_DEADLINE_MS / 1000}s`)), PUBLISH_DEADLINE_MS);
    });
    try {
      await Promise.race([client.publishAsync(topic, payload, { qos: 1, retain }), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** QoS 1, not retained (a join reply, a secret): with the same deadline as desired states. */
  async publish(topic: string, payload: string): Promise<void> {
    await this.publishAcked(topic, payload, false);
  }

  private onMessage(topic: string, payload: Buffer): void {
    // Most messages are node reports: the join pattern is tried only on join topics.
    const join = topic.startsWith('otto/join/') ? /^otto\/join\/([^/]+)\/[^/]+$/.exec(topic) : null;
    if (join) {
      this.counters.messages_received++;
      return this.options.handlers.joinRequest(join[1]!, payload);
    }
    const parsed = parseTopic(topic);
    if (!parsed) return;
    this.counters.messages_received++;
    const { handlers } = this.options;
    const id = parsed.nodeId;
    switch (parsed.kind) {
      case 'nodeMetrics':
        return this.accept(topic, id, decode(nodeMetricsSchema, payload), (m) => handlers.nodeMetrics(m));
      case 'containerMetrics':
        return this.accept(topic, id, decode(containerMetricsBatchSchema, payload), (b) => handlers.containerMetrics(b));
      case 'status':
        return this.accept(topic, id, decode(nodeStatusSchema, payload), (s) => handlers.status(s));
      case 'state':
        return this.accept(topic, id, decode(nodeStateSchema, payload), (s) => handlers.state(s));
    }
  }

  private accept<T extends { node_id: string }>(topic: string, topicNodeId: string, result: DecodeResult<T>, record: (value: T) => boolean): void {
    if (!result.ok) {
      this.counters.invalid_messages++;
      this.options.log.warn({ topic, error: result.error }, 'invalid message ignored');
      return;
    }
    if (result.value.node_id !== topicNodeId) {
      this.counters.invalid_messages++;
      this.options.log.warn({ topic, node: result.value.node_id }, 'message names another node than its topic; ignored');
      return;
    }
    try {
      if (record(result.value)) this.options.handlers.accepted(topicNodeId);
    } catch (err) {
      this.options.log.error({ topic, err: errorMessage(err) }, 'handling a message failed');
    }
  }
}
