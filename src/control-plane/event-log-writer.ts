/**
 * The one writer of `events.jsonl`. Lines are appended in the order they were given, never two writes at
 * once: the lines that arrive while a write is under way go out together in the next one. Before a write
 * would take the file past `maxBytes`, the file is rotated to `events.jsonl.1` (replacing the previous
 * one) and a new file is started, so the log holds at most about twice `maxBytes`.
 */
import { appendFile, chmod, open, rename } from 'node:fs/promises';
import { rotatedPath } from './event-log.js';

interface PendingLine {
  text: string;
  written: () => void;
}

export class EventLogWriter {
  private pending: PendingLine[] = [];
  private flushing: Promise<void> | undefined;
  /** Bytes in the file, and whether it ends with a whole line; unknown until the first write. */
  private size: number | undefined;
  private endsWithNewline = true;

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    /** A failed append or rotation: the lines of a failed append are lost, later appends try again. */
    private readonly onError: (err: Error) => void,
  ) {}

  /** Queues `line` (ending with '\n'); resolves once it is on disk, or once writing it failed. */
  append(line: string): Promise<void> {
    return new Promise((written) => {
      this.pending.push({ text: line, written });
      this.flushing ??= this.flush();
    });
  }

  /** Resolves when every line given so far is written (or failed). */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.write(batch.map((line) => line.text).join(''));
      } catch (err) {
        this.size = undefined; // a write may have been cut short: look at the file again next time
        this.report(err);
      }
      for (const line of batch) line.written();
    }
    this.flushing = undefined;
  }

  private async write(text: string): Promise<void> {
    this.size ??= await this.inspect();
    const bytes = Buffer.byteLength(text);
    if (this.size > 0 && this.size + bytes > this.maxBytes) await this.rotate();
    // After a kill -9 in the middle of a line, the first new line must not be glued to the torn one.
    const data = this.endsWithNewline ? text : `\n${text}`;
    // Events may quote environment values (a rejected config): 0600 like the ledger.
    await appendFile(this.file, data, { mode: 0o600 });
    this.size += this.endsWithNewline ? bytes : bytes + 1;
    this.endsWithNewline = true;
  }

  private async rotate(): Promise<void> {
    try {
      await rename(this.file, rotatedPath(this.file));
      this.size = 0;
      this.endsWithNewline = true;
    } catch (err) {
      // Keep appending to the big file rather than lose events; the next write tries to rotate again.
      this.report(err);
    }
  }

  private async inspect(): Promise<number> {
    let handle;
    try {
      handle = await open(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.endsWithNewline = true;
        return 0;
      }
      throw err;
    }
    try {
      const { size, mode } = await handle.stat();
      if ((mode & 0o777) !== 0o600) await chmod(this.file, 0o600);
      const last = Buffer.alloc(1);
      if (size > 0) await handle.read(last, 0, 1, size - 1);
      this.endsWithNewline = size === 0 || last[0] === 0x0a;
      return size;
    } finally {
      await handle.close();
    }
  }

  private report(err: unknown): void {
    try {
      this.onError(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // a failing error handler must not stop the writer
    }
  }
}
