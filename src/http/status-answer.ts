/**
 * The answer of GET /api/v1/status, made off the request path when it is costly. Making a fleet's status
 * (thousands of node views, validated and serialized) takes hundreds of milliseconds; made inside the
 * request it is that request's latency, and every request waits behind it. So once making it took
 * SLOW_MS or more, a request is answered with the last one made (at most MAX_AGE_MS old, else it is made
 * again first), and the next one is made once that answer went out, if the last is REFRESH_MS old (so
 * clients asking often cost one build a second, and rarely find one under way). A small cluster's status
 * costs a millisecond or two: it is made for every request, as fresh as can be.
 */
import type { Bytes } from './status-json.js';

/** Making the status takes at least this long: answer with the last one, make the next one afterwards. */
export const SLOW_MS = 50;
/** A status older than this is not given out: it is made again first (a client that asks rarely). */
export const MAX_AGE_MS = 5_000;
/** A slow status is made again after an answer once the last one is this old. */
export const REFRESH_MS = 1_000;

export class StatusAnswer {
  private last?: { bytes: Bytes; at: number };
  private wanted = false;

  constructor(
    private readonly make: () => Bytes,
    private readonly slowMs = SLOW_MS,
    private readonly maxAgeMs = MAX_AGE_MS,
    private readonly refreshMs = REFRESH_MS,
  ) {}

  /** The answer for a request now. */
  get(now = performance.now()): Bytes {
    if (this.last && now - this.last.at < this.maxAgeMs) {
      this.wanted = true;
      return this.last.bytes;
    }
    return this.refresh();
  }

  /** Call once an answer went out: a newer status is made if the last request was given an older one. */
  sent(now = performance.now()): void {
    if (!this.wanted || (this.last && now - this.last.at < this.refreshMs)) return;
    this.wanted = false;
    this.refresh();
  }

  private refresh(): Bytes {
    const started = performance.now();
    const bytes = this.make();
    const at = performance.now();
    // Kept only when slow to make (and valid): a quick one is made for every request.
    this.last = bytes.ok && at - started >= this.slowMs ? { bytes, at } : undefined;
    return bytes;
  }
}
