/**
 * The local state ledger under `.otto/` (FleetCTL's state store, for services): scale overrides, restart
 * generations, operations, replicas, and the event log. Crash-safe: `ledger.json` is replaced atomically
 * (write, fsync, rename), and `events.jsonl` is append-only, so a torn last line is the only damage a
 * kill -9 can do and readers skip it.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeAtomic } from '../workspace.js';
import { clusterEventSchema, operationSchema, type ClusterEvent, type Operation } from '../http/schemas.js';

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

const ledgerSchema = z.object({
  version: z.literal(1),
  /** A scale holds while the config still says `config_replicas` for the service. */
  scales: z.record(z.string(), z.object({ replicas: z.number().int(), config_replicas: z.number().int() })),
  /** Per service, per replica index: bumped by a restart so the spec hash changes and the agent replaces it. */
  generations: z.record(z.string(), z.record(z.string(), z.number().int())),
  operations: z.array(operationSchema),
  replicas: z.array(replicaRecordSchema),
  next_event_id: z.number().int(),
});
export type LedgerData = z.infer<typeof ledgerSchema>;

const empty = (): LedgerData => ({ version: 1, scales: {}, generations: {}, operations: [], replicas: [], next_event_id: 1 });

export class Ledger {
  data: LedgerData = empty();
  private readonly file: string;
  readonly eventsFile: string;
  private writing: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    this.file = join(dir, 'ledger.json');
    this.eventsFile = join(dir, 'events.jsonl');
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
    const events = await readEvents(this.eventsFile);
    const lastId = events.at(-1)?.id ?? 0;
    this.data.next_event_id = Math.max(this.data.next_event_id, lastId + 1);
  }

  /** Persists the current data; writes are serialized so the file always holds a whole snapshot. */
  save(): Promise<void> {
    this.data.operations = this.data.operations.slice(-MAX_OPERATIONS);
    const live = this.data.replicas.filter((r) => !r.removed);
    const removed = this.data.replicas.filter((r) => r.removed);
    this.data.replicas = [...removed.slice(-(MAX_REPLICA_RECORDS - live.length)), ...live];
    const snapshot = JSON.stringify(this.data);
    this.writing = this.writing.then(() => writeAtomic(this.file, snapshot));
    return this.writing;
  }

  async appendEvent(event: Omit<ClusterEvent, 'id' | 'time'>): Promise<ClusterEvent> {
    const full: ClusterEvent = { id: this.data.next_event_id++, time: new Date().toISOString(), ...event };
    await appendFile(this.eventsFile, `${JSON.stringify(full)}\n`);
    return full;
  }
}

/** Every whole, valid event of the log; a line torn by a crash is skipped. */
export async function readEvents(file: string): Promise<ClusterEvent[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  const events: ClusterEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const parsed = clusterEventSchema.safeParse(JSON.parse(line));
      if (parsed.success) events.push(parsed.data);
    } catch {
      // torn line
    }
  }
  return events;
}

export type { Operation };
