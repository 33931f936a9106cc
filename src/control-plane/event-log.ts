/**
 * Reading the event log: `events.jsonl` and the one file it was last rotated to, `events.jsonl.1`, in
 * chunks, never whole. Only lines ended by '\n' count: an unterminated last line is torn (kill -9 in the
 * middle of an append) or still being written, and every reader leaves it out. A line that does not parse
 * (a torn line the next append closed) is skipped.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { clusterEventSchema, type ClusterEvent } from '../http/schemas.js';

export const CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/** Where `file` goes when it is rotated (one rotated file is kept, like Docker's json-file max-file=2). */
export const rotatedPath = (file: string): string => `${file}.1`;

export function parseEventLine(line: string): ClusterEvent | undefined {
  if (!line) return undefined;
  try {
    const parsed = clusterEventSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The file opened for reading, or undefined when it does not exist (no log yet, or not rotated yet). */
export async function openIfExists(file: string): Promise<FileHandle | undefined> {
  try {
    return await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Splits the bytes read from a file into whole lines; keeps the unterminated rest for the next chunk. Cuts
 * only at '\n' bytes, so a multi-byte character is never split.
 */
export class LineSplitter {
  private rest: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    const bytes = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const end = bytes.lastIndexOf(NEWLINE);
    if (end === -1) {
      this.rest = Buffer.from(bytes);
      return [];
    }
    this.rest = Buffer.from(bytes.subarray(end + 1));
    return bytes.subarray(0, end).toString('utf8').split('\n');
  }

  /** Forgets an unterminated line: the file it came from will never finish it. */
  reset(): void {
    this.rest = Buffer.alloc(0);
  }
}

/** The whole lines of an open file from `position` to its current end, a chunk at a time. */
export async function* linesFrom(handle: FileHandle, position = 0, splitter = new LineSplitter()): AsyncGenerator<{ lines: string[]; position: number }> {
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield { lines: splitter.push(buffer.subarray(0, bytesRead)), position };
  }
}

async function* fileLines(file: string): AsyncGenerator<string[]> {
  const handle = await openIfExists(file);
  if (!handle) return;
  try {
    for await (const { lines } of linesFrom(handle)) yield lines;
  } finally {
    await handle.close();
  }
}

/** Every whole, valid event of the log, the rotated file first. */
export async function readEvents(file: string): Promise<ClusterEvent[]> {
  const events: ClusterEvent[] = [];
  for (const path of [rotatedPath(file), file]) {
    for await (const lines of fileLines(path)) {
      for (const line of lines) {
        const event = parseEventLine(line);
        if (event) events.push(event);
      }
    }
  }
  return events;
}

// The ledger writes `{"id":N,...`: reading the id needs no JSON parse of the rest of the line.
const LEADING_ID = /^\{"id":(\d+),/;

/**
 * The largest event id in the whole log, 0 for none. Not the last line's: a log written before appends
 * were serialized holds ids out of order. A torn line's id counts too, so it is never given out again.
 */
export async function maxEventId(file: string): Promise<number> {
  let max = 0;
  for (const path of [rotatedPath(file), file]) {
    for await (const lines of fileLines(path)) {
      for (const line of lines) {
        const id = Number(LEADING_ID.exec(line)?.[1] ?? parseEventLine(line)?.id ?? 0);
        if (id > max) max = id;
      }
    }
  }
  return max;
}

/**
 * The last `count` valid events of an open file ending at `end`, read backwards a chunk at a time, oldest
 * first; and where the whole lines end (an unterminated last line is left out).
 */
export async function lastEventsOf(handle: FileHandle, end: number, count: number): Promise<{ events: ClusterEvent[]; wholeLinesEnd: number }> {
  const newestFirst: ClusterEvent[] = [];
  let wholeLinesEnd: number | undefined;
  let position = end;
  let carry: Buffer = Buffer.alloc(0); // the start of a line whose beginning is in an earlier chunk
  while (position > 0 && (newestFirst.length < count || wholeLinesEnd === undefined)) {
    const size = Math.min(CHUNK_BYTES, position);
    position -= size;
    const chunk = Buffer.allocUnsafe(size);
    await readFully(handle, chunk, position);
    let bytes = carry.length ? Buffer.concat([chunk, carry]) : chunk;
    if (wholeLinesEnd === undefined) {
      const lastNewline = bytes.lastIndexOf(NEWLINE);
      if (lastNewline === -1 && position > 0) {
        carry = Buffer.from(bytes);
        continue;
      }
      wholeLinesEnd = position + lastNewline + 1; // 0 when not one line is whole
      bytes = bytes.subarray(0, lastNewline + 1);
    }
    const firstNewline = position === 0 ? -1 : bytes.indexOf(NEWLINE);
    if (position > 0 && firstNewline === -1) {
      carry = Buffer.from(bytes);
      continue;
    }
    carry = Buffer.from(bytes.subarray(0, firstNewline + 1));
    const lines = bytes.subarray(firstNewline + 1).toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0 && newestFirst.length < count; i--) {
      const event = parseEventLine(lines[i]!);
      if (event) newestFirst.push(event);
    }
  }
  return { events: newestFirst.reverse(), wholeLinesEnd: wholeLinesEnd ?? 0 };
}

async function readFully(handle: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) throw new Error(`${position + done}: the event log got shorter while being read`);
    done += bytesRead;
  }
}

/** The last `count` events of the log, oldest first, reading only the tail of the file(s). */
export async function readLastEvents(file: string, count: number): Promise<ClusterEvent[]> {
  const tail = await openTail(file, count);
  await tail.handle?.close();
  return tail.events;
}

/**
 * The last `count` events of the log, and the newest file left open where its whole lines end, for a
 * reader that goes on following it from there.
 */
export async function openTail(file: string, count: number): Promise<{ events: ClusterEvent[]; handle?: FileHandle; ino: number; position: number }> {
  const current = await openIfExists(file);
  const rotated = await openIfExists(rotatedPath(file));
  try {
    const newest = current ?? rotated;
    if (!newest) return { events: [], ino: -1, position: 0 };
    const { ino, size } = await newest.stat();
    const { events, wholeLinesEnd } = await lastEventsOf(newest, size, count);
    if (events.length < count && current && rotated) {
      const older = await rotated.stat();
      // The same inode: `file` was rotated between the two opens, and `rotated` is what `current` holds.
      if (older.ino !== ino) events.unshift(...(await lastEventsOf(rotated, older.size, count - events.length)).events);
    }
    if (newest !== rotated) await rotated?.close();
    return { events, handle: newest, ino, position: wholeLinesEnd };
  } catch (err) {
    await current?.close();
    await rotated?.close();
    throw err;
  }
}
