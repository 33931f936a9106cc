/**
 * Failures remembered per key (an image, a replica at one spec), so a failing action is retried with
 * exponential backoff instead of at every reconcile, and its reason can be reported. Pure bookkeeping:
 * the caller passes the time.
 */
export interface Failure {
  count: number;
  retryAt: number;
  error: string;
}

export class Backoff {
  private readonly failures = new Map<string, Failure>();

  constructor(
    private readonly baseMs = 1_000,
    private readonly maxMs = 300_000,
  ) {}

  canTry(key: string, now = Date.now()): boolean {
    const failure = this.failures.get(key);
    return !failure || now >= failure.retryAt;
  }

  failed(key: string, error: string, now = Date.now()): Failure {
    const count = (this.failures.get(key)?.count ?? 0) + 1;
    const delay = Math.min(this.maxMs, this.baseMs * 2 ** (count - 1));
    const failure = { count, retryAt: now + delay, error };
    this.failures.set(key, failure);
    return failure;
  }

  succeeded(key: string): void {
    this.failures.delete(key);
  }

  get(key: string): Failure | undefined {
    return this.failures.get(key);
  }

  /** Forgets every key `keep` says no (a replica scaled away, a spec replaced). */
  prune(keep: (key: string) => boolean): void {
    for (const key of this.failures.keys()) if (!keep(key)) this.failures.delete(key);
  }
}
