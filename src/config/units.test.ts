import { describe, expect, it } from 'vitest';
import { parseDuration, parseSize } from './units.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5000],
    ['1.5s', 1500],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['0s', 0],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['5', '5 s', 's', '5sec', ''])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(RangeError);
  });
});

describe('parseSize', () => {
  it.each([
    [1024, 1024],
    ['512', 512],
    ['1k', 1024],
    ['256m', 256 * 1024 ** 2],
    ['512MB', 512 * 1024 ** 2],
    ['1Gi', 1024 ** 3],
    ['1.5g', 1.5 * 1024 ** 3],
  ])('reads %j as %i bytes', (value, bytes) => {
    expect(parseSize(value)).toBe(bytes);
  });

  it.each(['lots', '1x', '-1m', ''])('rejects %j', (text) => {
    expect(() => parseSize(text)).toThrow(RangeError);
  });
});
