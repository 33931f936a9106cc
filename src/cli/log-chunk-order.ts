/**
 * Puts one logs request's chunks back in `seq` order. MQTT QoS 1 delivers at least once: after a
 * reconnect a chunk may come twice, or a resent one after later ones. Duplicates are dropped; early
 * chunks are held until the gap is filled (the agent's window bounds how many).
 */
export class ChunkOrder<T extends { seq: number }> {
  private next = 0;
  private readonly held = new Map<number, T>();

  /** The chunks that can be printed now, in order (none if `chunk` is a duplicate or early). */
  accept(chunk: T): T[] {
    if (chunk.seq < this.next || this.held.has(chunk.seq)) return [];
    this.held.set(chunk.seq, chunk);
    const ready: T[] = [];
    for (let next = this.held.get(this.next); next; next = this.held.get(this.next)) {
      ready.push(next);
      this.held.delete(this.next++);
    }
    return ready;
  }

  /** How many chunks were accepted in order: seq 0 up to received - 1. */
  get received(): number {
    return this.next;
  }

  /** Chunks waiting for an earlier one. */
  get waiting(): number {
    return this.held.size;
  }
}
