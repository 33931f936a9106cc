/**
 * One logs request being served: reads the container's log stream from Docker and publishes it as
 * bounded chunks, with backpressure. At most MAX_IN_FLIGHT chunks are published and not yet acknowledged
 * by the broker, and, when the requester asks for flow control, at most `request.window` chunks beyond
 * those it confirmed; meanwhile the Docker stream is paused, so memory stays flat whatever the log size.
 */
import type { LogsRequest } from '../protocol/messages.js';
import { ChunkBuilder, DockerFrameDecoder, LineSplitter, encodeChunk, type LogStreamName } from './log-chunking.js';

/** Chunks published and not yet acknowledged (QoS 1): 4 x 64 KB. */
export const MAX_IN_FLIGHT = 4;
/** Lines that trickle in (a follow) are batched for this long before they are sent. */
const FLUSH_MS = 200;
/** A requester can ask for a larger window, not an unbounded one. */
const MAX_WINDOW = 256;

/** Publishes one message (QoS 1); `done` runs when the broker acknowledged it, or with why it failed. */
export type ChunkPublisher = (payload: string, done: (err?: Error) => void) => void;

interface OutgoingChunk {
  lines: string[];
  end?: boolean;
  error?: string;
}

export class LogSession {
  lastKeepalive = Date.now();
  private source?: NodeJS.ReadableStream & { destroy(): void };
  private readonly chunks = new ChunkBuilder();
  private readonly splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
  /** Built chunks waiting for a free slot; holds at most what one read of the Docker stream made. */
  private readonly outbox: OutgoingChunk[] = [];
  private seq = 0;
  private inFlight = 0;
  private received = 0;
  private readonly window?: number;
  private flushTimer?: NodeJS.Timeout;
  private paused = false;
  /** The end chunk is queued: nothing more is read. */
  private ending = false;
  private closed = false;

  constructor(
    private readonly request: LogsRequest,
    private readonly publish: ChunkPublisher,
    /** Runs once when the session is over, however it ended. */
    private readonly onClosed: (reason?: string) => void,
  ) {
    this.window = request.window === undefined ? undefined : Math.min(request.window, MAX_WINDOW);
  }

  /** Streams `source`, Docker's logs response: raw bytes with a TTY, multiplexed frames without. */
  start(source: NodeJS.ReadableStream & { destroy(): void }, tty: boolean): void {
    if (this.closed) return void source.destroy();
    this.source = source;
    const decoder = new DockerFrameDecoder();
    const toLines = (stream: LogStreamName, payload: Buffer) => this.splitters[stream].push(payload, (text) => this.addLine(stream, text));
    source.on('data', (data: Buffer) => {
      if (tty) toLines('stdout', data);
      else decoder.push(data, toLines);
      this.pump();
      if (this.outbox.length > 0 && !this.paused) {
        this.paused = true;
        source.pause();
      }
      if (this.chunks.lineCount > 0) this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
    });
    source.on('end', () => this.finish());
    source.on('error', (err: Error) => this.finish(`reading the log failed: ${err.message}`));
    source.on('close', () => this.finish('Docker closed the log stream'));
  }

  /** Ends the request with an error before or instead of its lines. */
  fail(error: string): void {
    this.finish(error);
  }

  /** The requester's keepalive: it is still there and has printed `received` chunks. */
  keepalive(received?: number): void {
    this.lastKeepalive = Date.now();
    if (received !== undefined && received > this.received) {
      this.received = received;
      this.pump();
    }
  }

  /** The requester is gone or cancelled: stop reading, send nothing more. */
  stop(reason: string): void {
    this.close(reason);
  }

  private addLine(stream: LogStreamName, text: string): void {
    const full = this.chunks.add({ stream, text });
    if (full) this.outbox.push({ lines: full });
  }

  private flush(): void {
    this.flushTimer = undefined;
    if (this.closed || this.chunks.lineCount === 0) return;
    this.outbox.push({ lines: this.chunks.take() });
    this.pump();
  }

  /** Queues the last lines and the end chunk (`error` says why it ended early). */
  private finish(error?: string): void {
    if (this.ending || this.closed) return;
    this.ending = true;
    clearTimeout(this.flushTimer);
    for (const stream of ['stdout', 'stderr'] as const) this.splitters[stream].end((text) => this.addLine(stream, text));
    this.outbox.push({ lines: this.chunks.take(), end: true, error });
    this.pump();
  }

  private canSend(): boolean {
    return this.inFlight < MAX_IN_FLIGHT && (this.window === undefined || this.seq - this.received < this.window);
  }

  private pump(): void {
    while (!this.closed && this.outbox.length > 0 && this.canSend()) {
      const chunk = this.outbox.shift()!;
      this.inFlight++;
      this.publish(encodeChunk(this.request.request_id, this.seq++, chunk.lines, chunk), (err) => {
        this.inFlight--;
        if (err) this.close(`publishing failed: ${err.message}`);
        else this.pump();
      });
      if (chunk.end) this.close();
    }
    if (!this.closed && this.paused && this.outbox.length === 0) {
      this.paused = false;
      this.source?.resume();
    }
  }

  private close(reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.flushTimer);
    this.outbox.length = 0;
    this.source?.destroy();
    this.onClosed(reason);
  }
}
