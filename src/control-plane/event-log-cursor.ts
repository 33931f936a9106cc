/**
 * Follows the event log by byte offset, like `tail -F`: each read returns only the bytes appended since the
 * last one, so every event comes out once, in file order. When `events.jsonl` is rotated (a new inode at
 * the path), the cursor finishes the file it holds open, reads a rotated file it never saw if two rotations
 * came between two reads, and goes on with the new file from its start. A file truncated in place is read
 * again from its start.
 */
import { stat, type FileHandle } from 'node:fs/promises';
import type { ClusterEvent } from '../http/schemas.js';
import { LineSplitter, linesFrom, openIfExists, openTail, parseEventLine, rotatedPath } from './event-log.js';

export type EventBatchHandler = (events: ClusterEvent[]) => void | Promise<void>;

export class EventLogCursor {
  private readonly splitter = new LineSplitter();

  private constructor(
    private readonly file: string,
    private handle: FileHandle | undefined,
    private ino: number,
    private position: number,
  ) {}

  /** A cursor before the first event of the log (the rotated file's first, when there is one). */
  static atStart(file: string): EventLogCursor {
    return new EventLogCursor(file, undefined, -1, 0);
  }

  /** The last `count` events, and a cursor right after them. */
  static async afterLast(file: string, count: number): Promise<{ events: ClusterEvent[]; cursor: EventLogCursor }> {
    const tail = await openTail(file, count);
    return { events: tail.events, cursor: new EventLogCursor(file, tail.handle, tail.ino, tail.position) };
  }

  /** Hands every whole event written since the last read to `onBatch`, a chunk at a time. */
  async read(onBatch: EventBatchHandler): Promise<void> {
    if (!this.handle && !(await this.openFirst())) return;
    for (;;) {
      await this.drain(onBatch);
      const atPath = await stat(this.file).catch(() => undefined);
      if (!atPath) return; // rotated and no new file yet: the next read looks again
      if (atPath.ino === this.ino) {
        if (atPath.size >= this.position) return;
        this.switchTo(this.handle!, this.ino); // truncated in place
        continue;
      }
      // Rotated: what was appended to our file before the rename is read now; it never grows again.
      await this.drain(onBatch);
      const next = await openIfExists(this.file);
      if (!next) return;
      const nextIno = (await next.stat()).ino;
      const rotated = await openIfExists(rotatedPath(this.file));
      const rotatedIno = rotated && (await rotated.stat()).ino;
      if (rotated && rotatedIno !== this.ino && rotatedIno !== nextIno) {
        // Rotated twice since the last read: the file in between is now the rotated one.
        await this.replaceHandle(rotated, rotatedIno!);
        await this.drain(onBatch);
      } else {
        await rotated?.close();
      }
      await this.replaceHandle(next, nextIno);
    }
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }

  private async openFirst(): Promise<boolean> {
    const handle = (await openIfExists(rotatedPath(this.file))) ?? (await openIfExists(this.file));
    if (!handle) return false;
    this.switchTo(handle, (await handle.stat()).ino);
    return true;
  }

  private async replaceHandle(handle: FileHandle, ino: number): Promise<void> {
    await this.handle?.close();
    this.switchTo(handle, ino);
  }

  private switchTo(handle: FileHandle, ino: number): void {
    this.handle = handle;
    this.ino = ino;
    this.position = 0;
    this.splitter.reset(); // an unterminated line of the previous file is torn for good
  }

  private async drain(onBatch: EventBatchHandler): Promise<void> {
    for await (const { lines, position } of linesFrom(this.handle!, this.position, this.splitter)) {
      this.position = position;
      const events: ClusterEvent[] = [];
      for (const line of lines) {
        const event = parseEventLine(line);
        if (event) events.push(event);
      }
      if (events.length) await onBatch(events);
    }
  }
}
