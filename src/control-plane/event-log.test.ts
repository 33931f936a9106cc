import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventLogCursor } from './event-log-cursor.js';
import { maxEventId } from './event-log.js';

const line = (id: number) => `${JSON.stringify({ id, time: '2026-01-01T00:00:00.000Z', kind: 'node-online', node: 'pi', message: `event ${id}` })}\n`;
const lines = (...ids: number[]) => ids.map(line).join('');

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'otto-event-log-'));
  file = join(dir, 'events.jsonl');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function readIds(cursor: EventLogCursor): Promise<number[]> {
  const ids: number[] = [];
  await cursor.read((batch) => void ids.push(...batch.map((e) => e.id)));
  return ids;
}

describe('EventLogCursor', () => {
  it('reads the rotated file then the current one, then only what is appended', async () => {
    writeFileSync(`${file}.1`, lines(1, 2));
    writeFileSync(file, lines(3));
    const cursor = EventLogCursor.atStart(file);
    expect(await readIds(cursor)).toEqual([1, 2, 3]);
    expect(await readIds(cursor)).toEqual([]);
    appendFileSync(file, lines(4, 5));
    expect(await readIds(cursor)).toEqual([4, 5]);
    await cursor.close();
  });

  it('waits for a log that does not exist yet', async () => {
    const cursor = EventLogCursor.atStart(file);
    expect(await readIds(cursor)).toEqual([]);
    writeFileSync(file, lines(1));
    expect(await readIds(cursor)).toEqual([1]);
    await cursor.close();
  });

  it('prints a line only once it is whole', async () => {
    writeFileSync(file, lines(1) + line(2).slice(0, 20));
    const cursor = EventLogCursor.atStart(file);
    expect(await readIds(cursor)).toEqual([1]);
    appendFileSync(file, line(2).slice(20) + lines(3));
    expect(await readIds(cursor)).toEqual([2, 3]);
    await cursor.close();
  });

  it('finishes the old file after a rotation and goes on with the new one from its start', async () => {
    writeFileSync(file, lines(1));
    const cursor = EventLogCursor.atStart(file);
    expect(await readIds(cursor)).toEqual([1]);
    appendFileSync(file, lines(2)); // written just before the rotation, not read yet
    renameSync(file, `${file}.1`);
    expect(await readIds(cursor)).toEqual([2]); // no new file yet
    writeFileSync(file, lines(3, 4));
    expect(await readIds(cursor)).toEqual([3, 4]);
    await cursor.close();
  });

  it('reads the file in between when two rotations came between two reads', async () => {
    writeFileSync(file, lines(1));
    const cursor = EventLogCursor.atStart(file);
    expect(await readIds(cursor)).toEqual([1]);
    appendFileSync(file, lines(2));
    renameSync(file, `${file}.1`);
    writeFileSync(file, lines(3));
    renameSync(file, `${file}.1`);
    writeFileSync(file, lines(4));
    expect(await readIds(cursor)).toEqual([2, 3, 4]);
    await cursor.close();
  });

  it('drops a torn line at the end of a rotated file', async () => {
    writeFileSync(file, lines(1) + line(2).slice(0, 20));
    const cursor = EventLogCursor.atStart(file);
    expect(await readIds(cursor)).toEqual([1]);
    renameSync(file, `${file}.1`);
    writeFileSync(file, lines(3));
    expect(await readIds(cursor)).toEqual([3]);
    await cursor.close();
  });

  it('reads a file truncated in place from its start', async () => {
    writeFileSync(file, lines(1, 2));
    const cursor = EventLogCursor.atStart(file);
    expect(await readIds(cursor)).toEqual([1, 2]);
    truncateSync(file, 0);
    appendFileSync(file, lines(3));
    expect(await readIds(cursor)).toEqual([3]);
    await cursor.close();
  });

  it('starts after the last N events, including a line being written', async () => {
    writeFileSync(`${file}.1`, lines(1, 2));
    writeFileSync(file, lines(3) + line(4).slice(0, 10));
    const { events, cursor } = await EventLogCursor.afterLast(file, 2);
    expect(events.map((e) => e.id)).toEqual([2, 3]);
    appendFileSync(file, line(4).slice(10));
    expect(await readIds(cursor)).toEqual([4]);
    await cursor.close();
  });
});

describe('maxEventId', () => {
  it('is 0 for no log, and counts a line whose id comes before its other keys without parsing it whole', async () => {
    expect(await maxEventId(file)).toBe(0);
    writeFileSync(file, lines(3) + '{"id":9,"time":"torn' + '\n' + lines(4));
    expect(await maxEventId(file)).toBe(9);
    writeFileSync(file, lines(3) + JSON.stringify({ kind: 'node-online', id: 12, time: 't', message: 'm' }) + '\n');
    expect(await maxEventId(file)).toBe(12);
  });
});
