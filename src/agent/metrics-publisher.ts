/**
 * Node and container metrics every interval, on a timer of their own: node metrics (read from /proc, no
 * Docker) are the node's heartbeat and go out first whatever Docker or a reconcile is doing; container
 * metrics follow when Docker answers. A cycle never overlaps the previous one: if Docker hangs, heartbeats
 * go on and container metrics wait.
 */
import type Dockerode from 'dockerode';
import { access } from '../fs-async.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { LABEL } from '../protocol/labels.js';
import { encode } from '../protocol/codec.js';
import { topics } from '../protocol/topics.js';
import type { DockerRuntime } from '../runtime/docker.js';
import { ContainerMetricsCollector, type RunningContainer } from './metrics/container-metrics.js';
import { NodeMetricsCollector } from './metrics/node-metrics.js';
import { monotonicMs } from './monotonic-clock.js';

export interface MetricsPublisherOptions {
  nodeId: string;
  cluster: string;
  runtime: DockerRuntime;
  log: Logger;
  /** Publishes when connected; drops the message otherwise (metrics are worth nothing late). */
  publish: (topic: string, payload: string) => void;
  /** The reconciler's last container list: reused while it is younger than one interval. */
  latestListing: () => { list: Dockerode.ContainerInfo[]; at: number; reachable: boolean };
}

export class MetricsPublisher {
  private readonly nodeMetrics: NodeMetricsCollector;
  private readonly containerMetrics: ContainerMetricsCollector;
  private readonly pids = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private containerCycle?: Promise<void>;
  private intervalMs = 5_000;
  private stopped = false;

  constructor(private readonly options: MetricsPublisherOptions) {
    this.nodeMetrics = new NodeMetricsCollector(options.nodeId);
    this.containerMetrics = new ContainerMetricsCollector(options.runtime.docker, options.nodeId);
  }

  start(intervalMs: number): void {
    this.intervalMs = intervalMs;
    this.schedule(0);
  }

  setInterval(intervalMs: number): void {
    if (intervalMs === this.intervalMs) return;
    this.intervalMs = intervalMs;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.cycle(), delayMs);
  }

  private async cycle(): Promise<void> {
    const startedAt = Date.now();
    try {
      const metrics = await this.nodeMetrics.collect();
      this.options.publish(topics.nodeMetrics(this.options.nodeId), encode(metrics));
    } catch (err) {
      this.options.log.warn({ err: errorMessage(err) }, 'node metrics failed');
    }
    this.containerCycle ??= this.publishContainerMetrics()
      .catch((err) => this.options.log.warn({ err: errorMessage(err) }, 'container metrics failed'))
      .finally(() => (this.containerCycle = undefined));
    this.schedule(Math.max(0, this.intervalMs - (Date.now() - startedAt)));
  }

  private async publishContainerMetrics(): Promise<void> {
    const started = monotonicMs();
    const latest = this.options.latestListing();
    const list = Date.now() - latest.at < this.intervalMs ? latest.list : await this.options.runtime.listAll();
    const running = await this.runningContainers(list);
    const batch = await this.containerMetrics.collect(running);
    this.options.publish(topics.containerMetrics(this.options.nodeId), encode(batch));
    // `npm run bench:agent` reads this line.
    this.options.log.debug({ containers: batch.containers.length, cycleMs: Math.round((monotonicMs() - started) * 10) / 10 }, 'container metrics cycle');
  }

  /** Every running container of the node (Otto's and others), with the pid the cgroup reader needs. */
  private async runningContainers(list: Dockerode.ContainerInfo[]): Promise<RunningContainer[]> {
    const seen = new Set<string>();
    const containers = await Promise.all(
      list
        .filter((c) => c.State === 'running')
        .map(async (c): Promise<RunningContainer | undefined> => {
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
    const pid = await this.options.runtime.pid(id).catch(() => 0);
    if (pid) this.pids.set(id, pid);
    return pid;
  }
}
