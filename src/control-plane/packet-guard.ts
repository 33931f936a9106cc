/**
 * Reads the fixed header of each MQTT packet a client sends (type byte, then the remaining length as a
 * variable-length integer) and says when one announces more than the limit, before its bytes are buffered:
 * the broker can then close the connection instead of holding megabytes for a message it will refuse.
 * Pure: feed it the bytes as they come.
 */
export class PacketSizeGuard {
  /** Bytes of the current packet's body still to skip; -1 while reading a header. */
  private remaining = -1;
  private lengthValue = 0;
  private lengthShift = 0;
  private lengthBytes = 0;
  private inLength = false;

  constructor(private readonly maxBytes: number) {}

  /** The announced size of the first packet over the limit in this chunk, or undefined. */
  push(chunk: Buffer): number | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, chunk.length - i);
        this.remaining -= skip;
        i += skip;
        continue;
      }
      const byte = chunk[i++]!;
      if (!this.inLength) {
        // The type-and-flags byte; the remaining length follows.
        this.inLength = true;
        this.lengthValue = 0;
        this.lengthShift = 0;
        this.lengthBytes = 0;
        continue;
      }
      this.lengthValue += (byte & 0x7f) * 2 ** this.lengthShift;
      this.lengthShift += 7;
      this.lengthBytes++;
      if (byte & 0x80 && this.lengthBytes < 4) continue;
      this.inLength = false;
      if (this.lengthValue > this.maxBytes) return this.lengthValue;
      this.remaining = this.lengthValue;
    }
    if (this.remaining === 0) this.remaining = -1;
    return undefined;
  }
}
