/**
 * Notices when otto.yaml changes on disk. A valid new file is handed over; an invalid one is reported
 * once per content and the running config stays. `verify` checks what lies outside the file (the secrets
 * it names can be read); a file it refuses is verified again at every check, so fixing the secret is enough.
 */
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { parseConfig } from '../config/load.js';
import type { OttoConfig } from '../config/schema.js';
import { ConfigError, errorMessage } from '../errors.js';

export type ConfigChange =
  | { kind: 'unchanged' }
  | { kind: 'reloaded'; config: OttoConfig; text: string; hash: string }
  | { kind: 'rejected'; error: string }
  /** After a rejected edit, the file is back to the config that runs. */
  | { kind: 'restored' };

export class ConfigWatcher {
  private lastStamp = '';
  /** A valid file whose `verify` failed: tried again until it passes or the file changes. */
  private unverified?: { config: OttoConfig; text: string; hash: string };

  constructor(
    private readonly path: string,
    private currentHash: string,
    private readonly verify: (config: OttoConfig, text: string) => Promise<void> = async () => undefined,
  ) {}

  async check(): Promise<ConfigChange> {
    let stamp: string;
    try {
      const info = await stat(this.path);
      stamp = `${info.mtimeMs}:${info.size}`;
    } catch (err) {
      return this.reject(`${this.path}: ${errorMessage(err)}`, 'missing');
    }
    if (stamp === this.lastStamp) return this.unverified ? this.accept(this.unverified) : { kind: 'unchanged' };
    this.lastStamp = stamp;
    this.unverified = undefined;
    const text = await readFile(this.path, 'utf8');
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === this.currentHash) {
      if (!this.rejectedHash) return { kind: 'unchanged' };
      this.rejectedHash = '';
      return { kind: 'restored' };
    }
    let config: OttoConfig;
    try {
      config = parseConfig(text, this.path);
    } catch (err) {
      return this.reject(err instanceof ConfigError ? err.issues.join('; ') : errorMessage(err), hash);
    }
    return this.accept({ config, text, hash });
  }

  private async accept(candidate: { config: OttoConfig; text: string; hash: string }): Promise<ConfigChange> {
    try {
      await this.verify(candidate.config, candidate.text);
    } catch (err) {
      this.unverified = candidate;
      return this.reject(err instanceof ConfigError ? err.issues.join('; ') : errorMessage(err), candidate.hash);
    }
    this.unverified = undefined;
    this.currentHash = candidate.hash;
    this.rejectedHash = '';
    return { kind: 'reloaded', ...candidate };
  }

  private rejectedHash = '';
  private reject(error: string, hash: string): ConfigChange {
    // Report a broken file once, not at every tick.
    if (hash === this.rejectedHash) return { kind: 'unchanged' };
    this.rejectedHash = hash;
    return { kind: 'rejected', error };
  }
}
