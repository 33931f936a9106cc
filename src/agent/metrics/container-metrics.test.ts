/**
 * The collector against cgroup layouts this machine does not have (CI may run cgroup v2, or the systemd
 * driver), as fixture trees. No Docker: the Docker client points at a socket that does not exist, so a
 * fallback to the Docker API would leave the container out and fail the test.
 * The same collector against the real Docker engine: test/container-metrics.test.ts.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { containerMetricsBatchSchema, type ContainerMetrics, type ContainerMetricsBatch } from '../../protocol/messages.js';
import { ContainerMetricsCollector, type RunningContainer } from './container-metrics.js';

const noDocker = new Dockerode({ socketPath: join(tmpdir(), 'otto-no-docker-here.sock') });

const byId = (batch: ContainerMetricsBatch, id: string): ContainerMetrics => {
  const m = batch.containers.find((c) => c.container_id === id);
  if (!m) throw new Error(`no metrics for ${id}`);
  return m;
};

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
    const collector = new ContainerMetricsCollector(noDocker, 'node-a', { cgroupRoot: root });
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
