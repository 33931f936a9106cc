import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { containerMetricsBatchSchema, type ContainerMetrics, type ContainerMetricsBatch } from '../../protocol/messages.js';
import { ContainerMetricsCollector, type RunningContainer } from './container-metrics.js';

const docker = new Dockerode({ socketPath: '/var/run/docker.sock' });
const LABEL = 'otto.test=metrics';
const IMAGE = 'otto-test/busybox';

async function removeTestContainers(): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [LABEL] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true })));
}

async function start(name: string, cmd: string[], memory?: number): Promise<RunningContainer> {
  const container = await docker.createContainer({
    Image: IMAGE,
    name,
    Cmd: cmd,
    Labels: { 'otto.test': 'metrics' },
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
    await removeTestContainers();
    [busy, idle] = await Promise.all([
      start('otto-metrics-busy', ['sh', '-c', 'while :; do :; done'], 64 * 1024 * 1024),
      start('otto-metrics-idle', ['sleep', '3600']),
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
    expect(b.container_name).toBe('otto-metrics-busy');
    expect(b.service).toBe('otto-metrics-busy');
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
  });

  it('falls back to one Docker stats call per container when the cgroup files are not found', async () => {
    const collector = new ContainerMetricsCollector(docker, 'node-a', { cgroupRoot: emptyCgroupRoot });
    const started = performance.now();
    const batch = await collectTwice(collector, [busy, idle]);
    expectBusyAndIdle(batch);
    // Parallel one-shot calls: well under the 2 × ~2 s that stream=false would take per container.
    expect(performance.now() - started).toBeLessThan(4500);

    const direct = await collectTwice(new ContainerMetricsCollector(docker, 'node-a'), [busy, idle]);
    expect(Object.keys(byId(batch, busy.id)).sort()).toEqual(Object.keys(byId(direct, busy.id)).sort());
  });

  it('leaves out containers that no longer exist and keeps the others', async () => {
    const collector = new ContainerMetricsCollector(docker, 'node-a');
    const gone: RunningContainer = { id: 'f'.repeat(64), name: 'gone', pid: 999_999 };
    const batch = await collector.collect([idle, gone]);
    expect(batch.containers.map((c) => c.container_id)).toEqual([idle.id]);
  });
});
