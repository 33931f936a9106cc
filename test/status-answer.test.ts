/**
 * StatusAnswer (src/http/status-answer.ts): a status quick to make is made for every request; one slow to
 * make is answered from the last one made, the next one made once the answer went out, and never given
 * out older than its maximum age.
 */
import { describe, expect, it } from 'vitest';
import { StatusAnswer } from '../src/http/status-answer.js';
import type { Bytes } from '../src/http/status-json.js';

/** A maker that counts its calls and takes `costMs` (busy waiting, as a real build would). */
function maker(costMs: number) {
  const made = { count: 0 };
  const make = (): Bytes => {
    const until = performance.now() + costMs;
    while (performance.now() < until);
    made.count++;
    return { ok: true, bytes: Buffer.from(`{"n":${made.count}}`) };
  };
  return { made, make };
}

const text = (bytes: Bytes) => (bytes.ok ? bytes.bytes.toString() : 'invalid');

describe('StatusAnswer', () => {
  it('makes a quick status for every request', () => {
    const { made, make } = maker(0);
    const answer = new StatusAnswer(make, 20, 5_000);
    expect(text(answer.get())).toBe('{"n":1}');
    answer.sent();
    expect(text(answer.get())).toBe('{"n":2}');
    expect(made.count).toBe(2);
  });

  it('answers a slow one from the last made, and makes the next once the answer is out', () => {
    const { made, make } = maker(25);
    const answer = new StatusAnswer(make, 20, 5_000, 100);
    expect(text(answer.get())).toBe('{"n":1}');
    answer.sent();
    // Made for the request itself: nothing to make afterwards.
    expect(made.count).toBe(1);
    expect(text(answer.get())).toBe('{"n":1}');
    expect(made.count).toBe(1);
    // The last one is younger than the refresh period: not made again yet.
    answer.sent();
    expect(made.count).toBe(1);
    answer.sent(performance.now() + 200);
    expect(made.count).toBe(2);
    expect(text(answer.get())).toBe('{"n":2}');
  });

  it('makes a slow one again first when the last is too old', () => {
    const { make } = maker(25);
    const answer = new StatusAnswer(make, 20, 1_000);
    const start = performance.now();
    expect(text(answer.get(start))).toBe('{"n":1}');
    expect(text(answer.get(start + 500))).toBe('{"n":1}');
    expect(text(answer.get(start + 2_000))).toBe('{"n":2}');
  });

  it('keeps no invalid answer', () => {
    let calls = 0;
    const answer = new StatusAnswer(() => {
      calls++;
      const until = performance.now() + 25;
      while (performance.now() < until);
      return { ok: false, error: new (class extends Error {})() as never };
    }, 20, 5_000);
    expect(answer.get().ok).toBe(false);
    expect(answer.get().ok).toBe(false);
    expect(calls).toBe(2);
  });
});
