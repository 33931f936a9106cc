import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Credentials } from './credentials.js';

const store = () => new Credentials(join(mkdtempSync(join(tmpdir(), 'otto-cred-')), 'credentials.json'));

describe('Credentials', () => {
  it('gives each node its own password once, kept 0600 across loads', async () => {
    const credentials = store();
    expect(await credentials.ensure(['a', 'b'])).toEqual(['a', 'b']);
    expect(await credentials.ensure(['a', 'b', 'c'])).toEqual(['c']);
    const again = await new Credentials(credentials.path).load();
    expect(again.password('a')).toBe(credentials.password('a'));
    expect(new Set(['a', 'b', 'c'].map((id) => again.password(id))).size).toBe(3);
    expect(statSync(credentials.path).mode & 0o777).toBe(0o600);
  });

  it('rotates one node without touching the others, and revokes', async () => {
    const credentials = store();
    await credentials.ensure(['a', 'b']);
    const [a, b] = [credentials.password('a'), credentials.password('b')];
    const fresh = await credentials.rotate('a');
    expect(fresh).not.toBe(a);
    expect(credentials.password('a')).toBe(fresh);
    expect(credentials.password('b')).toBe(b);
    expect(await credentials.revoke('b')).toBe(true);
    expect((await new Credentials(credentials.path).load()).password('b')).toBeUndefined();
  });

  it('refuses a damaged store instead of silently making new passwords', async () => {
    const credentials = store();
    writeFileSync(credentials.path, '{"version": 1, "nodes": {"a": {"password": "short"');
    await expect(credentials.load()).rejects.toThrow();
    expect(readFileSync(credentials.path, 'utf8')).toContain('short');
  });
});
