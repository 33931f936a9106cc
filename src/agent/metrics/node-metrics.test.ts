import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { nodeMetricsSchema } from '../../protocol/messages.js';
import { NodeMetricsCollector } from './node-metrics.js';

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0: 1000    9525    0    0    0     0          0         0   200    5560    0    0    0     0       0          0
docker0:       5       0    0    0    0     0          0         0      30       7    0    4    0     0       0          0
vethab12cd:     50       0    0    0    0     0          0         0      60       7    0    4    0     0       0          0
br-0f1e2d3c:   70       0    0    0    0     0          0         0      80       7    0    4    0     0       0          0
 wlan0:       7       0    0    0    0     0          0         0      11       7    0    4    0     0       0          0
`;

const meminfo = (availableKb: number) =>
  `MemTotal:        4000000 kB\nMemFree:          100000 kB\nMemAvailable:   ${availableKb} kB\nBuffers:            6020 kB\n`;
const stat = (user: number, idle: number) => `cpu  ${user} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 ${user} 0 0 ${idle} 0 0 0 0 0 0\n`;

describe('NodeMetricsCollector on this host', () => {
  it('reports valid metrics from /proc and statfs', async () => {
    const collector = new NodeMetricsCollector('node-a');
    const first = await collector.collect();
    await new Promise((r) => setTimeout(r, 200));
    const second = await collector.collect();
    for (const m of [first, second]) {
      expect(nodeMetricsSchema.parse(m)).toEqual(m);
      expect(m.node_id).toBe('node-a');
      expect(m.memory_total_mb).toBeGreaterThan(0);
      expect(m.memory_used_mb).toBeLessThanOrEqual(m.memory_total_mb);
      expect(m.disk_total_gb).toBeGreaterThan(0);
      expect(m.cpu_percent).toBeLessThanOrEqual(100);
      expect(m.disk_percent).toBeLessThanOrEqual(100);
    }
  });
});

describe('NodeMetricsCollector arithmetic', () => {
  let proc: string;
  beforeAll(async () => {
    proc = await mkdtemp(join(tmpdir(), 'otto-proc-'));
    await mkdir(join(proc, 'net'));
    await writeFile(join(proc, 'net/dev'), NET_DEV);
    await writeFile(join(proc, 'meminfo'), meminfo(3000000));
    await writeFile(join(proc, 'stat'), stat(100, 900));
  });
  afterAll(() => rm(proc, { recursive: true, force: true }));

  it('computes CPU from the delta since the previous sample, memory from MemAvailable, network of the interfaces that leave the machine', async () => {
    const collector = new NodeMetricsCollector('n', { procRoot: proc, diskPath: proc });
    const idle = await collector.collect(); // same counters as the constructor's baseline
    expect(idle.cpu_percent).toBe(0);
    expect(idle.memory_used_mb).toBe(976.6); // (4000000 - 3000000) kB
    expect(idle.memory_percent).toBe(25);
    expect(idle.network_bytes_recv).toBe(1007); // eth0 + wlan0: not lo, docker0, veth*, br-*
    expect(idle.network_bytes_sent).toBe(211);

    await writeFile(join(proc, 'stat'), stat(130, 970)); // 30 busy of 100 ticks
    expect((await collector.collect()).cpu_percent).toBe(30);
  });
});

describe('NodeMetricsCollector test seam', () => {
  it('takes cpu, memory and disk percent from the overrides file while it exists, ignoring anything else or out of range', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-overrides-'));
    const file = join(dir, 'node-a.json');
    try {
      const collector = new NodeMetricsCollector('node-a', { overridesFile: file });
      const measured = await collector.collect();
      await writeFile(file, JSON.stringify({ cpu_percent: 97.5, memory_percent: 150, node_id: 'evil', disk_percent: '3' }));
      const fed = await collector.collect();
      expect(fed.cpu_percent).toBe(97.5);
      expect(fed.node_id).toBe('node-a');
      expect(fed.memory_percent).toBeLessThanOrEqual(100);
      expect(typeof fed.disk_percent).toBe('number');
      await writeFile(file, '{ half-writ');
      expect(nodeMetricsSchema.parse(await collector.collect()).node_id).toBe('node-a');
      await rm(file);
      expect((await collector.collect()).cpu_count).toBe(measured.cpu_count);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
