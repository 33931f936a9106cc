/**
 * The control plane's secret values, in memory only: read from their sources at start, for every new
 * otto.yaml (before it is applied) and at every tick (a changed file rolls the replicas that use it). The
 * values a secret had before are kept a while, for replicas still on an older spec revision (an update
 * under way, a rollback). Others see hashes only: for container specs, and for desired states.
 */
import type { OttoConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import type { ReplicaSpec } from '../protocol/messages.js';
import { type RegistryEntry, type RegistryRef } from '../protocol/secrets.js';
import { registryHostOf, registryKey, secretKey } from '../protocol/secret-names.js';
import type { SecretDigests } from './container-spec.js';
import { noSecretValues, readSecretSources, secretChanges, secretHashKey, type SecretValues } from './secret-sources.js';

/** Where otto.yaml is and what it says (its errors point into the text). */
export interface ConfigLocation {
  path: string;
  text: string;
}

export type SecretsRefresh =
  | { kind: 'unchanged' }
  /** Secrets whose value changed (their services' spec changed), and whether a registry credential did. */
  | { kind: 'changed'; secrets: string[]; registries: boolean }
  /** A source cannot be read: the values read before stay in use. `first`: this error was not reported yet. */
  | { kind: 'failed'; error: string; first: boolean }
  /** Every source can be read again after a failure. */
  | { kind: 'recovered' };

/** Earlier values kept per secret, for replicas not updated yet. */
const EARLIER_PER_SECRET = 3;

export class SecretKeeper {
  private key?: Buffer;
  private values: SecretValues = noSecretValues();
  /** Read by `verify` for a new otto.yaml, used once it is adopted. */
  private verified?: SecretValues;
  private failure?: string;
  private readonly earlier = new Map<string, Buffer>();

  /** At control plane start: the values of the config's sources; a ConfigError when one cannot be read. */
  async load(config: OttoConfig, location: ConfigLocation, workspaceDir: string): Promise<void> {
    this.key = await secretHashKey(workspaceDir);
    this.set(await readSecretSources(config, location, this.key));
  }

  /** For the config watcher: throws unless every source of a new otto.yaml can be read. */
  async verify(config: OttoConfig, location: ConfigLocation): Promise<void> {
    this.verified = await readSecretSources(config, location, this.key!);
  }

  /** The new otto.yaml is applied: its values (read by `verify`) are now the ones in use. */
  adoptVerified(): void {
    if (this.verified) this.set(this.verified);
    this.verified = undefined;
    this.failure = undefined;
  }

  /** Reads the running config's sources again (a changed file rolls the replicas that use it). */
  async refresh(config: OttoConfig, location: ConfigLocation): Promise<SecretsRefresh> {
    let values: SecretValues;
    try {
      values = await readSecretSources(config, location, this.key!);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const error = err.issues.join('; ');
      const first = error !== this.failure;
      this.failure = error;
      return { kind: 'failed', error, first };
    }
    const recovered = this.failure !== undefined;
    this.failure = undefined;
    const changes = secretChanges(this.values, values);
    if (changes.secrets.length === 0 && !changes.registries) return recovered ? { kind: 'recovered' } : { kind: 'unchanged' };
    this.set(values);
    return { kind: 'changed', ...changes };
  }

  /** New readings of the sources; the values they replace stay available for replicas on older specs. */
  private set(values: SecretValues): void {
    for (const [name, old] of this.values.secrets) {
      if (values.secrets.get(name)?.hash === old.hash) continue;
      this.earlier.set(secretKey({ name, hash: old.hash }), old.value);
      const kept = [...this.earlier.keys()].filter((key) => key.startsWith(`${name}@`));
      for (const key of kept.slice(0, Math.max(0, kept.length - EARLIER_PER_SECRET))) this.earlier.delete(key);
    }
    this.values = values;
  }

  digests(): SecretDigests {
    return new Map([...this.values.secrets].map(([name, { hash }]) => [name, hash]));
  }

  /** The credentials a node running these replicas gets: those of the registries their images come from. */
  registriesFor(replicas: ReplicaSpec[]): RegistryRef[] {
    const hosts = [...new Set(replicas.map((r) => registryHostOf(r.container.image)))].sort();
    return hosts.flatMap((host) => {
      const credential = this.values.registries.get(host);
      return credential ? [{ host, hash: credential.hash }] : [];
    });
  }

  /** The value of `name@hash`, current or earlier; undefined when the control plane no longer has it. */
  secretValue(key: string): Buffer | undefined {
    const { name, hash } = splitSecretKey(key);
    const current = this.values.secrets.get(name);
    return current?.hash === hash ? current.value : this.earlier.get(key);
  }

  /** The credential of `host@hash`, if it is the current one. */
  credential(key: string): RegistryEntry | undefined {
    for (const [host, c] of this.values.registries) {
      if (registryKey({ host, hash: c.hash }) === key) return { host, hash: c.hash, username: c.username, password: c.password };
    }
    return undefined;
  }
}

/** `name@hash` -> its parts (a name has no `@`; the hash is hex). */
export function splitSecretKey(key: string): { name: string; hash: string } {
  const at = key.lastIndexOf('@');
  return { name: key.slice(0, at), hash: key.slice(at + 1) };
}
