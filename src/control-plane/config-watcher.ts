/**
 * Notices when otto.yaml changes on disk. A valid new file is handed over; an invalid one is reported
 * once per content and the running config stays.
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

  constructor(
    private readonly path: string,
    private currentHash: string,
  ) {}

  async check(): Promise<ConfigChange> {
    let stamp: string;
    try {
      const info = await stat(this.path);
      stamp = `${info.mtimeMs}:${info.size}`;
    } catch (err) {
      return this.reject(`${this.path}: ${errorMessage(err)}`, 'missing');
    }
    if (stamp === this.lastStamp) return { kind: 'unchanged' };
    this.lastStamp = stamp;
    const text = await readFile(this.path, 'utf8');
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === this.currentHash) {
      if (!this.rejectedHash) return { kind: 'unchanged' };
      this.rejectedHash = '';
      return { kind: 'restored' };
    }
    try {
      const config = parseConfig(text, this.path);
      this.currentHash = hash;
      this.rejectedHash = '';
      return { kind: 'reloaded', config, text, hash };
    } catch (err) {
      return this.reject(err instanceof ConfigError ? err.issues.join('; ') : errorMessage(err), hash);
    }
  }

  private rejectedHash = '';
  private reject(error: string, hash: string): ConfigChange {
    // Report a broken file once, not at every tick.
    if (hash === this.rejectedHash) return { kind: 'unchanged' };
    this.rejectedHash = hash;
    return { kind: 'rejected', error };
  }
}
