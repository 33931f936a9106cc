import { describe, expect, it } from 'vitest';
import { isoTime } from './iso-time.js';

describe('isoTime', () => {
  it('says what toISOString says, across leap years, month ends, centuries and milliseconds', () => {
    const edges = ['1970-01-01T00:00:00.000Z', '1999-12-31T23:59:59.999Z', '2000-02-29T12:00:00.500Z', '2024-02-29T23:59:59.001Z', '2100-03-01T00:00:00.000Z', '1969-12-31T23:59:59.999Z', '0001-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z'];
    for (const iso of edges) expect(isoTime(Date.parse(iso))).toBe(iso);
    // A pseudo-random walk over 0..9999 (fixed seed: the same values every run).
    let seed = 42;
    const max = Date.parse('9999-12-31T23:59:59.999Z');
    const min = Date.parse('0000-01-01T00:00:00.000Z');
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      const ms = Math.floor(min + (seed / 2 ** 31) * (max - min));
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('is now by default', () => {
    const before = Date.now();
    const now = Date.parse(isoTime());
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });
});
