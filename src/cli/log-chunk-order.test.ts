import { describe, expect, it } from 'vitest';
import { ChunkOrder } from './log-chunk-order.js';

const seqs = (chunks: { seq: number }[]) => chunks.map((c) => c.seq);

describe('ChunkOrder', () => {
  it('passes chunks in order straight through', () => {
    const order = new ChunkOrder();
    expect(seqs(order.accept({ seq: 0 }))).toEqual([0]);
    expect(seqs(order.accept({ seq: 1 }))).toEqual([1]);
    expect(order.received).toBe(2);
  });

  it('drops a chunk delivered twice', () => {
    const order = new ChunkOrder();
    order.accept({ seq: 0 });
    expect(order.accept({ seq: 0 })).toEqual([]);
    order.accept({ seq: 2 });
    expect(order.accept({ seq: 2 })).toEqual([]);
    expect(order.waiting).toBe(1);
  });

  it('holds early chunks until the gap is filled, then releases them in order', () => {
    const order = new ChunkOrder();
    expect(order.accept({ seq: 2 })).toEqual([]);
    expect(order.accept({ seq: 1 })).toEqual([]);
    expect(order.waiting).toBe(2);
    expect(seqs(order.accept({ seq: 0 }))).toEqual([0, 1, 2]);
    expect(order.waiting).toBe(0);
    expect(order.received).toBe(3);
  });
});
