import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigWatcher } from './config-watcher.js';

const config = (services: string) => `nodes:\n  - { id: local, host: localhost }\nservices: ${services}\n`;

describe('ConfigWatcher with a verify step (secrets it names can be read)', () => {
  it('rejects a new file once while verify fails, and reloads it as soon as verify passes, the file untouched', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-watcher-'));
    const path = join(dir, 'otto.yaml');
    await writeFile(path, config('[]'));
    let readable = false;
    const watcher = new ConfigWatcher(path, 'initial-hash', async () => {
      if (!readable) throw new Error('secrets.db.file: cannot read "./db.txt"');
    });
    expect(await watcher.check()).toEqual({ kind: 'rejected', error: 'secrets.db.file: cannot read "./db.txt"' });
    expect(await watcher.check()).toEqual({ kind: 'unchanged' });
    readable = true;
    expect(await watcher.check()).toMatchObject({ kind: 'reloaded', text: config('[]') });
    expect(await watcher.check()).toEqual({ kind: 'unchanged' });
  });
});
