import type { ContainerMetricsCollector, RunningContainer } from './container-metrics.js';
import { monotonicMs } from '../monotonic-clock.js';
import { round } from './procfs.js';

/**
 * Times `cycles` consecutive container metrics cycles, as the agent runs them. One untimed cycle comes first:
 * resolving the cgroup directories and taking the CPU baselines happens once per container, not every cycle.
 */
export async function measureContainerCycle(
  collector: Pick<ContainerMetricsCollector, 'collect'>,
  containers: readonly RunningContainer[],
  cycles = 5,
): Promise<{ meanMs: number; maxMs: number }> {
  await collector.collect(containers);
  let totalMs = 0;
  let maxMs = 0;
  for (let i = 0; i < cycles; i++) {
    const started = monotonicMs();
    await collector.collect(containers);
    const ms = monotonicMs() - started;
    totalMs += ms;
    maxMs = Math.max(maxMs, ms);
  }
  return { meanMs: round(totalMs / Math.max(1, cycles), 2), maxMs: round(maxMs, 2) };
}
