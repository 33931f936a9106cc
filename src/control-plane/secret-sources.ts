/**
 * Reads the values of otto.yaml's secrets and registry passwords where the file says they are (a file
 * beside otto.yaml, or a variable of the control plane's environment), at start, at every reload and at
 * every tick (a changed file rolls the replicas that use it). Each value gets a keyed hash: the desired
 * state, the ledger and the container labels carry the hash, never the value, and the key (.otto/secrets.key,
 * 0600) keeps a short password from being guessed back from its hash.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { SecretSource } from '../config/secrets-schema.js';
import type { OttoConfig } from '../config/schema.js';
import { ConfigSource, type ConfigPath, type Problem } from '../config/source.js';
import { ConfigError } from '../errors.js';
import { MAX_SECRET_BYTES } from '../protocol/secrets.js';
import { normalizeRegistryHost } from '../protocol/secret-names.js';
import { writeAtomic } from '../workspace.js';

export interface SecretValue {
  hash: string;
  value: Buffer;
}

export interface RegistryCredential {
  /** The host as the config wrote it (Docker's serveraddress). */
  host: string;
  hash: string;
  username: string;
  password: string;
}

export interface SecretValues {
  /** By secret name. */
  secrets: Map<string, SecretValue>;
  /** By normalized registry host (protocol/secrets.ts). */
  registries: Map<string, RegistryCredential>;
}

export const noSecretValues = (): SecretValues => ({ secrets: new Map(), registries: new Map() });

const HASH_LENGTH = 16;

/** The key of the value hashes: made once per workspace, 0600. */
export async function secretHashKey(workspaceDir: string): Promise<Buffer> {
  const path = join(workspaceDir, 'secrets.key');
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text && /^[0-9a-f]{64}\s*$/.test(text)) return Buffer.from(text.trim(), 'hex');
  const key = randomBytes(32);
  await writeAtomic(path, `${key.toString('hex')}\n`, 0o600);
  return key;
}

export function valueHash(key: Buffer, ...parts: (string | Buffer)[]): string {
  const hmac = createHmac('sha256', key);
  for (const part of parts) hmac.update(part).update('\0');
  return hmac.digest('hex').slice(0, HASH_LENGTH);
}

/**
 * Every secret and registry password of `config`, read now. Throws a ConfigError naming each one that
 * cannot be read (`file:line:col secrets.db.file: ...`), like any other problem of otto.yaml.
 */
export async function readSecretSources(
  config: OttoConfig,
  location: { path: string; text: string },
  key: Buffer,
  env: NodeJS.ProcessEnv = process.env,
): Promise<SecretValues> {
  const baseDir = dirname(resolve(location.path));
  const problems: Problem[] = [];
  const values = noSecretValues();
  const read = async (source: SecretSource, path: ConfigPath): Promise<Buffer | undefined> => {
    const result = await readSource(source, baseDir, env);
    if ('value' in result) return result.value;
    problems.push({ path: [...path, source.file !== undefined ? 'file' : 'environment'], message: result.problem });
    return undefined;
  };
  for (const [name, source] of Object.entries(config.secrets)) {
    const value = await read(source, ['secrets', name]);
    if (value) values.secrets.set(name, { hash: valueHash(key, 'secret', name, value), value });
  }
  for (const [host, registry] of Object.entries(config.registries)) {
    const raw = await read(registry.password, ['registries', host, 'password']);
    if (!raw) continue;
    // As `docker login --password-stdin`: the line break an editor or `echo` leaves is not part of the password.
    const password = raw.toString('utf8').replace(/\r?\n$/, '');
    values.registries.set(normalizeRegistryHost(host), { host, username: registry.username, password, hash: valueHash(key, 'registry', host, registry.username, password) });
  }
  if (problems.length > 0) {
    const source = new ConfigSource(location.text, location.path);
    throw new ConfigError(
      problems.map((problem) => source.render(problem).text),
      'create the file or export the variable where the control plane runs, then start it again (a running one retries at every tick)',
    );
  }
  return values;
}

/** Throws the ConfigError `readSecretSources` would, for a command about to start the control plane. */
export async function checkSecretSources(loaded: { config: OttoConfig; text: string }, path: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await readSecretSources(loaded.config, { path, text: loaded.text }, randomBytes(32), env);
}

async function readSource(source: SecretSource, baseDir: string, env: NodeJS.ProcessEnv): Promise<{ value: Buffer } | { problem: string }> {
  if (source.environment !== undefined) {
    const value = env[source.environment];
    if (value === undefined) return { problem: `variable "${source.environment}" is not set in the control plane's environment; export it before \`otto cluster start\`` };
    return checkSize(Buffer.from(value, 'utf8'), `variable "${source.environment}"`);
  }
  const file = resolve(baseDir, source.file!);
  try {
    const info = await stat(file);
    if (!info.isFile()) return { problem: `"${source.file}" (${file}) is not a file` };
    if (info.size > MAX_SECRET_BYTES) return { problem: tooBig(`"${source.file}"`, info.size) };
    return checkSize(await readFile(file), `"${source.file}"`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? String(err));
    return { problem: `cannot read "${source.file}" (${file}): ${why}` };
  }
}

function checkSize(value: Buffer, what: string): { value: Buffer } | { problem: string } {
  return value.length > MAX_SECRET_BYTES ? { problem: tooBig(what, value.length) } : { value };
}

const tooBig = (what: string, bytes: number) => `${what} holds ${bytes} bytes; a secret may hold at most ${MAX_SECRET_BYTES / 1024} KiB`;

/** What changed between two readings: secrets by name (their replicas roll), and whether any registry credential did. */
export function secretChanges(before: SecretValues, after: SecretValues): { secrets: string[]; registries: boolean } {
  const names = new Set([...before.secrets.keys(), ...after.secrets.keys()]);
  const secrets = [...names].filter((name) => before.secrets.get(name)?.hash !== after.secrets.get(name)?.hash);
  const hosts = new Set([...before.registries.keys(), ...after.registries.keys()]);
  const registries = [...hosts].some((host) => before.registries.get(host)?.hash !== after.registries.get(host)?.hash);
  return { secrets, registries };
}
