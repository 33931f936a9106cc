import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { caFingerprint, formatJoinToken, parseJoinToken } from './join-token.js';
import { newSealingKey, open, seal } from './join-seal.js';
import { ensureTlsMaterial } from './tls.js';

describe('join tokens', () => {
  it('round-trip, and carry the CA fingerprint', async () => {
    const tls = await ensureTlsMaterial(join(mkdtempSync(join(tmpdir(), 'otto-token-')), 'tls'), 'home', ['localhost']);
    const token = { cluster: 'home', kind: 'pool' as const, name: 'field', secret: 'x'.repeat(32), ca: caFingerprint(tls.ca) };
    expect(token.ca).toMatch(/^[0-9a-f]{64}$/);
    const text = formatJoinToken(token);
    expect(text.startsWith('otto1.')).toBe(true);
    expect(parseJoinToken(text)).toEqual(token);
  });

  it('refuses what is not a token, or a damaged one, with a clear message', () => {
    expect(() => parseJoinToken('K10abc::server:secret')).toThrow('--token: not an Otto join token');
    const good = formatJoinToken({ cluster: 'c', kind: 'node', name: 'pi', secret: 's'.repeat(20), ca: 'a'.repeat(64) });
    expect(() => parseJoinToken(good.slice(0, -10))).toThrow('--token: the token is damaged');
  });
});

describe('the sealed join reply', () => {
  it('opens only with the requester key and the same request id', () => {
    const device = newSealingKey();
    const sealed = seal('{"password":"p4ss"}', device.publicKey, 'req-1');
    expect(open(sealed, device, 'req-1')).toBe('{"password":"p4ss"}');
    expect(() => open(sealed, newSealingKey(), 'req-1')).toThrow();
    expect(() => open(sealed, device, 'req-2')).toThrow();
    expect(() => open({ ...sealed, ciphertext: Buffer.from('tampered').toString('base64') }, device, 'req-1')).toThrow();
  });
});
