/**
 * OpenSSH known_hosts files: which host keys Otto trusts. A node's host key is checked against
 * ~/.ssh/known_hosts (what `ssh` trusts already) and .otto/known_hosts (what `otto node trust` added).
 * Understands plain and hashed (`|1|salt|hash`) host names, `[host]:port` for ports other than 22,
 * comma-separated patterns with `*`/`?` wildcards and `!` negation, and the @revoked marker
 * (@cert-authority lines are skipped: Otto does not verify host certificates).
 */
import { createHash, createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeAtomic } from '../workspace.js';

export interface KnownHostEntry {
  file: string;
  /** 1-based line number. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** Comma-separated patterns, or a hashed name. */
  hosts: { kind: 'patterns'; patterns: string[] } | { kind: 'hashed'; salt: Buffer; hash: Buffer };
  keyType: string;
  key: Buffer;
}

export type HostKeyVerdict =
  | { status: 'trusted'; file: string; line: number }
  | { status: 'unknown'; /** key types known for this host, none of them the one presented */ otherTypes: string[] }
  | { status: 'changed'; file: string; line: number; knownFingerprint: string }
  | { status: 'revoked'; file: string; line: number };

/** The name known_hosts records for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's fingerprint of a public key blob: `SHA256:` and unpadded base64. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const length = key.readUInt32BE(0);
  return length > 0 && length < 64 && key.length >= 4 + length ? key.subarray(4, 4 + length).toString('ascii') : 'unknown';
}

/** One known_hosts line for a key: `name type base64`. */
export function knownHostsLine(host: string, port: number, key: Buffer, comment?: string): string {
  return `${knownHostName(host, port)} ${keyTypeOf(key)} ${key.toString('base64')}${comment ? ` ${comment}` : ''}`;
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift()!.slice(1);
      if (name !== 'revoked' && name !== 'cert-authority') return;
      marker = name;
    }
    const [hostField, keyType, keyBase64] = fields;
    if (!hostField || !keyType || !keyBase64) return;
    const key = Buffer.from(keyBase64, 'base64');
    if (key.length === 0) return;
    let hosts: KnownHostEntry['hosts'];
    if (hostField.startsWith('|1|')) {
      const [, , salt, hash] = hostField.split('|');
      if (!salt || !hash) return;
      hosts = { kind: 'hashed', salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
    } else {
      hosts = { kind: 'patterns', patterns: hostField.split(',').filter(Boolean) };
    }
    entries.push({ file, line: index + 1, marker, hosts, keyType, key });
  });
  return entries;
}

function wildcardMatch(pattern: string, name: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return regex.test(name);
}

/** Does the entry name this host? Negated patterns (`!pattern`) veto a match, as in OpenSSH. */
export function entryMatches(entry: KnownHostEntry, host: string, port: number): boolean {
  const name = knownHostName(host, port);
  if (entry.hosts.kind === 'hashed') {
    const digest = createHmac('sha1', entry.hosts.salt).update(name).digest();
    return digest.equals(entry.hosts.hash);
  }
  let matched = false;
  for (const pattern of entry.hosts.patterns) {
    const negated = pattern.startsWith('!');
    if (wildcardMatch(negated ? pattern.slice(1) : pattern, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** A host's key types in SSH algorithm names, for ordering the host key algorithms ssh2 offers. */
export function hostKeyAlgorithmsFor(keyTypes: string[]): string[] {
  const algorithms: string[] = [];
  for (const type of keyTypes) {
    if (type === 'ssh-rsa') algorithms.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else algorithms.push(type);
  }
  return [...new Set(algorithms)];
}

export class KnownHosts {
  private entries: KnownHostEntry[] = [];

  /**
   * @param files read in order; the last one is where `trust` writes (.otto/known_hosts).
   */
  constructor(readonly files: string[]) {
    this.reload();
  }

  /** ~/.ssh/known_hosts and .otto/known_hosts of the workspace (`workspaceDir` is the .otto folder). */
  static forWorkspace(workspaceDir: string, home = process.env.HOME || homedir()): KnownHosts {
    return new KnownHosts([join(home, '.ssh', 'known_hosts'), join(workspaceDir, 'known_hosts')]);
  }

  get trustFile(): string {
    return this.files[this.files.length - 1]!;
  }

  reload(): void {
    this.entries = this.files.flatMap((file) => {
      if (!existsSync(file)) return [];
      try {
        return parseKnownHosts(readFileSync(file, 'utf8'), file);
      } catch {
        return [];
      }
    });
  }

  /** Entries naming this host, cert-authority lines left out. */
  entriesFor(host: string, port: number): KnownHostEntry[] {
    return this.entries.filter((entry) => entry.marker !== 'cert-authority' && entryMatches(entry, host, port));
  }

  /** The key types known for this host, for preferring them in the key exchange (as OpenSSH does). */
  knownKeyTypes(host: string, port: number): string[] {
    return [...new Set(this.entriesFor(host, port).filter((e) => e.marker !== 'revoked').map((e) => e.keyType))];
  }

  /** trusted / unknown / changed / revoked, for the key a host presented. */
  check(host: string, port: number, key: Buffer): HostKeyVerdict {
    const type = keyTypeOf(key);
    const revoked = this.entries.find((entry) => entry.marker === 'revoked' && entry.key.equals(key));
    if (revoked) return { status: 'revoked', file: revoked.file, line: revoked.line };
    const entries = this.entriesFor(host, port).filter((entry) => entry.marker === undefined);
    const same = entries.find((entry) => entry.key.equals(key));
    if (same) return { status: 'trusted', file: same.file, line: same.line };
    const changed = entries.find((entry) => entry.keyType === type);
    if (changed) return { status: 'changed', file: changed.file, line: changed.line, knownFingerprint: fingerprint(changed.key) };
    return { status: 'unknown', otherTypes: [...new Set(entries.map((entry) => entry.keyType))] };
  }

  /** Appends the key to the trust file (.otto/known_hosts). */
  async trust(host: string, port: number, key: Buffer): Promise<void> {
    await mkdir(dirname(this.trustFile), { recursive: true });
    const existing = existsSync(this.trustFile) ? await readFile(this.trustFile, 'utf8') : '';
    const separator = existing && !existing.endsWith('\n') ? '\n' : '';
    await appendFile(this.trustFile, `${separator}${knownHostsLine(host, port, key)}\n`, { mode: 0o600 });
    this.reload();
  }

  /**
   * Removes the trust file's entries for this host of the key's type, then trusts the key. Entries in
   * other files (~/.ssh/known_hosts) are left alone: a trusted key anywhere wins over a stale one.
   */
  async replace(host: string, port: number, key: Buffer): Promise<number> {
    const type = keyTypeOf(key);
    let removed = 0;
    if (existsSync(this.trustFile)) {
      const lines = (await readFile(this.trustFile, 'utf8')).split('\n');
      const stale = new Set(
        parseKnownHosts(lines.join('\n'), this.trustFile)
          .filter((entry) => entry.marker === undefined && entry.keyType === type && entryMatches(entry, host, port))
          .map((entry) => entry.line),
      );
      removed = stale.size;
      const kept = lines.filter((_, index) => !stale.has(index + 1));
      await writeAtomic(this.trustFile, kept.join('\n'), 0o600);
    }
    await this.trust(host, port, key);
    return removed;
  }
}
