/** `otto cluster events [--follow]`: reads the event log in .otto/, running or not (like `docker events`). */
import { stat } from 'node:fs/promises';
import { readEvents } from '../../control-plane/ledger.js';
import type { ClusterEvent } from '../../http/schemas.js';
import { Workspace } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';
import { join } from 'node:path';

function formatEvent(event: ClusterEvent): string {
  const subject = [event.node && `node=${event.node}`, event.service && `service=${event.service}`, event.replica !== undefined && `replica=${event.replica}`]
    .filter(Boolean)
    .join(' ');
  return `${event.time}  ${event.kind.padEnd(20)} ${subject ? `${subject}  ` : ''}${event.message}`;
}

export async function events(options: GlobalOptions & { follow?: boolean; json?: boolean; tail?: string }): Promise<void> {
  const file = join(new Workspace(options.config).dir, 'events.jsonl');
  const print = (event: ClusterEvent) => process.stdout.write(`${options.json ? JSON.stringify(event) : formatEvent(event)}\n`);
  const all = await readEvents(file);
  const tail = options.tail === undefined ? all.length : Number(options.tail);
  for (const event of all.slice(Math.max(0, all.length - tail))) print(event);
  if (!options.follow) return;
  let lastId = all.at(-1)?.id ?? 0;
  let lastSize = -1;
  process.once('SIGINT', () => process.exit(0));
  for (;;) {
    const size = await stat(file).then((s) => s.size, () => 0);
    if (size !== lastSize) {
      lastSize = size;
      for (const event of await readEvents(file)) {
        if (event.id > lastId) {
          print(event);
          lastId = event.id;
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
