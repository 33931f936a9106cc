import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeAtomic } from './workspace.js';

describe('writeAtomic', () => {
  it('survives many concurrent saves of one file in one process: no collision, the file is whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otto-atomic-'));
    const file = join(dir, 'desired.json');
    const contents = Array.from({ length: 50 }, (_, i) => JSON.stringify({ revision: i, pad: 'x'.repeat(1000 * (i % 7)) }));
    const results = await Promise.allSettled(contents.map((c) => writeAtomic(file, c)));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(contents).toContain(readFileSync(file, 'utf8'));
    expect(readdirSync(dir)).toEqual(['desired.json']);
  });

  it('writes with the mode asked for, and leaves no temp file when the write fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otto-atomic-'));
    const file = join(dir, 'secret.json');
    await writeAtomic(file, '{}', 0o600);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await expect(writeAtomic(join(dir, 'missing', 'x.json'), '{}')).rejects.toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual(['secret.json']);
  });
});
