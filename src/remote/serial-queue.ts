/**
 * One queue of jobs per key: a job starts only once every job queued before it under the same key has
 * settled (resolved or rejected). The remote agent manager keys it by node id, so that two starts, or a
 * start and a stop, of one node's agent never overlap, while different nodes go on side by side.
 */
export class SerialQueues {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly counts = new Map<string, number>();

  /** Queues `job` under `key`; settles as the job does. */
  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    this.counts.set(key, this.pending(key) + 1);
    const result = previous.then(job);
    const tail = result.then(forget, forget).then(() => {
      const left = this.pending(key) - 1;
      if (left > 0) {
        this.counts.set(key, left);
      } else {
        // No job was queued after this one: the key is idle.
        this.counts.delete(key);
        this.tails.delete(key);
      }
    });
    this.tails.set(key, tail);
    return result;
  }

  /** How many jobs of this key are queued or running. */
  pending(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** Resolves once every job queued under this key so far has settled. */
  idle(key: string): Promise<void> {
    return this.tails.get(key) ?? Promise.resolve();
  }
}

function forget(): void {}
