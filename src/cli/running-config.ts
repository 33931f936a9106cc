/**
 * The config for commands that act on a running or initialized cluster. While otto.yaml has a broken
 * edit, the control plane keeps running the last good config (`.otto/config.yaml`); these commands use
 * it too, with a warning, instead of refusing to show or stop what runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { loadConfig, parseConfig, type LoadedConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { Workspace } from '../workspace.js';

export async function loadRunningConfig(configPath: string): Promise<LoadedConfig> {
  try {
    return await loadConfig(configPath);
  } catch (err) {
    const snapshot = new Workspace(configPath).snapshotPath;
    if (!(err instanceof ConfigError) || !existsSync(snapshot)) throw err;
    process.stderr.write(`warning: ${err.issues[0]}\nwarning: using the last good config in ${snapshot}\n`);
    const text = readFileSync(snapshot, 'utf8');
    return {
      config: parseConfig(text, snapshot),
      path: resolve(configPath),
      text,
      hash: createHash('sha256').update(text).digest('hex'),
    };
  }
}
