/**
 * GET /api/v1/stream: one subscription to the control plane's live events, fanned out to every connected
 * client as server-sent events. Every event is validated with its schema before it goes out; a client that
 * stops reading is dropped rather than buffered without end; nothing here can throw into the control plane.
 *
 * With thousands of nodes a status is megabytes: it is serialized once per rebuild of its lists (StatusJson),
 * sent at most at STATUS_BYTES_PER_SECOND on average, and a client that names the nodes it shows
 * (`?nodes=a,b`) gets the metrics and containers of those only (the others as a summary) and their
 * `node-metrics` events only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiHandlers } from './handlers.js';
import { clusterEventSchema, liveEventSchemas, type LiveEvent } from './schemas.js';
import { StatusJson } from './status-json.js';

export interface LiveStreamOptions {
  /** Comment lines that keep proxies and browsers from closing an idle stream. */
  heartbeatMs: number;
  /** A fresh `status` is sent this often while clients are connected, and shortly after every event/operation. */
  statusMs: number;
  /** What a browser waits before reconnecting (the SSE `retry:` field). */
  retryMs: number;
  warn: (message: string, details?: Record<string, unknown>) => void;
  /** Shared with the JSON routes, so a status is validated and serialized once for both. */
  statusJson?: StatusJson;
}

/** A client that has this much unsent data is too slow and is dropped. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const STATUS_AFTER_CHANGE_MS = 150;
/** Statuses go out no faster than this on average (a 3 MB status every 3 s rather than every 2). */
const STATUS_BYTES_PER_SECOND = 1024 * 1024;

export function sseFrame(type: string, data: unknown, id?: number): string {
  return `event: ${type}\n${id !== undefined ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}

interface Client {
  response: ServerResponse;
  /** The nodes whose details and metrics it wants; all when undefined. */
  nodes?: Set<string>;
}

export class LiveStream {
  private readonly clients = new Map<ServerResponse, Client>();
  private readonly statusJson: StatusJson;
  /** Size of the largest status last sent: the next waits long enough to keep to STATUS_BYTES_PER_SECOND. */
  private lastStatusBytes = 0;
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
  ) {
    this.statusJson = options.statusJson ?? new StatusJson();
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * Takes over a request's response for good; `lastEventId` replays the events a reconnecting client
   * missed; `nodes` limits node details and metrics to those nodes.
   */
  attach(request: IncomingMessage, response: ServerResponse, lastEventId?: number, nodes?: Set<string>): void {
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
    const client: Client = { response, nodes };
    const status = this.statusFrame(client);
    if (status) response.write(status);
    this.clients.set(response, client);
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
      // The control plane says the status changed: each client gets its own, at the stream's pace.
      if (event.type === 'status') return this.sendStatus(STATUS_AFTER_CHANGE_MS);
      // A fleet's nodes report thousands of times a second: nothing is done for metrics nobody shows.
      if (event.type === 'node-metrics' && !this.anyoneWants((event.data as { node_id?: unknown })?.node_id)) return;
      const schema = liveEventSchemas[event.type];
      if (!schema) return this.options.warn('unknown live event type; not sent', { type: (event as { type: unknown }).type });
      const parsed = schema.safeParse(event.data);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return this.options.warn('invalid live event; not sent', { type: event.type, issue: `${issue?.path.join('.')}: ${issue?.message}` });
      }
      const id = event.type === 'event' ? (parsed.data as { id: number }).id : undefined;
      const nodeId = event.type === 'node-metrics' ? (parsed.data as { node_id: string }).node_id : undefined;
      this.broadcast(sseFrame(event.type, parsed.data, id), nodeId);
      if (event.type === 'event' || event.type === 'operation') this.statusSoon();
    } catch (err) {
      this.options.warn('live event failed', { error: String(err) });
    }
  }

  private anyoneWants(nodeId: unknown): boolean {
    for (const client of this.clients.values()) if (!client.nodes || (typeof nodeId === 'string' && client.nodes.has(nodeId))) return true;
    return false;
  }

  close(): void {
    this.closed = true;
    this.stopTimers();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const client of this.clients.keys()) client.end();
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

  /** To every client, or (`nodeId`) to those that want that node's details. */
  private broadcast(frame: string | ((client: Client) => string | undefined), nodeId?: string): void {
    for (const client of [...this.clients.values()]) {
      if (nodeId !== undefined && client.nodes && !client.nodes.has(nodeId)) continue;
      if (!this.writable(client)) continue;
      const text = typeof frame === 'string' ? frame : frame(client);
      if (text) client.response.write(text);
    }
  }

  private writable({ response }: Client): boolean {
    if (response.writableLength <= MAX_BUFFERED_BYTES) return true;
    this.options.warn('SSE client too slow; dropped');
    response.destroy();
    this.drop(response);
    return false;
  }

  private statusSoon(): void {
    this.pendingStatus ??= setTimeout(() => {
      this.pendingStatus = undefined;
      this.sendStatus(STATUS_AFTER_CHANGE_MS);
    }, STATUS_AFTER_CHANGE_MS);
  }

  /** A fresh status, unless one went out very recently (or a big one, recently enough for its size). */
  private sendStatus(minAgeMs = this.options.statusMs / 2): void {
    const paced = Math.max(minAgeMs, (this.lastStatusBytes / STATUS_BYTES_PER_SECOND) * 1000);
    if (this.clients.size === 0 || Date.now() - this.lastStatusAt < paced) return;
    let largest = 0;
    this.broadcast((client) => {
      const frame = this.statusFrame(client);
      largest = Math.max(largest, frame?.length ?? 0);
      return frame;
    });
    this.lastStatusAt = Date.now();
    this.lastStatusBytes = largest;
  }

  private statusFrame(client: Client): string | undefined {
    const checked = this.safely(() => {
      const status = this.handlers.status();
      return client.nodes ? this.statusJson.status(status, client.nodes) : this.statusJson.status(status);
    }, undefined);
    if (!checked) return undefined;
    if (!checked.ok) {
      this.options.warn('status does not match its schema; not sent', { issue: checked.error.issues[0]?.message });
      return undefined;
    }
    return `event: status\ndata: ${checked.json}\n\n`;
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
