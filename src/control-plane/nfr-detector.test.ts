import { describe, expect, it } from 'vitest';
import { parseNfrRule } from '../config/nfr-rules.js';
import { ViolationDetector, type NfrSubject } from './nfr-detector.js';

const rule = parseNfrRule('node.cpu_percent < 85 for 30s');
const subject: NfrSubject = { service: 'web', replica: 1, node: 'a', rule };
const S = 1_000;

/** Feeds one sample every 5 s; returns the transitions with their time. */
function feed(detector: ViolationDetector, values: number[], start = 0) {
  return values.flatMap((value, i) => {
    const t = detector.observe(subject, value, start + i * 5 * S);
    return t ? [{ at: (start + i * 5 * S) / S, kind: t.kind }] : [];
  });
}

describe('ViolationDetector', () => {
  it('a short spike is not a violation', () => {
    const d = new ViolationDetector(15 * S);
    expect(feed(d, [50, 99, 99, 99, 99, 99, 50, 99, 99, 50])).toEqual([]);
    expect(d.violations()).toEqual([]);
  });

  it('a requirement failing for its whole window is a violation, dated from the first failing sample', () => {
    const d = new ViolationDetector(15 * S);
    expect(feed(d, [50, 90, 90, 90, 90, 90, 90, 90])).toEqual([{ at: 35, kind: 'violated' }]);
    expect(d.violations()).toEqual([expect.objectContaining({ service: 'web', node: 'a', since: 5 * S, value: 90, failing: true })]);
  });

  it('clears only after the metric is back inside by the margin for a whole window (hysteresis)', () => {
    const d = new ViolationDetector(15 * S);
    feed(d, [90, 90, 90, 90, 90, 90, 90]);
    expect(d.violations()).toHaveLength(1);
    // Hovering just under the threshold (84, 83): still violated, though the latest sample no longer fails.
    expect(feed(d, [84, 83, 84, 83, 84, 83, 84, 83], 35 * S)).toEqual([]);
    expect(d.violations()[0]).toMatchObject({ failing: false, value: 83 });
    // Clearly back (70) for 30 s: cleared; a sample in the band restarts the clearing window.
    expect(feed(d, [70, 70, 82, 70, 70, 70, 70, 70, 70, 70], 75 * S)).toEqual([{ at: 120, kind: 'cleared' }]);
    expect(d.violations()).toEqual([]);
  });

  it('a gap in the samples restarts the window: two samples a minute apart are not a sustained violation', () => {
    const d = new ViolationDetector(15 * S);
    expect(d.observe(subject, 95, 0)).toBeUndefined();
    expect(d.observe(subject, 95, 60 * S)).toBeUndefined();
    for (let t = 65; t < 90; t += 5) expect(d.observe(subject, 95, t * S)).toBeUndefined();
    expect(d.observe(subject, 95, 90 * S)?.kind).toBe('violated');
  });

  it('forgets subjects that are gone (a replica that moved) and returns their violations', () => {
    const d = new ViolationDetector(15 * S);
    feed(d, [90, 90, 90, 90, 90, 90, 90]);
    d.observe({ ...subject, replica: 2 }, 10, 0);
    const ended = d.retain((s) => s.replica !== 1);
    expect(ended).toEqual([expect.objectContaining({ replica: 1 })]);
    expect(d.size).toBe(1);
  });
});
