import { describe, expect, it } from 'vitest';
import type { NodeMetrics, NodeStatus } from '../protocol/messages.js';
import { RAW_SAMPLES } from './metrics-history.js';
import { NodeRegistry } from './node-registry.js';

const status = (state: NodeStatus['state']): NodeStatus => ({ node_id: 'a', state, timestamp: new Date().toISOString() });
const metrics = (cpu: number): NodeMetrics => ({
  node_id: 'a',
  timestamp: new Date().toISOString(),
  cpu_percent: cpu,
  memory_percent: 1,
  memory_used_mb: 1,
  memory_total_mb: 2,
  disk_percent: 1,
  disk_used_gb: 1,
  disk_total_gb: 2,
  network_bytes_sent: 0,
  network_bytes_recv: 0,
});

describe('NodeRegistry', () => {
  it('is online after an online status and offline after 3 silent intervals', () => {
    const registry = new NodeRegistry([{ id: 'a', lostAfterMs: 60_000 }], 3_000, 0);
    expect(registry.isOnline('a', 0)).toBe(false);
    registry.recordStatus(status('online'), 1_000);
    expect(registry.isOnline('a', 3_500)).toBe(true);
    registry.recordMetrics(metrics(1), 3_500);
    expect(registry.isOnline('a', 6_400)).toBe(true);
    expect(registry.isOnline('a', 6_600)).toBe(false);
  });

  it('goes offline at once on an offline status (the last will)', () => {
    const registry = new NodeRegistry([{ id: 'a', lostAfterMs: 60_000 }], 3_000, 0);
    registry.recordStatus(status('online'), 0);
    registry.recordStatus(status('offline'), 10);
    expect(registry.isOnline('a', 20)).toBe(false);
  });

  it('is unreachable, then lost after its lost_after; back online with the next message', () => {
    const registry = new NodeRegistry([{ id: 'a', lostAfterMs: 60_000 }], 3_000, 0);
    registry.recordStatus(status('online'), 1_000);
    expect(registry.lifecycle('a', 5_000)).toEqual({ state: 'unreachable', unreachableSince: 1_000 });
    expect(registry.lifecycle('a', 61_000).state).toBe('lost');
    registry.recordMetrics(metrics(1), 70_000);
    expect(registry.lifecycle('a', 70_001).state).toBe('online');
  });

  it('seeds what a previous control plane knew without counting it as hearing from the node', () => {
    const registry = new NodeRegistry([{ id: 'a', lostAfterMs: 60_000 }], 3_000, 100_000);
    registry.seed('a', { lastSeen: 50_000, state: { node_id: 'a', timestamp: new Date(50_000).toISOString(), revision: 3, docker: { reachable: true }, replicas: [] } });
    expect(registry.get('a')!.state?.revision).toBe(3);
    expect(registry.lifecycle('a', 100_500)).toEqual({ state: 'unreachable', unreachableSince: 100_000 });
  });

  it('ignores nodes that are not configured and keeps a bounded history', () => {
    const registry = new NodeRegistry([{ id: 'a', lostAfterMs: 60_000 }], 3_000, 0);
    expect(registry.recordStatus({ ...status('online'), node_id: 'zz' })).toBe(false);
    for (let i = 0; i < RAW_SAMPLES + 10; i++) registry.recordMetrics(metrics(i));
    const history = registry.get('a')!.history.samples();
    expect(history).toHaveLength(RAW_SAMPLES);
    expect(history[0]!.cpu_percent).toBe(10);
    expect(history.at(-1)).toEqual({ ...metrics(RAW_SAMPLES + 9), timestamp: history.at(-1)!.timestamp });
  });
});
