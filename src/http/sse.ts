/**
 * GET /api/v1/stream: one subscription to the control plane's live events, fanned out to every connected
 * client as server-sent events. Every event is validated with its schema before it goes out; a client that
 * stops reading is dropped rather than buffered without end; nothing here can throw into the control plane.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiHandlers } from './handlers.js';
import { clusterEventSchema, liveEventSchemas, type LiveEvent } from './schemas.js';

export interface LiveStreamOptions {
  /** Comment lines that keep proxies and browsers from closing an idle stream. */
  heartbeatMs: number;
  /** A fresh `status` is sent this often while clients are connected, and shortly after every event/operation. */
  statusMs: number;
  /** What a browser waits before reconnecting (the SSE `retry:` field). */
  retryMs: number;
  warn: (message: string, details?: Record<string, unknown>) => void;
}

/** A client that has this much unsent data is too slow and is dropped. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const STATUS_AFTER_CHANGE_MS = 150;

export function sseFrame(type: string, data: unknown, id?: number): string {
  return `event: ${type}\n${id !== undefined ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}

export class LiveStream {
  private readonly clients = new Set<ServerResponse>();
  private unsubscribe?: () => void;
  private heartbeatTimer?: NodeJS.Timeout;
  private statusTimer?: NodeJS.Timeout;
  private pendingStatus?: NodeJS.Timeout;
  private closed = false;
  /** When the last `status` went to every client (from the control plane or from here). */
  private lastStatusAt = 0;

  constructor(
    private readonly handlers: ApiHandlers,
    private readonly options: LiveStreamOptions,
  ) {}

  get clientCount(): number {
    return this.clients.size;
  }

  /** Takes over a request's response for good; `lastEventId` replays the events a reconnecting client missed. */
  attach(request: IncomingMessage, response: ServerResponse, lastEventId?: number): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    response.write(`retry: ${this.options.retryMs}\n\n`);
    if (lastEventId !== undefined) {
      for (const event of this.safely(() => this.handlers.events(lastEventId), [])) {
        const parsed = clusterEventSchema.safeParse(event);
        if (parsed.success) response.write(sseFrame('event', parsed.data, parsed.data.id));
      }
    }
    const status = this.statusFrame();
    if (status) response.write(status);
    this.clients.add(response);
    // The response closes when the client leaves (or the server ends it): that is when to let go.
    const drop = () => this.drop(response);
    response.on('close', drop);
    response.on('error', drop);
    request.socket.setNoDelay(true);
    this.ensureRunning();
  }

  /** Sends one live event from the control plane to every client. Never throws. */
  publish(event: LiveEvent): void {
    try {
      const schema = liveEventSchemas[event.type];
      if (!schema) return this.options.warn('unknown live event type; not sent', { type: (event as { type: unknown }).type });
      const parsed = schema.safeParse(event.data);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return this.options.warn('invalid live event; not sent', { type: event.type, issue: `${issue?.path.join('.')}: ${issue?.message}` });
      }
      const id = event.type === 'event' ? (parsed.data as { id: number }).id : undefined;
      this.broadcast(sseFrame(event.type, parsed.data, id));
      if (event.type === 'status') this.lastStatusAt = Date.now();
      if (event.type === 'event' || event.type === 'operation') this.statusSoon();
    } catch (err) {
      this.options.warn('live event failed', { error: String(err) });
    }
  }

  close(): void {
    this.closed = true;
    this.stopTimers();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const client of this.clients) client.end();
    this.clients.clear();
  }

  private ensureRunning(): void {
    if (this.closed) return;
    if (!this.unsubscribe) {
      this.unsubscribe = this.safely(() => this.handlers.subscribe((event) => this.publish(event)), undefined);
    }
    this.heartbeatTimer ??= setInterval(() => this.broadcast(`: keep-alive ${new Date().toISOString()}\n\n`), this.options.heartbeatMs);
    this.statusTimer ??= setInterval(() => this.sendStatus(), this.options.statusMs);
  }

  private drop(client: ServerResponse): void {
    if (!this.clients.delete(client)) return;
    if (!client.writableEnded) client.end();
    if (this.clients.size === 0) {
      // Nobody listens: stop the timers and let go of the control plane's listener.
      this.stopTimers();
      this.unsubscribe?.();
      this.unsubscribe = undefined;
    }
  }

  private stopTimers(): void {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.statusTimer);
    clearTimeout(this.pendingStatus);
    this.heartbeatTimer = this.statusTimer = this.pendingStatus = undefined;
  }

  private broadcast(frame: string): void {
    for (const client of this.clients) {
      if (client.writableLength > MAX_BUFFERED_BYTES) {
        this.options.warn('SSE client too slow; dropped');
        client.destroy();
        this.drop(client);
        continue;
      }
      client.write(frame);
    }
  }

  private statusSoon(): void {
    this.pendingStatus ??= setTimeout(() => {
      this.pendingStatus = undefined;
      this.sendStatus(STATUS_AFTER_CHANGE_MS);
    }, STATUS_AFTER_CHANGE_MS);
  }

  /** A fresh status, unless the control plane sent one very recently. */
  private sendStatus(minAgeMs = this.options.statusMs / 2): void {
    if (this.clients.size === 0 || Date.now() - this.lastStatusAt < minAgeMs) return;
    const frame = this.statusFrame();
    if (!frame) return;
    this.broadcast(frame);
    this.lastStatusAt = Date.now();
  }

  private statusFrame(): string | undefined {
    const status = this.safely(() => liveEventSchemas.status.safeParse(this.handlers.status()), undefined);
    if (!status) return undefined;
    if (!status.success) {
      this.options.warn('status does not match its schema; not sent', { issue: status.error.issues[0]?.message });
      return undefined;
    }
    return sseFrame('status', status.data);
  }

  private safely<T>(fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (err) {
      this.options.warn('control plane handler failed', { error: String(err) });
      return fallback;
    }
  }
}
