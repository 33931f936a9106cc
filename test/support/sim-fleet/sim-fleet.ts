/**
 * Simulated agents for the fleet test and `npm run bench:fleet`: each node is one light MQTT connection
 * (mqtt-wire.ts) with the node's own credential and client id, saying what a real agent says (status
 * online and a last will, node metrics, container metrics, state every interval) and obeying its desired
 * state without Docker: every replica it is sent is reported running at the desired spec hash. Its load is
 * honest: the node's CPU is its own load plus its replicas' (each replica's container CPU, % of one core as
 * `docker stats` gives it, over the node's cores), so a replica that moves takes its CPU along. Many nodes
 * share one event loop; the bench runs several of these fleets in child processes (sim-worker.ts).
 */
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { ownClientId } from '../../../src/protocol/broker-auth.js';
import { topics } from '../../../src/protocol/topics.js';
import { PacketReader, PacketType, connectPacket, parsePublish, pubackPacket, publishPacket, subscribePacket, type IncomingPacket } from './mqtt-wire.js';

export interface SimNodeSpec {
  id: string;
  /** The node's broker credential (.otto/credentials.json). */
  password: string;
}

export interface SimFleetOptions {
  host: string;
  port: number;
  cluster: string;
  intervalMs: number;
  nodes: SimNodeSpec[];
  /** Containers each node runs besides Otto's replicas (reported in its container metrics only). */
  otherContainers?: number;
  /** Connections being opened at once (the broker's listen backlog is finite). */
  maxConnecting?: number;
  /** Cores each node reports (node.cpu_count); 4 when not given. */
  cpuCount?: number;
  /**
   * The nodes' own CPU load (without their replicas), in % of the node: kept within `baseCpuJitter` (2 when
   * not given) of the value. A node not listed wanders between 0.5 and 98 %.
   */
  baseCpu?: Record<string, number>;
  baseCpuJitter?: number;
  /** CPU of every replica's container, % of one core; random between 0 and 5 when not given. */
  replicaCpu?: number;
}

export interface SimFleetStats {
  nodes: number;
  connected: number;
  /** Nodes that connected at least once, and when the last of them first did (ms since the epoch). */
  everConnected: number;
  allConnectedAt?: number;
  published: number;
  /** Metrics not sent because the connection's buffer was full (the broker reads too slowly). */
  dropped: number;
  desiredReceived: number;
  refused: number;
  reconnects: number;
}

interface DesiredReplica {
  service: string;
  replica: number;
  name: string;
  spec_hash: string;
  healthcheck: boolean;
  containerId: string;
  startedAt: string;
}

const MAX_BUFFERED_BYTES = 256 * 1024;
const TICK_MS = 20;
const RECONNECT_MS = 1_000;

const hex = (text: string) => createHash('sha256').update(text).digest('hex');

/** A number that wanders inside [min, max], as a node's load does. */
class Walk {
  constructor(
    private value: number,
    private readonly min: number,
    private readonly max: number,
    private readonly step: number,
  ) {}

  next(): number {
    this.value = Math.min(this.max, Math.max(this.min, this.value + (Math.random() - 0.5) * 2 * this.step));
    return Math.round(this.value * 10) / 10;
  }
}

class SimNode {
  socket?: Socket;
  connected = false;
  killed = false;
  firstConnectedAt?: number;
  nextDueAt = 0;
  revision = -1;
  replicas: DesiredReplica[] = [];
  private reader = new PacketReader();
  private cpu: Walk;
  private readonly cores: number;
  /** Each replica's container CPU this interval (% of one core), the same in node and container metrics. */
  private replicaCpu = new Map<string, number>();
  private readonly memory = new Walk(30 + Math.random() * 30, 5, 95, 1);
  private readonly memoryTotalMb = [1024, 2048, 4096, 8192][Math.floor(Math.random() * 4)]!;
  private readonly diskTotalGb = [16, 32, 64, 128][Math.floor(Math.random() * 4)]!;
  private diskUsedGb = this.diskTotalGb * (0.2 + Math.random() * 0.5);
  private sent = Math.floor(Math.random() * 1e9);
  private recv = Math.floor(Math.random() * 1e9);
  private readonly others: { id: string; name: string; memoryMb: number; cpu: Walk }[];

  constructor(
    readonly spec: SimNodeSpec,
    private readonly fleet: SimFleet,
    otherContainers: number,
  ) {
    const { baseCpu, baseCpuJitter = 2, cpuCount = 4 } = fleet.options;
    const base = baseCpu?.[spec.id];
    this.cpu = base === undefined ? new Walk(10 + Math.random() * 30, 0.5, 98, 4) : new Walk(base, Math.max(0, base - baseCpuJitter), Math.min(100, base + baseCpuJitter), baseCpuJitter / 2);
    this.cores = cpuCount;
    const names = ['watchtower', 'node-exporter', 'mosquitto-bridge', 'syslog', 'portainer-agent'];
    this.others = Array.from({ length: otherContainers }, (_, i) => ({
      id: hex(`${spec.id}/other/${i}`),
      name: names[i % names.length]! + (i >= names.length ? `-${i}` : ''),
      memoryMb: 8 + Math.random() * 40,
      cpu: new Walk(Math.random() * 3, 0, 50, 0.5),
    }));
  }

  open(): void {
    const { host, port, cluster, intervalMs } = this.fleet.options;
    const socket = connect({ host, port });
    this.socket = socket;
    this.reader = new PacketReader();
    socket.setNoDelay(true);
    socket.on('connect', () => {
      socket.write(
        connectPacket({
          clientId: ownClientId('agent', cluster, this.spec.id, this.spec.password),
          username: this.spec.id,
          password: this.spec.password,
          keepaliveSeconds: Math.max(60, Math.ceil((3 * intervalMs) / 1000)),
          will: { topic: topics.status(this.spec.id), payload: JSON.stringify(this.status('offline', 'connection lost')), qos: 1, retain: true },
        }),
      );
    });
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk, (p) => this.onPacket(p)));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const wasConnecting = !this.connected;
      this.connected = false;
      if (this.socket === socket) this.socket = undefined;
      this.fleet.closed(this, wasConnecting);
    });
  }

  /** The node's own CPU load from now on (its replicas' comes on top). */
  setBaseCpu(percent: number): void {
    const jitter = this.fleet.options.baseCpuJitter ?? 2;
    this.cpu = new Walk(percent, Math.max(0, percent - jitter), Math.min(100, percent + jitter), jitter / 2);
  }

  kill(): void {
    this.killed = true;
    // As a power cut or a cable pulled: no DISCONNECT; the broker publishes the last will.
    this.socket?.resetAndDestroy();
  }

  private onPacket(p: IncomingPacket): void {
    const socket = this.socket!;
    switch (p.type) {
      case PacketType.connack: {
        const code = p.body[1];
        if (code !== 0) {
          this.fleet.stats.refused++;
          socket.destroy();
          return;
        }
        this.connected = true;
        this.firstConnectedAt ??= Date.now();
        this.fleet.connectedNode(this);
        const id = this.spec.id;
        // As the agent: subscribed before saying online.
        socket.write(subscribePacket(1, [topics.desired(id), topics.logsRequest(id), topics.logsControl(id), topics.secrets(id)], 1));
        socket.write(publishPacket(topics.status(id), JSON.stringify(this.status('online')), 1, true, 2));
        this.nextDueAt = Date.now() + Math.random() * this.fleet.options.intervalMs;
        return;
      }
      case PacketType.publish: {
        const message = parsePublish(p);
        if (message.packetId !== undefined) socket.write(pubackPacket(message.packetId));
        if (message.topic === topics.desired(this.spec.id)) this.onDesired(message.payload);
        return;
      }
      default:
        return;
    }
  }

  private onDesired(payload: Buffer): void {
    let desired: { node_id?: string; revision?: number; replicas?: Array<{ service: string; replica: number; name: string; spec_hash: string; container?: { healthcheck?: unknown } }> };
    try {
      desired = JSON.parse(payload.toString());
    } catch {
      return;
    }
    if (desired.node_id !== this.spec.id || typeof desired.revision !== 'number' || desired.revision < this.revision) return;
    this.fleet.stats.desiredReceived++;
    this.revision = desired.revision;
    const before = new Map(this.replicas.map((r) => [`${r.name}@${r.spec_hash}`, r]));
    this.replicas = (desired.replicas ?? []).map((r) => {
      const kept = before.get(`${r.name}@${r.spec_hash}`);
      if (kept) return kept;
      return {
        service: r.service,
        replica: r.replica,
        name: r.name,
        spec_hash: r.spec_hash,
        healthcheck: Boolean(r.container?.healthcheck),
        containerId: hex(`${this.spec.id}/${r.name}/${r.spec_hash}`),
        startedAt: new Date().toISOString(),
      };
    });
    // The agent reports right after a reconcile pass.
    this.publish(topics.state(this.spec.id), this.state(new Date().toISOString()));
  }

  /** One interval's messages: node metrics (the heartbeat), container metrics, state. */
  report(timestamp: string): void {
    const id = this.spec.id;
    const fixed = this.fleet.options.replicaCpu;
    this.replicaCpu = new Map(this.replicas.map((r) => [r.name, fixed ?? Math.round(Math.random() * 50) / 10]));
    this.publish(topics.nodeMetrics(id), this.nodeMetrics(timestamp));
    this.publish(topics.containerMetrics(id), this.containerMetrics(timestamp));
    this.publish(topics.state(id), this.state(timestamp));
  }

  private publish(topic: string, payload: string): void {
    const socket = this.socket;
    if (!socket || !this.connected) return;
    if (socket.writableLength > MAX_BUFFERED_BYTES) {
      this.fleet.stats.dropped++;
      return;
    }
    socket.write(publishPacket(topic, payload));
    this.fleet.stats.published++;
  }

  private status(state: 'online' | 'offline', reason?: string): object {
    return {
      node_id: this.spec.id,
      state,
      timestamp: new Date().toISOString(),
      ...(reason ? { reason } : {}),
      agent_version: '0.1.0-sim',
      pid: process.pid,
      hostname: `sim-${this.spec.id}`,
      arch: 'arm64',
      platform: 'linux',
    };
  }

  private nodeMetrics(timestamp: string): string {
    const memory = this.memory.next();
    this.diskUsedGb = Math.min(this.diskTotalGb, this.diskUsedGb + Math.random() * 0.001);
    this.sent += Math.floor(Math.random() * 50_000);
    this.recv += Math.floor(Math.random() * 200_000);
    return JSON.stringify({
      node_id: this.spec.id,
      timestamp,
      cpu_percent: Math.min(100, Math.round((this.cpu.next() + [...this.replicaCpu.values()].reduce((sum, cpu) => sum + cpu, 0) / this.cores) * 10) / 10),
      memory_percent: memory,
      memory_used_mb: Math.round((this.memoryTotalMb * memory) / 100),
      memory_total_mb: this.memoryTotalMb,
      disk_percent: Math.round((this.diskUsedGb / this.diskTotalGb) * 1000) / 10,
      disk_used_gb: Math.round(this.diskUsedGb * 10) / 10,
      disk_total_gb: this.diskTotalGb,
      network_bytes_sent: this.sent,
      network_bytes_recv: this.recv,
      cpu_count: this.cores,
    });
  }

  private containerMetrics(timestamp: string): string {
    const container = (id: string, name: string, cpu: number, memoryMb: number, extra: object) => ({
      container_id: id,
      container_name: name,
      cpu_percent: cpu,
      memory_percent: Math.round((memoryMb / this.memoryTotalMb) * 1000) / 10,
      memory_usage_mb: Math.round(memoryMb * 10) / 10,
      memory_limit_mb: 0,
      network_rx_bytes: Math.floor(Math.random() * 1e6),
      network_tx_bytes: Math.floor(Math.random() * 1e6),
      block_read_bytes: 4096,
      block_write_bytes: 8192,
      ...extra,
    });
    return JSON.stringify({
      node_id: this.spec.id,
      timestamp,
      containers: [
        ...this.replicas.map((r) => container(r.containerId, r.name, this.replicaCpu.get(r.name) ?? 0, 20 + Math.random() * 5, { service: r.service, replica: r.replica })),
        ...this.others.map((o) => container(o.id, o.name, o.cpu.next(), o.memoryMb, {})),
      ],
    });
  }

  private state(timestamp: string): string {
    return JSON.stringify({
      node_id: this.spec.id,
      timestamp,
      revision: this.revision,
      docker: { reachable: true, version: '24.0.7' },
      replicas: this.replicas.map((r) => ({
        service: r.service,
        replica: r.replica,
        name: r.name,
        container_id: r.containerId,
        state: 'running',
        health: r.healthcheck ? 'healthy' : 'none',
        spec_hash: r.spec_hash,
        started_at: r.startedAt,
      })),
    });
  }
}

export class SimFleet {
  readonly stats: SimFleetStats;
  private readonly nodes: SimNode[];
  private readonly byId = new Map<string, SimNode>();
  private readonly waiting: SimNode[] = [];
  private connecting = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(readonly options: SimFleetOptions) {
    this.nodes = options.nodes.map((spec) => new SimNode(spec, this, options.otherContainers ?? 2));
    for (const node of this.nodes) this.byId.set(node.spec.id, node);
    this.stats = { nodes: this.nodes.length, connected: 0, everConnected: 0, published: 0, dropped: 0, desiredReceived: 0, refused: 0, reconnects: 0 };
  }

  start(): void {
    this.waiting.push(...this.nodes);
    this.openMore();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** Cuts these nodes off abruptly (no DISCONNECT: their last will goes out); they stay down. */
  kill(ids: string[]): void {
    for (const id of ids) this.byId.get(id)?.kill();
  }

  /** These nodes' own CPU load from now on (% of the node; their replicas' comes on top). */
  setBaseCpu(ids: string[], percent: number): void {
    for (const id of ids) this.byId.get(id)?.setBaseCpu(percent);
  }

  /** The node's current desired revision and replicas, as this simulated agent runs them. */
  running(id: string): { revision: number; replicas: { name: string; spec_hash: string }[] } | undefined {
    const node = this.byId.get(id);
    return node && { revision: node.revision, replicas: node.replicas.map(({ name, spec_hash }) => ({ name, spec_hash })) };
  }

  snapshot(): SimFleetStats {
    const connected = this.nodes.filter((n) => n.connected).length;
    const ever = this.nodes.filter((n) => n.firstConnectedAt !== undefined);
    const all = ever.length === this.nodes.length ? Math.max(...ever.map((n) => n.firstConnectedAt!)) : undefined;
    return { ...this.stats, connected, everConnected: ever.length, allConnectedAt: all };
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const node of this.nodes) node.socket?.destroy();
  }

  /** @internal */
  connectedNode(node: SimNode): void {
    void node;
    this.connecting--;
    this.openMore();
  }

  /** @internal */
  closed(node: SimNode, wasConnecting: boolean): void {
    if (wasConnecting) {
      this.connecting--;
      this.openMore();
    }
    if (this.stopped || node.killed) return;
    this.stats.reconnects++;
    setTimeout(() => {
      if (this.stopped || node.killed) return;
      this.waiting.push(node);
      this.openMore();
    }, RECONNECT_MS + Math.random() * RECONNECT_MS);
  }

  private openMore(): void {
    const max = this.options.maxConnecting ?? 200;
    while (!this.stopped && this.connecting < max && this.waiting.length > 0) {
      const node = this.waiting.shift()!;
      if (node.killed) continue;
      this.connecting++;
      node.open();
    }
  }

  private tick(): void {
    const now = Date.now();
    const timestamp = new Date(now).toISOString();
    const { intervalMs } = this.options;
    for (const node of this.nodes) {
      if (!node.connected || node.nextDueAt > now) continue;
      node.report(timestamp);
      // On the node's own beat; one that fell a whole interval behind starts a new beat rather than bursting.
      node.nextDueAt += intervalMs;
      if (node.nextDueAt <= now) node.nextDueAt = now + intervalMs;
    }
  }
}
