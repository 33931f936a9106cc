import { describe, expect, it } from 'vitest';
import { logsChunkSchema } from '../protocol/messages.js';
import { decode } from '../protocol/codec.js';
import { CUT_MARKER, ChunkBuilder, DockerFrameDecoder, LineSplitter, MAX_LINE_BYTES, encodeChunk, type LogStreamName } from './log-chunking.js';

const frame = (type: number, text: string | Buffer) => {
  const payload = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
};

/** Feeds `data` in pieces of `size` bytes, as reads of a socket would. */
function pieces(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

function splitAll(inputs: Buffer[], max?: number): string[] {
  const splitter = new LineSplitter(max);
  const lines: string[] = [];
  for (const input of inputs) splitter.push(input, (text) => lines.push(text));
  splitter.end((text) => lines.push(text));
  return lines;
}

describe('DockerFrameDecoder', () => {
  it('demultiplexes stdout and stderr frames whatever the read boundaries', () => {
    const data = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err one\n'), frame(1, 'out two\n'), frame(1, '')]);
    for (const size of [1, 3, 8, 9, data.length]) {
      const got: Record<LogStreamName, string> = { stdout: '', stderr: '' };
      const decoder = new DockerFrameDecoder();
      for (const piece of pieces(data, size)) decoder.push(piece, (stream, payload) => (got[stream] += payload.toString()));
      expect(got, `reads of ${size} bytes`).toEqual({ stdout: 'out one\nout two\n', stderr: 'err one\n' });
    }
  });

  it('passes a large frame on in pieces instead of gathering it', () => {
    const decoder = new DockerFrameDecoder();
    const sizes: number[] = [];
    for (const piece of pieces(frame(1, Buffer.alloc(100_000, 'a')), 4096)) decoder.push(piece, (_stream, payload) => sizes.push(payload.length));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4096);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(100_000);
  });
});

describe('LineSplitter', () => {
  it('splits lines across reads, drops the \\r of a TTY, keeps a last line without newline', () => {
    const data = Buffer.from('one\ntwo\r\n\nthree');
    for (const size of [1, 2, 5, data.length]) expect(splitAll(pieces(data, size)), `reads of ${size}`).toEqual(['one', 'two', '', 'three']);
  });

  it('keeps UTF-8 characters whole when a read splits them', () => {
    expect(splitAll(pieces(Buffer.from('héllo wörld ✓\n'), 1))).toEqual(['héllo wörld ✓']);
  });

  it('cuts a line at the bound with the marker and drops its rest up to the newline', () => {
    const huge = Buffer.concat([Buffer.from('before\n'), Buffer.alloc(1024 * 1024, 'x'), Buffer.from('\nafter\n')]);
    const lines = splitAll(pieces(huge, 65536));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('before');
    expect(lines[1]).toBe('x'.repeat(MAX_LINE_BYTES) + CUT_MARKER);
    expect(lines[2]).toBe('after');
  });

  it('emits a cut line at once, before its newline comes (a follow shows it)', () => {
    const splitter = new LineSplitter(10);
    const lines: string[] = [];
    splitter.push(Buffer.from('0123456789abc'), (text) => lines.push(text));
    expect(lines).toEqual([`0123456789${CUT_MARKER}`]);
    splitter.push(Buffer.from('def\nnext\n'), (text) => lines.push(text));
    splitter.end((text) => lines.push(text));
    expect(lines).toEqual([`0123456789${CUT_MARKER}`, 'next']);
  });

  it('keeps a line of exactly the bound whole, and never cuts inside a UTF-8 character', () => {
    expect(splitAll([Buffer.from('0123456789\n')], 10)).toEqual(['0123456789']);
    // 'é' is 2 bytes: a cut at 5 bytes would fall inside the third one.
    expect(splitAll([Buffer.from('ééééé\n')], 5)).toEqual([`éé${CUT_MARKER}`]);
  });
});

describe('ChunkBuilder and encodeChunk', () => {
  it('closes a chunk at the line bound', () => {
    const builder = new ChunkBuilder(3, 1_000_000);
    const chunks: string[][] = [];
    for (let i = 0; i < 7; i++) {
      const full = builder.add({ stream: 'stdout', text: String(i) });
      if (full) chunks.push(full);
    }
    chunks.push(builder.take());
    expect(chunks.map((c) => c.length)).toEqual([3, 3, 1]);
  });

  it('keeps every message under the byte bound, counting JSON escapes', () => {
    const builder = new ChunkBuilder(500, 64 * 1024);
    const chunks: string[][] = [];
    // Control characters grow 6x in JSON: their encoded size is what counts.
    const text = '\u0001'.repeat(1000);
    for (let i = 0; i < 100; i++) {
      const full = builder.add({ stream: 'stderr', text });
      if (full) chunks.push(full);
    }
    chunks.push(builder.take());
    expect(chunks.flat()).toHaveLength(100);
    for (const chunk of chunks) expect(Buffer.byteLength(encodeChunk('request-1', 0, chunk))).toBeLessThanOrEqual(64 * 1024 + 100);
    expect(chunks.length).toBeGreaterThan(1);
  });

  it('lets a single line larger than the byte bound travel alone', () => {
    const builder = new ChunkBuilder(500, 100);
    expect(builder.add({ stream: 'stdout', text: 'a' })).toBeUndefined();
    expect(builder.add({ stream: 'stdout', text: 'b'.repeat(500) })).toHaveLength(1);
    expect(builder.add({ stream: 'stdout', text: 'c' })).toHaveLength(1);
  });

  it('encodes a valid logsChunk message', () => {
    const builder = new ChunkBuilder();
    builder.add({ stream: 'stdout', text: 'say "hi"\t\\' });
    builder.add({ stream: 'stderr', text: 'é ✓' });
    const decoded = decode(logsChunkSchema, encodeChunk('req-123456', 7, builder.take(), { end: true, error: 'gone "away"' }));
    expect(decoded).toEqual({
      ok: true,
      value: {
        request_id: 'req-123456',
        seq: 7,
        lines: [
          { stream: 'stdout', text: 'say "hi"\t\\' },
          { stream: 'stderr', text: 'é ✓' },
        ],
        end: true,
        error: 'gone "away"',
      },
    });
    expect(decode(logsChunkSchema, encodeChunk('req-123456', 0, []))).toEqual({ ok: true, value: { request_id: 'req-123456', seq: 0, lines: [] } });
  });
});
