/**
 * The agent's container metrics against the real Docker engine: cgroup files read directly, the Docker
 * stats fallback, containers that vanish. The cgroup layouts this machine does not have are unit tests
 * beside the code (src/agent/metrics/container-metrics.test.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerMetricsCollector, type RunningContainer } from '../src/agent/metrics/container-metrics.js';
import { containerMetricsBatchSchema, type ContainerMetrics, type ContainerMetricsBatch } from '../src/protocol/messages.js';
import { TEST_IMAGE, docker } from './support/cli.js';

// Per run, so two runs on one Docker engine (other worktrees) neither collide nor remove each other's containers.
const RUN = Math.random().toString(36).slice(2, 8);
const LABEL = `otto.test=metrics-${RUN}`;
const BUSY = `otto-metrics-busy-${RUN}`;
const IDLE = `otto-metrics-idle-${RUN}`;

async function removeTestContainers(): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [LABEL] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true })));
}

async function start(name: string, cmd: string[], memory?: number): Promise<RunningContainer> {
  const container = await docker.createContainer({
    Image: TEST_IMAGE,
    name,
    Cmd: cmd,
    Labels: { 'otto.test': `metrics-${RUN}` },
    HostConfig: { Memory: memory },
  });
  await container.start();
  const info = await container.inspect();
  return { id: info.Id, name, pid: info.State.Pid, service: name, replica: 1 };
}

/** Two collects ~1 s apart: CPU % needs a previous sample. */
async function collectTwice(collector: ContainerMetricsCollector, containers: RunningContainer[]): Promise<ContainerMetricsBatch> {
  await collector.collect(containers);
  await new Promise((r) => setTimeout(r, 1000));
  return collector.collect(containers);
}

const byId = (batch: ContainerMetricsBatch, id: string): ContainerMetrics => {
  const m = batch.containers.find((c) => c.container_id === id);
  if (!m) throw new Error(`no metrics for ${id}`);
  return m;
};

describe('ContainerMetricsCollector against the real Docker engine', () => {
  let busy: RunningContainer;
  let idle: RunningContainer;
  let emptyCgroupRoot: string;

  beforeAll(async () => {
    [busy, idle] = await Promise.all([
      start(BUSY, ['sh', '-c', 'while :; do :; done'], 64 * 1024 * 1024),
      start(IDLE, ['sleep', '3600']),
    ]);
    emptyCgroupRoot = await mkdtemp(join(tmpdir(), 'otto-cgroup-'));
  });

  afterAll(async () => {
    await removeTestContainers();
    await rm(emptyCgroupRoot, { recursive: true, force: true });
  });

  function expectBusyAndIdle(batch: ContainerMetricsBatch): void {
    expect(containerMetricsBatchSchema.parse(batch)).toEqual(batch);
    expect(batch.node_id).toBe('node-a');
    expect(batch.containers).toHaveLength(2);

    const b = byId(batch, busy.id);
    expect(b.container_name).toBe(BUSY);
    expect(b.service).toBe(BUSY);
    expect(b.replica).toBe(1);
    expect(b.cpu_percent).toBeGreaterThan(20);
    expect(b.memory_limit_mb).toBeCloseTo(64, 0);
    expect(b.memory_usage_mb).toBeGreaterThanOrEqual(0);
    expect(b.memory_usage_mb).toBeLessThan(64);

    const i = byId(batch, idle.id);
    expect(i.cpu_percent).toBeLessThan(5);
    expect(i.memory_limit_mb).toBeGreaterThan(64); // unlimited: the host's memory
  }

  it('reads cgroup files directly', async () => {
    const collector = new ContainerMetricsCollector(docker, 'node-a');
    const batch = await collectTwice(collector, [busy, idle]);
    expectBusyAndIdle(batch);
    expect(collector.source(busy.id)).toBe('cgroup');
    expect(collector.source(idle.id)).toBe('cgroup');
  });

  it('falls back to one Docker stats call per container when the cgroup files are not found', async () => {
    const collector = new ContainerMetricsCollector(docker, 'node-a', { cgroupRoot: emptyCgroupRoot });
    const batch = await collectTwice(collector, [busy, idle]);
    expectBusyAndIdle(batch);
    expect(collector.source(busy.id)).toBe('docker');

    const direct = await collectTwice(new ContainerMetricsCollector(docker, 'node-a'), [busy, idle]);
    expect(Object.keys(byId(batch, busy.id)).sort()).toEqual(Object.keys(byId(direct, busy.id)).sort());
  });

  it('makes the fallback call with one-shot, which the daemon answers without a second sample', async () => {
    // What the fallback relies on dockerode passing through: without one-shot the daemon waits for a second
    // sample (1-2 s) to fill precpu_stats.
    const stats = await docker.getContainer(idle.id).stats({ stream: false, 'one-shot': true });
    expect(stats.precpu_stats.system_cpu_usage).toBeUndefined();
    expect(stats.cpu_stats.cpu_usage.total_usage).toBeGreaterThan(0);
  });

  it('leaves out containers that no longer exist and keeps the others', async () => {
    const collector = new ContainerMetricsCollector(docker, 'node-a');
    const gone: RunningContainer = { id: 'f'.repeat(64), name: 'gone', pid: 999_999 };
    const batch = await collector.collect([idle, gone]);
    expect(batch.containers.map((c) => c.container_id)).toEqual([idle.id]);
  });
});
