/**
 * The config for commands that act on a running or initialized cluster. They read otto.yaml with the
 * values its `${VAR}`s had for the control plane (saved in `.otto/env.json` when it started), so a shell
 * that lacks a variable (a secret exported in another terminal) sees what the control plane sees instead
 * of failing. While otto.yaml has a broken edit, the control plane keeps running the last good config
 * (`.otto/config.yaml`); these commands use it too, with a warning, instead of refusing to show or stop
 * what runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { loadConfig, parseConfig, type LoadedConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { Workspace, isProcessAlive, type SavedEnv } from '../workspace.js';

export async function loadRunningConfig(configPath: string): Promise<LoadedConfig> {
  const workspace = new Workspace(configPath);
  const env = await runningEnv(workspace);
  try {
    return await loadConfig(configPath, env);
  } catch (err) {
    const snapshot = workspace.snapshotPath;
    if (!(err instanceof ConfigError) || !existsSync(snapshot)) throw err;
    process.stderr.write(`warning: ${err.issues[0]}\nwarning: using the last good config in ${snapshot}\n`);
    const text = readFileSync(snapshot, 'utf8');
    return {
      config: parseConfig(text, snapshot, env),
      path: resolve(configPath),
      text,
      hash: createHash('sha256').update(text).digest('hex'),
    };
  }
}

/** This shell's environment, overridden by the values saved when the cluster started (null: was not set). */
export async function runningEnv(workspace: Workspace): Promise<NodeJS.ProcessEnv> {
  const env = { ...process.env };
  for (const [name, value] of Object.entries(await workspace.savedEnv())) {
    if (value === null) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Loads otto.yaml with this shell's environment, noting the value of every variable it references. */
export async function loadConfigNotingEnv(configPath: string): Promise<{ loaded: LoadedConfig; referenced: SavedEnv }> {
  const referenced: SavedEnv = {};
  const env = new Proxy(process.env, {
    get(target, name) {
      const value = Reflect.get(target, name) as string | undefined;
      if (typeof name === 'string') referenced[name] = value ?? null;
      return value;
    },
  });
  const loaded = await loadConfig(configPath, env);
  return { loaded, referenced };
}

/**
 * Saves the values the control plane about to start (or the one that will, after `init`) reads, unless
 * another control plane runs: its values stay the ones that count.
 */
export async function saveEnvUnlessRunning(workspace: Workspace, referenced: SavedEnv): Promise<void> {
  const running = await workspace.readControlPlane();
  if (running && running.pid !== process.pid && isProcessAlive(running.pid)) return;
  await workspace.saveEnv(referenced);
}
