/**
 * Turns the bytes of a container's log, as Docker's logs API sends them, into bounded lines and bounded
 * chunks. Pure and incremental: whatever the size of a log or of one of its lines, it holds at most one
 * line's bound per stream and one chunk, so an agent on a 256 MB Pi can serve a log of gigabytes.
 */
import type { LogsChunk } from '../protocol/messages.js';

export type LogStreamName = 'stdout' | 'stderr';
export type LogLine = LogsChunk['lines'][number];

/** Longer lines are cut here: a terminal shows nothing useful of a megabyte without a newline. */
export const MAX_LINE_BYTES = 16 * 1024;
/** Bytes of JSON lines per MQTT message (a single line longer than that once encoded travels alone). */
export const MAX_CHUNK_BYTES = 64 * 1024 - 512;
export const MAX_CHUNK_LINES = 500;
export const CUT_MARKER = ` …[otto: line cut at ${MAX_LINE_BYTES / 1024} KB]`;

/**
 * Docker's multiplexed format (containers without a TTY): each frame is an 8-byte header (stream type,
 * three zero bytes, payload length big-endian) then the payload. A header or a payload may span reads,
 * so payloads are passed on piecewise rather than gathered.
 */
export class DockerFrameDecoder {
  private readonly header = Buffer.alloc(8);
  private headerBytes = 0;
  private payloadLeft = 0;
  private stream: LogStreamName = 'stdout';

  push(data: Buffer, emit: (stream: LogStreamName, payload: Buffer) => void): void {
    let offset = 0;
    while (offset < data.length) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, data.length - offset);
        emit(this.stream, data.subarray(offset, offset + take));
        this.payloadLeft -= take;
        offset += take;
        continue;
      }
      const take = Math.min(8 - this.headerBytes, data.length - offset);
      data.copy(this.header, this.headerBytes, offset, offset + take);
      this.headerBytes += take;
      offset += take;
      if (this.headerBytes === 8) {
        this.headerBytes = 0;
        this.stream = this.header[0] === 2 ? 'stderr' : 'stdout';
        this.payloadLeft = this.header.readUInt32BE(4);
      }
    }
  }
}

/**
 * Splits one stream's bytes into lines. A line that grows past `maxLineBytes` is emitted at once, cut
 * with CUT_MARKER, and the rest of it is dropped up to its newline: never buffered whole.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Inside the rest of a line that was cut. */
  private skipping = false;

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  push(data: Buffer, emit: (text: string) => void): void {
    let start = 0;
    while (start < data.length) {
      const newline = data.indexOf(0x0a, start);
      const end = newline === -1 ? data.length : newline;
      if (!this.skipping) this.append(data.subarray(start, end), emit);
      if (newline === -1) return;
      if (this.skipping) this.skipping = false;
      else emit(this.take(''));
      start = newline + 1;
    }
  }

  /** The stream ended: a last line without a newline is still a line. */
  end(emit: (text: string) => void): void {
    if (!this.skipping && this.pendingBytes > 0) emit(this.take(''));
    this.skipping = false;
  }

  private append(piece: Buffer, emit: (text: string) => void): void {
    if (this.pendingBytes + piece.length <= this.maxLineBytes) {
      // A copy: a subarray would pin the whole read buffer it came from.
      if (piece.length > 0) this.pending.push(Buffer.from(piece));
      this.pendingBytes += piece.length;
      return;
    }
    const room = utf8Boundary(piece, this.maxLineBytes - this.pendingBytes);
    this.pending.push(piece.subarray(0, room));
    this.pendingBytes += room;
    emit(this.take(CUT_MARKER));
    this.skipping = true;
  }

  private take(suffix: string): string {
    let text = Buffer.concat(this.pending, this.pendingBytes).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    // A TTY ends lines with \r\n.
    if (suffix === '' && text.endsWith('\r')) text = text.slice(0, -1);
    return text + suffix;
  }
}

/** The largest cut <= `at` that does not split a UTF-8 character. */
function utf8Boundary(buffer: Buffer, at: number): number {
  let cut = Math.min(at, buffer.length);
  while (cut > 0 && cut < buffer.length && (buffer[cut]! & 0xc0) === 0x80) cut--;
  return cut;
}

/**
 * Collects lines into chunks of at most `maxLines` lines and `maxBytes` bytes of JSON. Each line is
 * JSON-encoded once, here, so the size is exact and the message is assembled without encoding it again.
 */
export class ChunkBuilder {
  private lines: string[] = [];
  private bytes = 0;

  constructor(
    private readonly maxLines = MAX_CHUNK_LINES,
    private readonly maxBytes = MAX_CHUNK_BYTES,
  ) {}

  get lineCount(): number {
    return this.lines.length;
  }

  /** Adds a line; returns the full chunk it did not fit in, which must be sent before it. */
  add(line: LogLine): string[] | undefined {
    const encoded = JSON.stringify(line);
    const size = Buffer.byteLength(encoded) + 1;
    const full = this.lines.length > 0 && (this.lines.length >= this.maxLines || this.bytes + size > this.maxBytes) ? this.take() : undefined;
    this.lines.push(encoded);
    this.bytes += size;
    return full;
  }

  take(): string[] {
    const lines = this.lines;
    this.lines = [];
    this.bytes = 0;
    return lines;
  }
}

/** A logsChunk message (see protocol/messages.ts) from lines encoded by ChunkBuilder. */
export function encodeChunk(requestId: string, seq: number, encodedLines: string[], last: { end?: boolean; error?: string } = {}): string {
  const end = last.end ? ',"end":true' : '';
  const error = last.error === undefined ? '' : `,"error":${JSON.stringify(last.error)}`;
  return `{"request_id":${JSON.stringify(requestId)},"seq":${seq},"lines":[${encodedLines.join(',')}]${end}${error}}`;
}
