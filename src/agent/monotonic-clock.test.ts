import { describe, expect, it } from 'vitest';
import { monotonicMs } from './monotonic-clock.js';

describe('monotonicMs', () => {
  it('counts milliseconds as performance.now() does, and never goes back', async () => {
    const [mono, perf] = [monotonicMs(), performance.now()];
    await new Promise((resolve) => setTimeout(resolve, 50));
    const [monoElapsed, perfElapsed] = [monotonicMs() - mono, performance.now() - perf];
    expect(monoElapsed).toBeGreaterThanOrEqual(45);
    expect(Math.abs(monoElapsed - perfElapsed)).toBeLessThan(5);
    let last = monotonicMs();
    for (let i = 0; i < 1000; i++) {
      const now = monotonicMs();
      expect(now).toBeGreaterThanOrEqual(last);
      last = now;
    }
  });
});
