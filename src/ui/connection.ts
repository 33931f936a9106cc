/**
 * The dashboard's link to the control plane: the token (asked once, kept in localStorage), JSON calls with
 * the Authorization header, and the live event stream, which reconnects by itself after a control-plane
 * restart (the server sends `retry: 2000`; a stream the browser gave up on is reopened here).
 */
const TOKEN_KEY = 'otto.token';

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function storedToken(): string | undefined {
  // A link like http://host:7480/#token=... carries the token without sending it to the server.
  const fromHash = /(?:^#|&)token=([^&]+)/.exec(location.hash)?.[1];
  if (fromHash) {
    saveToken(decodeURIComponent(fromHash));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return localStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function saveToken(token: string): void {
  localStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken(): void {
  localStorage.removeItem(TOKEN_KEY);
}

export async function api<T>(token: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  } catch {
    throw new ApiFailure(0, 'control plane unreachable');
  }
  const answer = (await response.json().catch(() => undefined)) as { error?: string } | undefined;
  if (!response.ok) throw new ApiFailure(response.status, answer?.error ?? `${response.status} ${response.statusText}`);
  return answer as T;
}

export interface StreamCallbacks {
  onEvent(type: string, data: unknown): void;
  /** The stream is (again) open: `reconnected` after it had been lost. */
  onOpen(reconnected: boolean): void;
  onLost(): void;
  /** The server refused the token. */
  onUnauthorized(): void;
}

const EVENT_TYPES = ['status', 'node-metrics', 'event', 'operation'] as const;
/** The server sends a status at least every few seconds; this much silence means a dead stream. */
const SILENCE_MS = 20_000;
const REOPEN_MS = 2_000;
/** Paging quickly through a fleet reopens the stream once, for the page it stops at. */
const RETARGET_MS = 100;

export class LiveConnection {
  private source?: EventSource;
  private lost = false;
  private lastMessage = Date.now();
  private watchdog?: number;
  private reopenTimer?: number;
  private stopped = false;
  private retargetTimer?: number;

  /**
   * @param nodes the nodes whose metrics and containers the stream carries (the dashboard's page of a
   * fleet; the others come as a summary); all of them when undefined.
   */
  constructor(
    private readonly token: string,
    private readonly callbacks: StreamCallbacks,
    private nodes?: string[],
  ) {}

  /** The page shows other nodes: the stream is reopened for them (not a loss: nothing is reloaded). */
  setNodes(ids: string[]): void {
    if (this.nodes && this.nodes.join(',') === ids.join(',')) return;
    this.nodes = [...ids];
    if (!this.source || this.stopped) return;
    window.clearTimeout(this.retargetTimer);
    this.retargetTimer = window.setTimeout(() => {
      if (this.stopped) return;
      // After a loss too: the browser's own retries would ask for the old nodes.
      this.source?.close();
      this.open();
    }, RETARGET_MS);
  }

  start(): void {
    this.open();
    this.watchdog = window.setInterval(() => {
      if (Date.now() - this.lastMessage > SILENCE_MS) this.reopen();
    }, 5_000);
  }

  stop(): void {
    this.stopped = true;
    window.clearInterval(this.watchdog);
    window.clearTimeout(this.reopenTimer);
    window.clearTimeout(this.retargetTimer);
    this.source?.close();
  }

  private open(): void {
    if (this.stopped) return;
    this.lastMessage = Date.now();
    const nodes = this.nodes === undefined ? '' : `&nodes=${encodeURIComponent(this.nodes.join(','))}`;
    const source = new EventSource(`/api/v1/stream?access_token=${encodeURIComponent(this.token)}${nodes}`);
    this.source = source;
    source.onopen = () => {
      this.callbacks.onOpen(this.lost);
      this.lost = false;
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        this.lastMessage = Date.now();
        try {
          this.callbacks.onEvent(type, JSON.parse((message as MessageEvent<string>).data));
        } catch (err) {
          console.error(`otto: bad ${type} event`, err);
        }
      });
    }
    source.onerror = () => {
      if (!this.lost) this.callbacks.onLost();
      this.lost = true;
      // CONNECTING: the browser retries by itself. CLOSED: it gave up (an answer other than 200); find out why.
      if (source.readyState === EventSource.CLOSED) void this.afterClose();
    };
  }

  private async afterClose(): Promise<void> {
    try {
      await api(this.token, '/api/v1/status');
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) return this.callbacks.onUnauthorized();
    }
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    window.clearTimeout(this.reopenTimer);
    this.reopenTimer = window.setTimeout(() => this.reopen(), REOPEN_MS);
  }

  private reopen(): void {
    if (this.stopped) return;
    this.source?.close();
    this.lost = true;
    this.open();
  }
}
