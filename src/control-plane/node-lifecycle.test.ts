import { describe, expect, it } from 'vitest';
import { nodeLifecycle, type LifecycleFacts } from './node-lifecycle.js';

const facts = (over: Partial<LifecycleFacts> = {}): LifecycleFacts => ({
  saysOnline: true,
  lastSeen: 100_000,
  heartbeatTimeoutMs: 3_000,
  lostAfterMs: 60_000,
  watchingSince: 0,
  ...over,
});

describe('nodeLifecycle', () => {
  it('is online while it says so and was heard within the heartbeat timeout', () => {
    expect(nodeLifecycle(facts(), 103_000)).toEqual({ state: 'online' });
  });

  it('is unreachable after missed heartbeats, or when its last will says offline, and lost after lost_after', () => {
    expect(nodeLifecycle(facts(), 103_001)).toEqual({ state: 'unreachable', unreachableSince: 100_000 });
    expect(nodeLifecycle(facts({ saysOnline: false }), 100_500)).toEqual({ state: 'unreachable', unreachableSince: 100_000 });
    expect(nodeLifecycle(facts(), 159_999).state).toBe('unreachable');
    expect(nodeLifecycle(facts(), 160_000)).toEqual({ state: 'lost', unreachableSince: 100_000 });
  });

  it('a node never heard from since the control plane started is unreachable from then, and lost only lost_after later', () => {
    const neverHeard = facts({ lastSeen: undefined, watchingSince: 500_000 });
    expect(nodeLifecycle(neverHeard, 510_000)).toEqual({ state: 'unreachable', unreachableSince: 500_000 });
    expect(nodeLifecycle(neverHeard, 560_000).state).toBe('lost');
  });

  it('is not lost because the control plane was down: the lost clock starts when the control plane watches again', () => {
    const oldReport = facts({ lastSeen: 100_000, watchingSince: 1_000_000 });
    expect(nodeLifecycle(oldReport, 1_010_000)).toEqual({ state: 'unreachable', unreachableSince: 100_000 });
    expect(nodeLifecycle(oldReport, 1_060_000).state).toBe('lost');
  });
});
