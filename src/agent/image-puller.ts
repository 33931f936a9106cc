/**
 * Image pulls in the background, one per image, so a pull that takes ten minutes (a big image over a slow
 * link) never holds up healing, heartbeats or the replicas whose image is here. A failed pull is retried
 * with exponential backoff; a pull that stops moving is given up and retried the same way.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { DockerRuntime, PullProgress } from '../runtime/docker.js';
import { Backoff } from './backoff.js';
import type { PullCredential } from './registry-auth.js';

export type PullStatus =
  | { state: 'pulling'; progress: PullProgress; since: number }
  | { state: 'failed'; error: string; retryAt: number };

export interface ImagePullerOptions {
  /** A pull with no progress for this long is given up (and retried with backoff). */
  stallMs: number;
  log: Logger;
  /** A pull started, moved, ended or failed: the node state is worth publishing again. */
  onChange: (image: string, done: boolean) => void;
  /** The credential for the image's registry (registry-auth.ts); none: an anonymous pull. */
  authFor?: (image: string) => Promise<PullCredential>;
}

export class ImagePuller {
  private readonly pulling = new Map<string, { progress: PullProgress; since: number; abort: AbortController }>();
  private readonly backoff = new Backoff(2_000, 300_000);

  constructor(
    private readonly runtime: DockerRuntime,
    private readonly options: ImagePullerOptions,
  ) {}

  status(image: string): PullStatus | undefined {
    const pull = this.pulling.get(image);
    if (pull) return { state: 'pulling', progress: pull.progress, since: pull.since };
    const failure = this.backoff.get(image);
    return failure && { state: 'failed', error: failure.error, retryAt: failure.retryAt };
  }

  /** Starts pulling `image` unless a pull of it runs or its backoff has not expired. */
  ensure(image: string): void {
    if (this.pulling.has(image) || !this.backoff.canTry(image)) return;
    const abort = new AbortController();
    const pull = { progress: { bytesDone: 0, bytesTotal: 0 } as PullProgress, since: Date.now(), abort };
    this.pulling.set(image, pull);
    this.options.log.info({ image }, 'pulling image in the background');
    this.options.onChange(image, false);
    void (async () => {
      const credential = (await this.options.authFor?.(image)) ?? {};
      if ('waiting' in credential) throw new Error(credential.waiting);
      await this.runtime.pull(
        image,
        (progress) => {
          pull.progress = progress;
          this.options.onChange(image, false);
        },
        { stallMs: this.options.stallMs, signal: abort.signal, auth: credential.auth },
      );
    })()
      .then(
        () => {
          this.backoff.succeeded(image);
          this.options.log.info({ image, seconds: Math.round((Date.now() - pull.since) / 100) / 10 }, 'image pulled');
        },
        (err) => {
          if (abort.signal.aborted) return;
          const failure = this.backoff.failed(image, errorMessage(err));
          this.options.log.error({ image, err: failure.error, retryInS: Math.round((failure.retryAt - Date.now()) / 1000) }, 'pull failed; retrying with backoff');
        },
      )
      .finally(() => {
        this.pulling.delete(image);
        if (!abort.signal.aborted) this.options.onChange(image, true);
      });
  }

  /** A pull that no replica needs any more goes on (it costs little to finish) unless the agent stops. */
  stopAll(): void {
    for (const pull of this.pulling.values()) pull.abort.abort();
  }

  /** Images whose failed pull may succeed now (a new credential for their registry) are tried at once. */
  retryNow(matches: (image: string) => boolean): void {
    this.backoff.prune((image) => !matches(image));
  }

  /** Forgets the failures of images no replica uses any more. */
  prune(inUse: ReadonlySet<string>): void {
    this.backoff.prune((image) => inUse.has(image));
  }
}
