import { describe, expect, it } from 'vitest';
import type { NodeMetrics } from '../protocol/messages.js';
import { MetricsHistory, RAW_SAMPLES, SUMMARY_MINUTES } from './metrics-history.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const sample = (at: number, cpu: number, sent = at / 1000): NodeMetrics => ({
  node_id: 'a',
  timestamp: new Date(at).toISOString(),
  cpu_percent: cpu,
  memory_percent: 40.5,
  memory_used_mb: 3300.5,
  memory_total_mb: 8000,
  disk_percent: 55,
  disk_used_gb: 55.1,
  disk_total_gb: 100.2,
  network_bytes_sent: sent,
  network_bytes_recv: 2 * sent,
});

describe('MetricsHistory', () => {
  it('gives back the recent samples exactly, oldest first, and only those after `since`', () => {
    const history = new MetricsHistory('a');
    for (let i = 0; i < 5; i++) history.push(sample(T0 + i * 5_000, i + 0.1));
    expect(history.samples()).toEqual([0, 1, 2, 3, 4].map((i) => sample(T0 + i * 5_000, i + 0.1)));
    expect(history.samples(T0 + 10_000).map((m) => m.cpu_percent)).toEqual([3.1, 4.1]);
    expect(history.length).toBe(5);
  });

  it('keeps the last RAW_SAMPLES samples as they came, and one summary a minute before them', () => {
    const history = new MetricsHistory('a');
    // 20 minutes at one sample every 5 s: 12 a minute; cpu is the minute number.
    const minutes = 20;
    for (let i = 0; i < minutes * 12; i++) history.push(sample(T0 + i * 5_000, Math.floor(i / 12)));
    const samples = history.samples();
    const raw = samples.slice(-RAW_SAMPLES);
    expect(raw[0]!.timestamp).toBe(new Date(T0 + (minutes * 12 - RAW_SAMPLES) * 5_000).toISOString());
    const summaries = samples.slice(0, -RAW_SAMPLES);
    // The minutes wholly before the raw samples, one each, averaged; counters as at the minute's end.
    expect(summaries.map((m) => m.cpu_percent)).toEqual([...Array(minutes - RAW_SAMPLES / 12).keys()]);
    const first = summaries[0]!;
    expect(first.timestamp).toBe(new Date(T0 + 55_000).toISOString());
    expect(first.network_bytes_sent).toBe((T0 + 55_000) / 1000);
    expect(first.memory_total_mb).toBe(8000);
    expect(history.length).toBe(samples.length);
  });

  it('averages the gauges of a minute', () => {
    const history = new MetricsHistory('a');
    history.push(sample(T0, 10));
    history.push(sample(T0 + 30_000, 30));
    // Enough later samples to push both out of the raw window.
    for (let i = 0; i < RAW_SAMPLES; i++) history.push(sample(T0 + 120_000 + i * 1_000, 1));
    expect(history.samples()[0]).toMatchObject({ cpu_percent: 20, timestamp: new Date(T0 + 30_000).toISOString() });
  });

  it('stays bounded: at most an hour of summaries and RAW_SAMPLES samples', () => {
    const history = new MetricsHistory('a');
    for (let i = 0; i < 3 * 60 * 60; i++) history.push(sample(T0 + i * 1_000, i % 100));
    expect(history.samples().length).toBeLessThanOrEqual(RAW_SAMPLES + SUMMARY_MINUTES);
    expect(history.samples().length).toBeGreaterThan(RAW_SAMPLES + SUMMARY_MINUTES - 3);
    const times = history.samples().map((m) => Date.parse(m.timestamp));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });
});
