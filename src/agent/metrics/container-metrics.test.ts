import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

/** Cgroup layouts this machine does not have (CI may run cgroup v2, or the systemd driver), as fixture trees. */
describe('ContainerMetricsCollector cgroup layouts', () => {
  const id = 'a'.repeat(64);
  // Any live pid works for /proc/<pid>/net/dev; the fixture decides everything else.
  const container: RunningContainer = { id, name: 'fixture', pid: process.pid };
  const roots: string[] = [];
  afterAll(() => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));

  async function tree(files: Record<string, string>): Promise<string> {
    const root = await mkdtemp(join(tmpdir(), 'otto-cgroup-'));
    roots.push(root);
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), text);
    }
    return root;
  }

  /** Two collects ~1 s apart, with the CPU counter file rewritten to `after` in between. */
  async function collectWithCpu(root: string, cpuFile: string, after: string): Promise<ContainerMetrics> {
    const collector = new ContainerMetricsCollector(docker, 'node-a', { cgroupRoot: root });
    await collector.collect([container]);
    await writeFile(join(root, cpuFile), after);
    await new Promise((r) => setTimeout(r, 1000));
    const batch = await collector.collect([container]);
    expect(collector.source(id)).toBe('cgroup');
    expect(containerMetricsBatchSchema.parse(batch)).toEqual(batch);
    return byId(batch, id);
  }

  it('reads cgroup v2 with the systemd driver', async () => {
    const dir = `system.slice/docker-${id}.scope`;
    const root = await tree({
      'cgroup.controllers': 'cpuset cpu io memory pids\n',
      [`${dir}/cpu.stat`]: 'usage_usec 1000000\nuser_usec 800000\nsystem_usec 200000\n',
      [`${dir}/memory.current`]: `${10 * 1024 * 1024}\n`,
      [`${dir}/memory.stat`]: 'anon 4194304\nfile 6291456\nactive_file 1\ninactive_file 2097152\n',
      [`${dir}/memory.max`]: `${64 * 1024 * 1024}\n`,
      [`${dir}/io.stat`]: '8:0 rbytes=1000 wbytes=2000 rios=1 wios=2 dbytes=0 dios=0\n253:0 rbytes=24 wbytes=48 rios=1 wios=1 dbytes=0 dios=0\n',
    });
    // 0.5 s of CPU in a bit more than 1 s of wall time.
    const m = await collectWithCpu(root, `${dir}/cpu.stat`, 'usage_usec 1500000\n');
    expect(m.cpu_percent).toBeGreaterThan(35);
    expect(m.cpu_percent).toBeLessThanOrEqual(50);
    expect(m.memory_usage_mb).toBe(8); // memory.current - inactive_file
    expect(m.memory_limit_mb).toBe(64);
    expect(m.memory_percent).toBe(12.5);
    expect(m.block_read_bytes).toBe(1024);
    expect(m.block_write_bytes).toBe(2048);
  });

  it('reads cgroup v1 with the systemd driver and a combined cpu,cpuacct hierarchy', async () => {
    const dir = `system.slice/docker-${id}.scope`;
    const root = await tree({
      [`cpu,cpuacct/${dir}/cpuacct.usage`]: '1000000000\n',
      [`memory/${dir}/memory.usage_in_bytes`]: `${10 * 1024 * 1024}\n`,
      [`memory/${dir}/memory.stat`]: 'cache 0\ninactive_file 1\ntotal_inactive_file 2097152\n',
      [`memory/${dir}/memory.limit_in_bytes`]: '9223372036854771712\n', // unlimited
      [`blkio/${dir}/blkio.throttle.io_service_bytes`]: '8:0 Read 1000\n8:0 Write 2000\n8:0 Sync 0\n8:0 Async 3000\n8:0 Total 3000\nTotal 3000\n',
    });
    const m = await collectWithCpu(root, `cpu,cpuacct/${dir}/cpuacct.usage`, '1250000000\n');
    expect(m.cpu_percent).toBeGreaterThan(15);
    expect(m.cpu_percent).toBeLessThanOrEqual(25);
    expect(m.memory_usage_mb).toBe(8); // usage_in_bytes - total_inactive_file
    expect(m.memory_limit_mb).toBeGreaterThan(64); // unlimited: the host's memory
    expect(m.block_read_bytes).toBe(1000);
    expect(m.block_write_bytes).toBe(2000);
  });
});
