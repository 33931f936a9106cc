import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KnownHosts, entryMatches, fingerprint, keyTypeOf, knownHostName, parseKnownHosts } from './known-hosts.js';

/** A real ed25519 public key blob from ssh-keygen, with its OpenSSH fingerprint. */
function realKey(dir: string, name: string): { blob: Buffer; line: string; fingerprint: string } {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
  const line = readFileSync(`${path}.pub`, 'utf8').trim();
  const print = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  return { blob: Buffer.from(line.split(' ')[1]!, 'base64'), line, fingerprint: print };
}

describe('known_hosts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'otto-known-hosts-'));
  const a = realKey(dir, 'a');
  const b = realKey(dir, 'b');

  it('computes the fingerprint and key type as OpenSSH does', () => {
    expect(fingerprint(a.blob)).toBe(a.fingerprint);
    expect(keyTypeOf(a.blob)).toBe('ssh-ed25519');
    expect(knownHostName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(knownHostName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  it('matches plain, [host]:port, wildcard and negated patterns', () => {
    const [entry] = parseKnownHosts(`rpi-01,10.0.0.1 ${a.line}\n`, 'f');
    expect(entryMatches(entry!, '10.0.0.1', 22)).toBe(true);
    expect(entryMatches(entry!, '10.0.0.1', 2222)).toBe(false);
    const [ported] = parseKnownHosts(`[10.0.0.1]:2222 ${a.line}\n`, 'f');
    expect(entryMatches(ported!, '10.0.0.1', 2222)).toBe(true);
    expect(entryMatches(ported!, '10.0.0.1', 22)).toBe(false);
    const [wild] = parseKnownHosts(`10.0.0.*,!10.0.0.9 ${a.line}\n`, 'f');
    expect(entryMatches(wild!, '10.0.0.5', 22)).toBe(true);
    expect(entryMatches(wild!, '10.0.0.9', 22)).toBe(false);
  });

  it('matches hashed entries written by ssh-keygen -H', () => {
    const file = join(dir, 'hashed');
    writeFileSync(file, `10.1.2.3 ${a.line}\n[10.1.2.3]:2200 ${b.line}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^\|1\|/);
    const known = new KnownHosts([file]);
    expect(known.check('10.1.2.3', 22, a.blob).status).toBe('trusted');
    expect(known.check('10.1.2.3', 2200, b.blob).status).toBe('trusted');
    expect(known.check('10.1.2.4', 22, a.blob).status).toBe('unknown');
  });

  it('tells trusted, unknown, changed and revoked apart', () => {
    const file = join(dir, 'mixed');
    writeFileSync(file, `# comment\n\nnode-a ${a.line}\n@revoked * ${b.line}\n@cert-authority *.example ${a.line}\n`);
    const known = new KnownHosts([file]);
    expect(known.check('node-a', 22, a.blob)).toMatchObject({ status: 'trusted', line: 3 });
    expect(known.check('node-b', 22, a.blob)).toMatchObject({ status: 'unknown', otherTypes: [] });
    const c = realKey(dir, 'c');
    expect(known.check('node-a', 22, c.blob)).toMatchObject({ status: 'changed', line: 3, knownFingerprint: a.fingerprint });
    expect(known.check('node-a', 22, b.blob)).toMatchObject({ status: 'revoked', line: 4 });
  });

  it('trusts into the last file and replaces only there', async () => {
    const user = join(dir, 'user_known_hosts');
    writeFileSync(user, `[127.0.0.5]:2222 ${a.line}\n`);
    const otto = join(dir, 'otto', 'known_hosts');
    const known = new KnownHosts([user, otto]);
    expect(known.knownKeyTypes('127.0.0.5', 2222)).toEqual(['ssh-ed25519']);
    await known.trust('127.0.0.6', 22, b.blob);
    expect(known.check('127.0.0.6', 22, b.blob).status).toBe('trusted');
    expect(readFileSync(otto, 'utf8')).toBe(`127.0.0.6 ssh-ed25519 ${b.blob.toString('base64')}\n`);
    // A changed key: the new one is trusted once added, even though the user's file keeps the old one.
    expect(known.check('127.0.0.5', 2222, b.blob).status).toBe('changed');
    await known.replace('127.0.0.5', 2222, b.blob);
    expect(known.check('127.0.0.5', 2222, b.blob).status).toBe('trusted');
    const c = realKey(dir, 'd');
    await known.replace('127.0.0.6', 22, c.blob);
    expect(readFileSync(otto, 'utf8')).not.toContain(b.blob.toString('base64').slice(0, 20) + ' \n');
    expect(known.check('127.0.0.6', 22, b.blob).status).toBe('changed');
    expect(known.check('127.0.0.6', 22, c.blob).status).toBe('trusted');
  });
});
