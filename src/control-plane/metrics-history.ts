/**
 * One node's metrics history in a few kilobytes: the last RAW_SAMPLES samples as they came (numbers in
 * typed arrays, not objects), and an hour of one-minute summaries before them (gauges averaged; counters
 * and totals as at the minute's last sample). Ten thousand nodes reporting every 5 s for an hour kept as
 * objects took gigabytes; this takes about 10 KB a node, allocated on the node's first sample.
 */
import type { NodeMetrics } from '../protocol/messages.js';

export const RAW_SAMPLES = 60;
export const SUMMARY_MINUTES = 60;
const MINUTE_MS = 60_000;

/** The numeric fields, in column order. */
const FIELDS = [
  'cpu_percent',
  'memory_percent',
  'memory_used_mb',
  'memory_total_mb',
  'disk_percent',
  'disk_used_gb',
  'disk_total_gb',
  'network_bytes_sent',
  'network_bytes_recv',
] as const satisfies readonly (keyof NodeMetrics)[];
type Field = (typeof FIELDS)[number];
/** Averaged over a minute; the others (totals, byte counters) keep the minute's last value. */
const AVERAGED = new Set<Field>(['cpu_percent', 'memory_percent', 'memory_used_mb', 'disk_percent', 'disk_used_gb']);
const WIDTH = FIELDS.length;

/** A ring of rows: a timestamp and WIDTH numbers each. */
class Ring {
  readonly times: Float64Array;
  readonly values: Float64Array;
  /** Index of the oldest row, and how many rows there are. */
  start = 0;
  size = 0;

  constructor(readonly capacity: number) {
    this.times = new Float64Array(capacity);
    this.values = new Float64Array(capacity * WIDTH);
  }

  /** The row to write next (the oldest one is overwritten when full). */
  next(): number {
    if (this.size < this.capacity) return (this.start + this.size++) % this.capacity;
    const row = this.start;
    this.start = (this.start + 1) % this.capacity;
    return row;
  }

  row(i: number): number {
    return (this.start + i) % this.capacity;
  }
}

export class MetricsHistory {
  private raw?: Ring;
  private minutes?: Ring;
  /** The minute being summed up: its number, sample count and sums (gauges) or last values. */
  private current?: { minute: number; count: number; last: number; row: number; sums: Float64Array };

  constructor(private readonly nodeId: string) {}

  get length(): number {
    return (this.raw?.size ?? 0) + this.summariesBefore(this.oldestRaw());
  }

  push(metrics: NodeMetrics): void {
    const time = Date.parse(metrics.timestamp);
    if (!Number.isFinite(time)) return;
    this.raw ??= new Ring(RAW_SAMPLES);
    const row = this.raw.next();
    this.raw.times[row] = time;
    for (let f = 0; f < WIDTH; f++) this.raw.values[row * WIDTH + f] = metrics[FIELDS[f]!];
    this.summarize(time, metrics);
  }

  /** Oldest first: the summaries of the minutes before the raw samples, then the raw samples; only those after `sinceMs`. */
  samples(sinceMs = Number.NEGATIVE_INFINITY): NodeMetrics[] {
    const out: NodeMetrics[] = [];
    const oldestRaw = this.oldestRaw();
    const minutes = this.minutes;
    if (minutes) {
      for (let i = 0; i < minutes.size; i++) {
        const row = minutes.row(i);
        const time = minutes.times[row]!;
        if (time >= oldestRaw) break;
        if (time > sinceMs) out.push(this.sample(time, minutes.values, row));
      }
    }
    const raw = this.raw;
    if (raw) {
      for (let i = 0; i < raw.size; i++) {
        const row = raw.row(i);
        const time = raw.times[row]!;
        if (time > sinceMs) out.push(this.sample(time, raw.values, row));
      }
    }
    return out;
  }

  private oldestRaw(): number {
    return this.raw && this.raw.size > 0 ? this.raw.times[this.raw.row(0)]! : Number.POSITIVE_INFINITY;
  }

  private summariesBefore(time: number): number {
    const minutes = this.minutes;
    if (!minutes) return 0;
    let count = 0;
    for (let i = 0; i < minutes.size && minutes.times[minutes.row(i)]! < time; i++) count++;
    return count;
  }

  private sample(time: number, values: Float64Array, row: number): NodeMetrics {
    const sample = { node_id: this.nodeId, timestamp: new Date(time).toISOString() } as NodeMetrics;
    for (let f = 0; f < WIDTH; f++) (sample as unknown as Record<Field, number>)[FIELDS[f]!] = values[row * WIDTH + f]!;
    return sample;
  }

  /** Adds the sample to its minute's summary (a sample from an earlier minute, a clock set back, counts in the current one). */
  private summarize(time: number, metrics: NodeMetrics): void {
    const minute = Math.max(Math.floor(time / MINUTE_MS), this.current?.minute ?? Number.NEGATIVE_INFINITY);
    this.minutes ??= new Ring(SUMMARY_MINUTES);
    const minutes = this.minutes;
    if (!this.current || this.current.minute !== minute) {
      this.current = { minute, count: 0, last: time, row: minutes.next(), sums: new Float64Array(WIDTH) };
    }
    const current = this.current;
    current.count++;
    current.last = Math.max(current.last, time);
    minutes.times[current.row] = current.last;
    for (let f = 0; f < WIDTH; f++) {
      const field = FIELDS[f]!;
      const value = metrics[field];
      // The open minute is kept readable like the closed ones: its summary so far.
      if (AVERAGED.has(field)) {
        current.sums[f] = current.sums[f]! + value;
        minutes.values[current.row * WIDTH + f] = current.sums[f]! / current.count;
      } else {
        minutes.values[current.row * WIDTH + f] = value;
      }
    }
  }
}
