/**
 * Reads the small text files of cgroupfs and /proc that every metrics cycle reads for every container.
 * They report a size of 0, so readFileSync allocates a fresh 8 kB buffer per file and read (about 100 a
 * cycle with 20 containers): this reads into one buffer kept for the process instead, and allocates only
 * the string.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/** Larger than any of these files (memory.stat, the biggest, is about 1.5 kB); a larger one still reads whole. */
const scratch = Buffer.allocUnsafeSlow(16 * 1024);

export function readKernelFile(path: string): string {
  const fd = openSync(path, 'r');
  try {
    let length = 0;
    for (;;) {
      const read = readSync(fd, scratch, length, scratch.length - length, null);
      if (read === 0) return scratch.toString('latin1', 0, length);
      length += read;
      // Full: the rest follows from where the reads stopped.
      if (length === scratch.length) return scratch.toString('latin1') + readFileSync(fd, 'latin1');
    }
  } finally {
    closeSync(fd);
  }
}
