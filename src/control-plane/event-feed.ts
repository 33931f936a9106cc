/**
 * Cluster events and live updates: every event goes to the ledger's event log (in order) and to the live
 * listeners (SSE); the newest are kept for the API. Status snapshots for live listeners go out at most once
 * a second.
 */
import { EventEmitter } from 'node:events';
import type { ClusterEvent, ClusterStatus, LiveEvent } from '../http/schemas.js';
import type { Logger } from '../log.js';
import type { Ledger } from './ledger.js';

const RECENT_EVENTS = 1_000;

export class EventFeed {
  private readonly live = new EventEmitter();
  private recent: ClusterEvent[] = [];
  private statusTimer?: NodeJS.Timeout;

  constructor(
    private readonly ledger: Ledger,
    private readonly log: Logger,
    private readonly status: () => ClusterStatus,
  ) {
    this.live.setMaxListeners(0);
  }

  async load(): Promise<void> {
    this.recent = await this.ledger.lastEvents(RECENT_EVENTS);
  }

  /** Records an event; never rejects (the ledger reports a failed append itself). */
  async event(event: Omit<ClusterEvent, 'id' | 'time'>): Promise<ClusterEvent> {
    const full = await this.ledger.appendEvent(event);
    this.recent.push(full);
    if (this.recent.length > RECENT_EVENTS) this.recent.shift();
    this.log.info({ kind: full.kind, node: full.node, service: full.service }, full.message);
    this.emit({ type: 'event', data: full });
    return full;
  }

  events(afterId = 0): ClusterEvent[] {
    return this.recent.filter((e) => e.id > afterId);
  }

  emit(event: LiveEvent): void {
    this.live.emit('live', event);
  }

  subscribe(listener: (event: LiveEvent) => void): () => void {
    this.live.on('live', listener);
    this.statusChanged();
    return () => this.live.off('live', listener);
  }

  /** A status snapshot for live listeners, at most one per second. */
  statusChanged(): void {
    if (this.statusTimer || this.live.listenerCount('live') === 0) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      this.emit({ type: 'status', data: this.status() });
    }, 1_000);
  }

  close(): void {
    clearTimeout(this.statusTimer);
  }
}
