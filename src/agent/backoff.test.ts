import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';

describe('Backoff', () => {
  it('doubles the wait after each failure, up to the maximum, and forgets on success', () => {
    const backoff = new Backoff(1_000, 8_000);
    expect(backoff.canTry('img', 0)).toBe(true);
    const waits = [1, 2, 3, 4, 5].map((n) => backoff.failed('img', `failure ${n}`, 0).retryAt);
    expect(waits).toEqual([1_000, 2_000, 4_000, 8_000, 8_000]);
    expect(backoff.canTry('img', 7_999)).toBe(false);
    expect(backoff.canTry('img', 8_000)).toBe(true);
    expect(backoff.get('img')?.error).toBe('failure 5');
    backoff.succeeded('img');
    expect(backoff.get('img')).toBeUndefined();
    expect(backoff.failed('img', 'again', 0).retryAt).toBe(1_000);
  });

  it('keeps keys apart and prunes the ones no longer wanted', () => {
    const backoff = new Backoff();
    backoff.failed('a', 'x', 0);
    backoff.failed('b', 'y', 0);
    backoff.prune((key) => key === 'b');
    expect(backoff.get('a')).toBeUndefined();
    expect(backoff.get('b')?.error).toBe('y');
  });
});
