/**
 * A control plane made of fixed in-memory data behind the `ApiHandlers` seam, so the HTTP contract can be
 * tested against the real fastify server on a real port without MQTT, Docker or agents.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NotFoundError, UsageError } from '../../src/errors.js';
import type { ApiHandlers, ControlPlaneCounters } from '../../src/http/handlers.js';
import type { ClusterEvent, ClusterStatus, LiveEvent, MigrationPlan, Operation, ViolationView } from '../../src/http/schemas.js';
import type { NodeMetrics } from '../../src/protocol/messages.js';
import type { CliResult } from './cli.js';
import { createCluster } from './cluster.js';

export const TOKEN = 'test-token-0123456789abcdef';

export function nodeSample(nodeId: string, at: Date, cpu = 12.5): NodeMetrics {
  return {
    node_id: nodeId,
    timestamp: at.toISOString(),
    cpu_percent: cpu,
    memory_percent: 41.2,
    memory_used_mb: 3300.5,
    memory_total_mb: 8000,
    disk_percent: 55,
    disk_used_gb: 55.1,
    disk_total_gb: 100.2,
    network_bytes_sent: 123456,
    network_bytes_recv: 654321,
  };
}

export class FakeControlPlane implements ApiHandlers {
  readonly listeners = new Set<(event: LiveEvent) => void>();
  readonly history = new Map<string, NodeMetrics[]>();
  readonly ops: Operation[] = [];
  readonly eventLog: ClusterEvent[] = [];
  desired = new Map<string, number>([
    ['web', 2],
    ['worker', 1],
  ]);
  /** Lets a test make a handler throw something unexpected. */
  failStatus = false;
  /** Services whose replica is pulling its image, with the percent done. */
  readonly pulls = new Map<string, number>();
  /** Services whose update is held, with why. */
  readonly holds = new Map<string, string>();
  /** NFR violations per service. */
  readonly violations = new Map<string, ViolationView[]>();

  constructor() {
    const now = Date.now();
    for (const node of ['edge-1', 'edge-2']) {
      this.history.set(
        node,
        [5, 4, 3, 2, 1].map((ago, i) => nodeSample(node, new Date(now - ago * 1_000), 10 + i)),
      );
    }
    this.addEvent({ kind: 'control-plane-started', message: 'control plane started' });
    this.addEvent({ kind: 'node-online', node: 'edge-1', message: 'edge-1 online' });
  }

  addEvent(event: Omit<ClusterEvent, 'id' | 'time'>): ClusterEvent {
    const full: ClusterEvent = { id: this.eventLog.length + 1, time: new Date().toISOString(), ...event };
    this.eventLog.push(full);
    this.emit({ type: 'event', data: full });
    return full;
  }

  emit(event: LiveEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  status(): ClusterStatus {
    if (this.failStatus) throw new Error('registry exploded');
    const latest = (id: string) => this.history.get(id)!.at(-1)!;
    return {
      cluster: {
        name: 'fake',
        config_path: '/tmp/otto.yaml',
        config_hash: 'a'.repeat(64),
        config_error: null,
        started_at: new Date(0).toISOString(),
        pid: process.pid,
        mqtt_url: 'mqtt://127.0.0.1:1883',
        embedded_broker: true,
      },
      nodes: [
        {
          id: 'edge-1',
          host: 'localhost',
          local: true,
          online: true,
          state: 'online',
          unreachable_since: null,
          last_seen: latest('edge-1').timestamp,
          agent_version: '0.1.0',
          arch: 'x64',
          agent_pid: 4242,
          docker: { reachable: true, version: '24.0.0' },
          metrics: latest('edge-1'),
          containers: [
            {
              container_id: 'c1',
              container_name: 'fake-web-1',
              cpu_percent: 1.5,
              memory_percent: 2,
              memory_usage_mb: 12.5,
              memory_limit_mb: 64,
              network_rx_bytes: 100,
              network_tx_bytes: 200,
              block_read_bytes: 0,
              block_write_bytes: 4096,
              service: 'web',
              replica: 1,
            },
            {
              container_id: 'c2',
              container_name: 'odd "name"\\',
              cpu_percent: 0,
              memory_percent: 0,
              memory_usage_mb: 1,
              memory_limit_mb: 0,
              network_rx_bytes: 0,
              network_tx_bytes: 0,
              block_read_bytes: 0,
              block_write_bytes: 0,
            },
          ],
        },
        {
          id: 'edge-2',
          host: '10.0.0.2',
          local: false,
          online: false,
          state: 'unreachable',
          unreachable_since: new Date(0).toISOString(),
          last_seen: null,
          agent_version: null,
          arch: null,
          agent_pid: null,
          docker: null,
          metrics: null,
          containers: [],
        },
      ],
      services: [...this.desired].map(([name, desired]) => ({
        name,
        image: 'otto-test/busybox',
        desired,
        running: 1,
        stale: 0,
        nodes: ['edge-1'],
        revision: 1,
        hold: this.holds.get(name) ?? null,
        state: desired === 1 ? 'running' : 'degraded',
        health: 'healthy',
        ports: name === 'web' ? ['127.0.0.1:8080:80'] : [],
        replicas: [
          {
            service: name,
            replica: 1,
            name: `fake-${name}-1`,
            state: 'running',
            health: 'healthy',
            node: 'edge-1',
            node_state: 'online',
            stale: false,
            reported_at: latest('edge-1').timestamp,
            ...(this.pulls.has(name) ? { pull: { image: 'otto-test/busybox:2', percent: this.pulls.get(name), bytes_done: 450, bytes_total: 1000 } } : {}),
          },
        ],
        errors: [],
        violations: this.violations.get(name) ?? [],
      })),
      drift: this.desired.get('web')! > 1 ? [{ service: 'web', desired: this.desired.get('web')!, running: 1, since: new Date(0).toISOString() }] : [],
      operation: this.ops.find((o) => o.state === 'running') ?? null,
      queue: this.ops.filter((o) => o.state === 'queued'),
      counters: { messages_received: 42, invalid_messages: 3 },
    };
  }

  nodeMetrics(nodeId: string, sinceMs?: number): NodeMetrics[] | undefined {
    const samples = this.history.get(nodeId);
    if (!samples) return undefined;
    return sinceMs === undefined ? samples : samples.filter((m) => Date.parse(m.timestamp) > sinceMs);
  }

  private enqueue(op: Omit<Operation, 'id' | 'state' | 'requested_at'>): Operation {
    if (!this.desired.has(op.service)) throw new NotFoundError(`no such service: ${op.service}`);
    const full: Operation = { id: `op-${this.ops.length + 1}`, state: 'queued', requested_at: new Date().toISOString(), ...op };
    this.ops.push(full);
    this.emit({ type: 'operation', data: full });
    return full;
  }

  scale(service: string, replicas: number): Operation {
    return this.enqueue({ kind: 'scale', service, replicas });
  }

  restart(service: string, rolling: boolean): Operation {
    return this.enqueue({ kind: rolling ? 'rolling-restart' : 'restart', service });
  }

  async removeNode(nodeId: string) {
    if (nodeId === 'edge-1') throw new UsageError('node edge-1 is declared in otto.yaml', 'remove it from otto.yaml');
    if (nodeId !== 'edge-2') throw new NotFoundError(`no such node: ${nodeId}`);
    return { node: nodeId, removed_at: new Date().toISOString() };
  }

  async rotateCredentials(nodeId: string) {
    if (!['edge-1', 'edge-2'].includes(nodeId)) throw new NotFoundError(`no such node: ${nodeId}`);
    return { node: nodeId, rotated_at: new Date().toISOString() };
  }

  rollback(service: string): Operation {
    return this.enqueue({ kind: 'rollback', service });
  }

  move(service: string, replica: number, to: string): Operation {
    if (!['edge-1', 'edge-2'].includes(to)) throw new NotFoundError(`no such node: ${to}`);
    if (to === 'edge-2') throw new UsageError(`cannot move ${service}#${replica} to edge-2: edge-2 is not online`);
    return this.enqueue({ kind: 'migrate', service, moves: [{ service, replica, from: 'edge-2', to, reason: 'moved by hand (otto service move)', state: 'pending' }] });
  }

  rebalance(dryRun: boolean) {
    const moves = [{ service: 'web', replica: 2, from: 'edge-1', to: 'edge-2', reason: 'rebalance: web has 2 replica(s) on edge-1 and 0 on edge-2' }];
    return { operation: dryRun ? null : this.enqueue({ kind: 'migrate', service: 'web', moves: moves.map((m) => ({ ...m, state: 'pending' as const })) }), moves };
  }

  migrationPlan(): MigrationPlan {
    const violations = [...this.violations].flatMap(([service, list]) => list.map((v) => ({ service, ...v })));
    return { mode: 'auto', strategy: 'least-loaded', violations, nfr: [], rebalance: [] };
  }

  operations(): Operation[] {
    return this.ops;
  }

  events(afterId = 0): ClusterEvent[] {
    return this.eventLog.filter((e) => e.id > afterId);
  }

  subscribe(listener: (event: LiveEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  counters(): ControlPlaneCounters {
    return { messages_received: 42, invalid_messages: 3, reconcile_seconds_sum: 1.25, reconcile_count: 10, operations_by_result: { succeeded: 2, failed: 1 } };
  }
}

/** Reads server-sent events from a fetch response body. */
export class SseReader {
  private buffer = '';
  private readonly decoder = new TextDecoder();
  readonly frames: Array<{ event?: string; data?: string; id?: string; retry?: string; comment?: string }> = [];

  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  /** Reads until a frame matches, or fails after `timeoutMs`. */
  async until<T>(match: (frame: SseReader['frames'][number]) => T | undefined | false, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      for (; seen < this.frames.length; seen++) {
        const found = match(this.frames[seen]!);
        if (found) return found;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching server-sent event within ${timeoutMs} ms; got ${this.frames.map((f) => f.event ?? f.comment ?? 'retry').join(', ')}`);
      let timer: NodeJS.Timeout | undefined;
      const chunk = await Promise.race([
        this.reader.read(),
        new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), left);
        }),
      ]);
      clearTimeout(timer);
      if (chunk === 'timeout') continue;
      if (chunk.done) throw new Error('the event stream ended');
      this.push(this.decoder.decode(chunk.value, { stream: true }));
    }
  }

  private push(text: string): void {
    this.buffer += text;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const frame: SseReader['frames'][number] = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) frame.comment = line.slice(1).trim();
        const colon = line.indexOf(':');
        const field = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') frame.event = value;
        else if (field === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
        else if (field === 'id') frame.id = value;
        else if (field === 'retry') frame.retry = value;
      }
      this.frames.push(frame);
    }
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }
}

/** A real one-node cluster started with `otto cluster start --detach`, as a user would. */
export interface RunningTestCluster {
  dir: string;
  cluster: string;
  apiUrl: string;
  token: string;
  httpPort: number;
  run: (...args: string[]) => Promise<CliResult>;
  /** Stops the control plane and agents and removes the containers. */
  destroy: () => Promise<void>;
}

/** A one-node cluster (metrics and control every second) with these services, started in the background. */
export async function startTestCluster(options: { services: string; prefix: string }): Promise<RunningTestCluster> {
  const c = await createCluster(
    options.prefix,
    `metrics:\n  interval: 1s\ncontrol:\n  interval: 1s\nnodes:\n  - id: local\n    host: localhost\nservices:\n${options.services}`,
  );
  const started = await c.run('cluster', 'start', '--detach');
  if (started.code !== 0) throw new Error(`otto cluster start failed (${started.code}): ${started.stderr}${started.stdout}`);
  const info = JSON.parse(readFileSync(join(c.dir, '.otto', 'control-plane.json'), 'utf8')) as { api_url: string };
  return {
    dir: c.dir,
    cluster: c.name,
    apiUrl: info.api_url,
    token: readFileSync(join(c.dir, '.otto', 'token'), 'utf8').trim(),
    httpPort: c.httpPort,
    run: c.run,
    destroy: c.destroy,
  };
}
