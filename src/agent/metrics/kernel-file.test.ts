import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readKernelFile } from './kernel-file.js';

const dir = mkdtempSync(join(tmpdir(), 'otto-kernel-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readKernelFile', () => {
  it('reads /proc files, which report a size of 0, whole', () => {
    expect(readKernelFile('/proc/self/status')).toMatch(/^Name:.*\n[\s\S]*VmRSS:/);
    expect(readKernelFile('/proc/meminfo')).toContain('MemTotal:');
  });

  it('reads files larger than its buffer whole, and one file after another without leftovers', () => {
    const big = join(dir, 'big');
    const text = Array.from({ length: 3000 }, (_, i) => `line ${i}\n`).join('');
    writeFileSync(big, text);
    const small = join(dir, 'small');
    writeFileSync(small, 'usage_usec 42\n');
    expect(text.length).toBeGreaterThan(16 * 1024);
    expect(readKernelFile(big)).toBe(text);
    expect(readKernelFile(small)).toBe('usage_usec 42\n');
  });

  it('throws for a file that is gone (a container that stopped)', () => {
    expect(() => readKernelFile(join(dir, 'absent'))).toThrow(/ENOENT/);
  });
});
