import { readFile, statfs } from '../../fs-async.js';
import type { NodeMetrics } from '../../protocol/messages.js';
import { GiB, field, netDevTotals, round, scanEnd, uintAt } from './procfs.js';
import { isoTime } from '../../protocol/iso-time.js';

export interface NodeMetricsOptions {
  /** Where procfs is mounted; `/host/proc` when the agent runs in a container. */
  procRoot?: string;
  /** Filesystem whose usage is reported. */
  diskPath?: string;
  /**
   * Test seam: a JSON file whose `cpu_percent`, `memory_percent` and `disk_percent` replace the measured
   * ones while it exists. Nodes that share one machine share its CPU, so a test of metrics-driven migration
   * feeds one node a controlled load this way. Set for every agent by OTTO_TEST_METRICS_DIR (the file is
   * `<dir>/<node>.json`); never set in production.
   */
  overridesFile?: string;
}

const OVERRIDABLE = ['cpu_percent', 'memory_percent', 'disk_percent'] as const;

interface CpuTimes {
  busy: number;
  total: number;
}

/** Host metrics straight from procfs and statfs(2): no dependency, a few small reads per cycle. */
export class NodeMetricsCollector {
  private readonly procRoot: string;
  private readonly diskPath: string;
  private readonly overridesFile?: string;
  /** CPU times of the previous collect; CPU % is only meaningful as a delta between two samples. */
  private previous: Promise<CpuTimes | undefined>;

  constructor(
    private readonly nodeId: string,
    opts: NodeMetricsOptions = {},
  ) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.diskPath = opts.diskPath ?? '/';
    const testDir = process.env.OTTO_TEST_METRICS_DIR;
    this.overridesFile = opts.overridesFile ?? (testDir ? `${testDir}/${nodeId}.json` : undefined);
    // Baseline taken now, so the first collect() reports the CPU use since construction instead of 0.
    this.previous = readFile(`${this.procRoot}/stat`, 'latin1').then(cpuTimes, () => undefined);
  }

  async collect(): Promise<NodeMetrics> {
    const [stat, meminfo, netDev, disk, previous] = await Promise.all([
      readFile(`${this.procRoot}/stat`, 'latin1'),
      readFile(`${this.procRoot}/meminfo`, 'latin1'),
      // /proc/net/dev shows the reader's network namespace: the agent must use the host network.
      readFile(`${this.procRoot}/net/dev`, 'latin1'),
      statfs(this.diskPath),
      this.previous,
    ]);

    const cpu = cpuTimes(stat);
    this.previous = Promise.resolve(cpu);
    const busy = previous ? cpu.busy - previous.busy : 0;
    const total = previous ? cpu.total - previous.total : 0;

    const memTotal = field(meminfo, 'MemTotal:') ?? 0; // kB, as every meminfo value
    // MemAvailable (kernel >= 3.14) counts reclaimable cache as free, as `free` does; estimate it on older kernels.
    const memAvailable =
      field(meminfo, 'MemAvailable:') ??
      (field(meminfo, 'MemFree:') ?? 0) + (field(meminfo, 'Buffers:') ?? 0) + (field(meminfo, 'Cached:') ?? 0);
    const memUsed = Math.max(0, memTotal - memAvailable);

    const diskTotal = disk.blocks * disk.bsize;
    const diskUsed = (disk.blocks - disk.bfree) * disk.bsize;
    // Like df: blocks reserved for root count neither as used nor as available.
    const diskUsable = diskUsed + disk.bavail * disk.bsize;
    const net = netDevTotals(netDev);

    const metrics: NodeMetrics = {
      node_id: this.nodeId,
      timestamp: isoTime(),
      cpu_percent: total > 0 ? round((busy / total) * 100, 1) : 0,
      memory_percent: memTotal > 0 ? round((memUsed / memTotal) * 100, 1) : 0,
      memory_used_mb: round(memUsed / 1024, 1),
      memory_total_mb: round(memTotal / 1024, 1),
      disk_percent: diskUsable > 0 ? round((diskUsed / diskUsable) * 100, 1) : 0,
      disk_used_gb: round(diskUsed / GiB, 2),
      disk_total_gb: round(diskTotal / GiB, 2),
      network_bytes_sent: net.tx,
      network_bytes_recv: net.rx,
      cpu_count: cpuCount(stat),
    };
    if (this.overridesFile) Object.assign(metrics, await readOverrides(this.overridesFile));
    return metrics;
  }
}

async function readOverrides(file: string): Promise<Partial<NodeMetrics>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return {}; // no file (or half-written): the measured values stand
  }
  const overrides: Partial<Record<(typeof OVERRIDABLE)[number], number>> = {};
  for (const key of OVERRIDABLE) {
    const value = (parsed as Record<string, unknown> | null)?.[key];
    if (typeof value === 'number' && value >= 0 && value <= 100) overrides[key] = value;
  }
  return overrides;
}

/** Cores online: the "cpuN" lines of /proc/stat (what the busy share above is spread over). */
function cpuCount(stat: string): number {
  let count = 0;
  for (let at = stat.indexOf('\ncpu'); at !== -1; at = stat.indexOf('\ncpu', at + 4)) if (stat.charCodeAt(at + 4) >= 48 && stat.charCodeAt(at + 4) <= 57) count++;
  return Math.max(1, count);
}

/** Aggregate "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal (guest is already in user). */
function cpuTimes(stat: string): CpuTimes {
  let total = 0;
  let idle = 0;
  let at = stat.indexOf('cpu ') + 3;
  for (let i = 0; i < 8; i++) {
    const ticks = uintAt(stat, at);
    at = scanEnd();
    total += ticks;
    if (i === 3 || i === 4) idle += ticks; // idle, iowait
  }
  return { busy: total - idle, total };
}
