/**
 * `otto cluster events [-n N] [--follow]`: reads the event log in .otto/, running or not (like `docker
 * events`). The whole log streams out a chunk at a time (the rotated file first); `-n` reads only the
 * tail; `--follow` reads only the bytes appended since, across rotations.
 */
import { once } from 'node:events';
import { join } from 'node:path';
import { EventLogCursor } from '../../control-plane/event-log-cursor.js';
import { UsageError } from '../../errors.js';
import type { ClusterEvent } from '../../http/schemas.js';
import { Workspace } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';

const FOLLOW_POLL_MS = 250;

function formatEvent(event: ClusterEvent): string {
  const subject = [event.node && `node=${event.node}`, event.service && `service=${event.service}`, event.replica !== undefined && `replica=${event.replica}`]
    .filter(Boolean)
    .join(' ');
  return `${event.time}  ${event.kind.padEnd(20)} ${subject ? `${subject}  ` : ''}${event.message}`;
}

export function parseTail(value: string): number {
  if (!/^\d+$/.test(value.trim())) {
    throw new UsageError(`-n/--tail: expected a non-negative number, got "${value}"`, 'for example `otto cluster events -n 20`');
  }
  return Number(value);
}

export async function events(options: GlobalOptions & { follow?: boolean; json?: boolean; tail?: string }): Promise<void> {
  const tail = options.tail === undefined ? undefined : parseTail(options.tail);
  const file = join(new Workspace(options.config).dir, 'events.jsonl');
  const format = options.json ? (event: ClusterEvent) => JSON.stringify(event) : formatEvent;
  const print = async (batch: ClusterEvent[]) => {
    if (!process.stdout.write(`${batch.map(format).join('\n')}\n`)) await once(process.stdout, 'drain');
  };

  let cursor: EventLogCursor;
  if (tail === undefined) {
    cursor = EventLogCursor.atStart(file);
  } else {
    const last = await EventLogCursor.afterLast(file, tail);
    if (last.events.length) await print(last.events);
    cursor = last.cursor;
  }
  await cursor.read(print);
  if (!options.follow) return cursor.close();

  process.once('SIGINT', () => process.exit(0));
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
    await cursor.read(print);
  }
}
