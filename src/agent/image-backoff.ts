/**
 * Remembers failed image pulls so a missing image is retried with exponential backoff instead of on
 * every reconcile, and so its error can be reported in the node state.
 */
export class ImageBackoff {
  private readonly failures = new Map<string, { count: number; retryAt: number; error: string }>();

  constructor(
    private readonly baseMs = 2_000,
    private readonly maxMs = 300_000,
  ) {}

  canTry(image: string, now = Date.now()): boolean {
    const failure = this.failures.get(image);
    return !failure || now >= failure.retryAt;
  }

  failed(image: string, error: string, now = Date.now()): void {
    const count = (this.failures.get(image)?.count ?? 0) + 1;
    const delay = Math.min(this.maxMs, this.baseMs * 2 ** (count - 1));
    this.failures.set(image, { count, retryAt: now + delay, error });
  }

  succeeded(image: string): void {
    this.failures.delete(image);
  }

  error(image: string): string | undefined {
    return this.failures.get(image)?.error;
  }
}
