/**
 * The local state ledger under `.otto/` (FleetCTL's state store, for services): scale overrides, restart
 * generations, operations, replicas, and the event log. Crash-safe: `ledger.json` is replaced atomically
 * (write, fsync, rename), and `events.jsonl` is append-only, so a torn last line is the only damage a
 * kill -9 can do and readers skip it. A failed write (full disk) fails only the saves it answers: the next
 * one tries again. The event log is rotated past a size (see event-log-writer.ts).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeAtomic } from '../workspace.js';
import { operationSchema, type ClusterEvent, type Operation } from '../http/schemas.js';
import { containerSpecSchema } from '../protocol/messages.js';
import { maxEventId, readLastEvents } from './event-log.js';
import { EventLogWriter } from './event-log-writer.js';

const MAX_OPERATIONS = 500;
const MAX_REPLICA_RECORDS = 2_000;

export const replicaRecordSchema = z.object({
  service: z.string(),
  replica: z.number().int(),
  node: z.string(),
  container_id: z.string(),
  created: z.string(),
  removed: z.string().optional(),
});
export type ReplicaRecord = z.infer<typeof replicaRecordSchema>;

/** One spec a service ran or runs; kept so an update can roll back to the previous one. */
export const specRevisionSchema = z.object({ id: z.number().int(), spec: containerSpecSchema, hash: z.string(), created: z.string() });
export type SpecRevision = z.infer<typeof specRevisionSchema>;

export const serviceSpecsSchema = z.object({
  revisions: z.array(specRevisionSchema),
  /** The revision new replicas get, and the one an update moves every replica to. */
  current: z.number().int(),
  /** The revision current replaced: what `otto service rollback` returns to. */
  previous: z.number().int().optional(),
  /** Replicas (by index) still on another revision than `current`: an update under way, paused or interrupted. */
  replicas: z.record(z.string(), z.number().int()),
  /** The config's spec `config_hash` is not rolled out again (paused or rolled back) until otto.yaml changes it. */
  hold: z.object({ config_hash: z.string(), state: z.enum(['paused', 'rolled-back']), message: z.string() }).optional(),
});
export type ServiceSpecs = z.infer<typeof serviceSpecsSchema>;

const ledgerSchema = z.object({
  version: z.literal(1),
  /** A scale holds while the config still says `config_replicas` for the service. */
  scales: z.record(z.string(), z.object({ replicas: z.number().int(), config_replicas: z.number().int() })),
  /** Per service, per replica index: bumped by a restart so the spec hash changes and the agent replaces it. */
  generations: z.record(z.string(), z.record(z.string(), z.number().int())),
  operations: z.array(operationSchema),
  replicas: z.array(replicaRecordSchema),
  next_event_id: z.number().int(),
  /** Which node each replica (`service#index`) is assigned to: placement is stable across restarts. */
  assignments: z.record(z.string(), z.string()).default({}),
  /** Spec revisions per service (updates, rollbacks). */
  specs: z.record(z.string(), serviceSpecsSchema).default({}),
  /** The last desired-state revision published to each node: revisions only grow, also across restarts. */
  desired_revisions: z.record(z.string(), z.number().int()).default({}),
  /** Replicas moved off a lost node, until that node hands its copy over (handover.ts). */
  moves: z.array(z.object({ key: z.string(), from: z.string(), to: z.string(), at: z.string() })).default([]),
  /**
   * Migrations under way (start-first across nodes): the replica is assigned to `to` and its copy on `from`
   * is held, serving, until the one on `to` is ready (migration-runner.ts).
   */
  migrations: z.array(z.object({ key: z.string(), from: z.string(), to: z.string(), at: z.string(), operation: z.string() })).default([]),
  /** The last move (or NFR restart) of each replica: the migration cooldown counts from it. */
  last_moves: z.record(z.string(), z.object({ at: z.string(), failed_to: z.string().optional() })).default({}),
});
export type LedgerData = z.infer<typeof ledgerSchema>;

const empty = (): LedgerData => ({
  version: 1,
  scales: {},
  generations: {},
  operations: [],
  replicas: [],
  next_event_id: 1,
  assignments: {},
  specs: {},
  desired_revisions: {},
  moves: [],
  migrations: [],
  last_moves: {},
});

export interface LedgerOptions {
  /**
   * Told of every failure no caller awaits: a `saveSoon()` write, an event line that could not be appended.
   * The ledger goes on and the next write tries again (a full disk must not stop the control plane).
   */
  onError?: (err: Error) => void;
  /** `events.jsonl` is rotated to `events.jsonl.1` before an append would take it past this size. */
  maxEventLogBytes?: number;
}

export const DEFAULT_MAX_EVENT_LOG_BYTES = 8 * 1024 * 1024;

/** One write of ledger.json and the saves it answers. */
interface LedgerWrite {
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
  /** A `saveSoon()` is among its saves: nobody awaits it, so a failure goes to onError. */
  unawaited: boolean;
}

export class Ledger {
  data: LedgerData = empty();
  private readonly file: string;
  readonly eventsFile: string;
  /** Counters for the metrics: writes of ledger.json, and the failed ones of it and of the event log. */
  readonly stats = { ledgerWrites: 0, failedLedgerWrites: 0, failedEventWrites: 0 };
  private readonly onError: (err: Error) => void;
  private readonly events: EventLogWriter;
  private writing: LedgerWrite | undefined;
  private nextWrite: LedgerWrite | undefined;

  constructor(dir: string, options: LedgerOptions = {}) {
    this.file = join(dir, 'ledger.json');
    this.eventsFile = join(dir, 'events.jsonl');
    this.onError = options.onError ?? (() => undefined);
    this.events = new EventLogWriter(this.eventsFile, options.maxEventLogBytes ?? DEFAULT_MAX_EVENT_LOG_BYTES, (err) => {
      this.stats.failedEventWrites++;
      this.onError(err);
    });
  }

  async load(): Promise<void> {
    await mkdir(join(this.file, '..'), { recursive: true });
    try {
      const parsed = ledgerSchema.safeParse(JSON.parse(await readFile(this.file, 'utf8')));
      this.data = parsed.success ? parsed.data : empty();
    } catch {
      this.data = empty();
    }
    // The event ids must keep growing even if ledger.json is older than the last appended events.
    this.data.next_event_id = Math.max(this.data.next_event_id, (await maxEventId(this.eventsFile)) + 1);
  }

  /**
   * Persists the current data; rejects if the write fails. Writes go one at a time, so the file always
   * holds a whole snapshot; the saves asked for while one is under way share the next write, of the data
   * as it is when that write starts.
   */
  save(): Promise<void> {
    return this.requestWrite(false);
  }

  /** `save()` for callers that do not wait: never rejects, a failure goes to `onError`. */
  saveSoon(): void {
    this.requestWrite(true).catch(() => undefined);
  }

  /** Resolves when every save and event asked for so far is written (or failed). */
  async idle(): Promise<void> {
    while (this.writing) await this.writing.done.catch(() => undefined);
    await this.events.idle();
  }

  /**
   * Appends the event to `events.jsonl` with the next id; resolves once its line is on disk, in id order
   * with the others. A failed append does not reject (it goes to `onError`): the event is still returned.
   */
  async appendEvent(event: Omit<ClusterEvent, 'id' | 'time'>): Promise<ClusterEvent> {
    const full: ClusterEvent = { id: this.data.next_event_id++, time: new Date().toISOString(), ...event };
    await this.events.append(`${JSON.stringify(full)}\n`);
    return full;
  }

  /** The last `count` events of the log, oldest first, read from the end of the file(s). */
  lastEvents(count: number): Promise<ClusterEvent[]> {
    return readLastEvents(this.eventsFile, count);
  }

  private requestWrite(unawaited: boolean): Promise<void> {
    let write: LedgerWrite;
    if (!this.writing) {
      write = newWrite();
      this.start(write);
    } else {
      write = this.nextWrite ??= newWrite();
    }
    write.unawaited ||= unawaited;
    return write.done;
  }

  private start(write: LedgerWrite): void {
    this.writing = write;
    this.trim();
    this.stats.ledgerWrites++;
    writeAtomic(this.file, JSON.stringify(this.data), 0o600)
      .then(write.resolve, (err: unknown) => {
        this.stats.failedLedgerWrites++;
        if (write.unawaited) this.report(err);
        write.reject(err);
      })
      .finally(() => {
        this.writing = undefined;
        const next = this.nextWrite;
        this.nextWrite = undefined;
        if (next) this.start(next);
      });
  }

  private trim(): void {
    // A cooldown is at most 24 h (a duration's bound): older moves no longer matter.
    const dayAgo = Date.now() - 24 * 3_600_000;
    for (const [key, move] of Object.entries(this.data.last_moves)) if (Date.parse(move.at) < dayAgo) delete this.data.last_moves[key];
    this.data.operations = this.data.operations.slice(-MAX_OPERATIONS);
    const live = this.data.replicas.filter((r) => !r.removed);
    const removed = this.data.replicas.filter((r) => r.removed);
    this.data.replicas = [...removed.slice(-(MAX_REPLICA_RECORDS - live.length)), ...live];
  }

  private report(err: unknown): void {
    try {
      this.onError(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // a failing error handler must not break the saves
    }
  }
}

function newWrite(): LedgerWrite {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { done, resolve, reject, unawaited: false };
}

// Readers of the log, here too for the callers that read it through the ledger.
export { readEvents, readLastEvents } from './event-log.js';

export type { Operation };
