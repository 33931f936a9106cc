import { describe, expect, it } from 'vitest';
import { DriftTracker } from './drift.js';

describe('DriftTracker', () => {
  it('calls a difference drift when two ticks in a row see it, and clears it when it is gone', () => {
    const tracker = new DriftTracker();
    const t0 = new Date('2026-01-01T00:00:00Z');
    expect(tracker.observe([{ name: 'web', desired: 3, running: 1 }], t0)).toEqual({ found: [], cleared: [] });
    const second = tracker.observe([{ name: 'web', desired: 3, running: 2 }]);
    expect(second.found).toEqual([{ service: 'web', desired: 3, running: 2, since: t0.toISOString() }]);
    expect(tracker.current()).toHaveLength(1);
    const third = tracker.observe([{ name: 'web', desired: 3, running: 3 }]);
    expect(third.cleared.map((d) => d.service)).toEqual(['web']);
    expect(tracker.current()).toEqual([]);
  });

  it('forgets a difference that converged within one tick', () => {
    const tracker = new DriftTracker();
    tracker.observe([{ name: 'web', desired: 2, running: 0 }]);
    tracker.observe([{ name: 'web', desired: 2, running: 2 }]);
    expect(tracker.observe([{ name: 'web', desired: 2, running: 1 }]).found).toEqual([]);
  });

  it('forgets services removed from the config', () => {
    const tracker = new DriftTracker();
    tracker.observe([{ name: 'web', desired: 2, running: 0 }]);
    tracker.observe([{ name: 'web', desired: 2, running: 0 }]);
    tracker.observe([]);
    expect(tracker.current()).toEqual([]);
  });
});
