/**
 * Hands secret values and registry credentials to the nodes that need them, and to no other: a node gets
 * the secrets of the replicas its desired state lists and the credentials its desired state names, on its
 * own topic (QoS 1, never retained). They go out just before a desired state that needs them, again when
 * the node comes back online, and whenever the node reports some missing (its disk was wiped, a message
 * was lost while it was offline). Values live in memory only; earlier values of a secret are kept a while
 * for replicas still on an older spec revision (an update under way, a rollback).
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { DesiredState, NodeState, ReplicaSpec } from '../protocol/messages.js';
import {
  packSecretsMessages,
  registryHostOf,
  registryKey,
  secretKey,
  type RegistryEntry,
  type RegistryRef,
  type SecretEntry,
  type SecretsMessage,
} from '../protocol/secrets.js';
import type { OttoConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
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

export interface DistributorHost {
  cluster(): string;
  /** QoS 1, not retained, on the node's secrets topic. */
  publish(nodeId: string, message: SecretsMessage): Promise<void>;
  log: Logger;
}

/** Earlier values kept per secret, for replicas not updated yet. */
const EARLIER_PER_SECRET = 3;
/** A node asking again for the same value within this time gets no second copy (the first may be on its way). */
const ANSWER_EVERY_MS = 5_000;

/** What a desired state needs: secrets by `name@hash`, credentials by `host@hash`. */
export function neededBy(desired: DesiredState): { secrets: Map<string, { name: string; hash: string }>; registries: Map<string, RegistryRef> } {
  const secrets = new Map<string, { name: string; hash: string }>();
  for (const replica of desired.replicas) for (const ref of replica.container.secrets ?? []) secrets.set(secretKey(ref), ref);
  const registries = new Map((desired.registries ?? []).map((ref) => [registryKey(ref), ref]));
  return { secrets, registries };
}

export class SecretDistributor {
  private key?: Buffer;
  private values: SecretValues = noSecretValues();
  /** Read by `verify` for a new otto.yaml, used once it is adopted. */
  private verified?: SecretValues;
  private failure?: string;
  private readonly earlier = new Map<string, Buffer>();
  /** Per node, the keys it was sent since it last came online. */
  private readonly sent = new Map<string, Set<string>>();
  private readonly answeredAt = new Map<string, number>();
  private readonly unknownLogged = new Set<string>();

  constructor(private readonly host: DistributorHost) {}

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

  /** Before a desired state goes out: what it needs and the node was not sent yet. */
  async beforeDesired(desired: DesiredState): Promise<void> {
    const sent = this.sent.get(desired.node_id) ?? new Set<string>();
    const { secrets, registries } = neededBy(desired);
    await this.send(
      desired.node_id,
      [...secrets.keys()].filter((key) => !sent.has(key)),
      [...registries.keys()].filter((key) => !sent.has(key)),
    );
  }

  /** A node (back) online may have lost what it was sent while away: everything it needs again. */
  async nodeOnline(nodeId: string, desired: DesiredState | undefined): Promise<void> {
    this.sent.delete(nodeId);
    if (!desired) return;
    const { secrets, registries } = neededBy(desired);
    await this.send(nodeId, [...secrets.keys()], [...registries.keys()]);
  }

  /**
   * The node says what it lacks; it gets, once per few seconds per value, what the control plane has among
   * what its desired state needs: a node cannot ask for a secret of another node's replicas.
   */
  async answer(state: NodeState, desired: DesiredState | undefined, now = Date.now()): Promise<void> {
    if (!desired) return;
    const needed = neededBy(desired);
    const wanted = (keys: string[] | undefined, allowed: Map<string, unknown>) =>
      (keys ?? []).filter((key) => {
        const id = `${state.node_id} ${key}`;
        const last = this.answeredAt.get(id);
        if (!allowed.has(key) || (last !== undefined && now - last < ANSWER_EVERY_MS)) return false;
        this.answeredAt.set(id, now);
        return true;
      });
    const secrets = wanted(state.missing_secrets, needed.secrets);
    const registries = wanted(state.missing_registries, needed.registries);
    if (this.answeredAt.size > 10_000) this.answeredAt.clear();
    if (secrets.length || registries.length) await this.send(state.node_id, secrets, registries);
  }

  forgetNode(nodeId: string): void {
    this.sent.delete(nodeId);
  }

  private async send(nodeId: string, secretKeys: string[], registryKeys: string[]): Promise<void> {
    const secrets: SecretEntry[] = [];
    for (const key of secretKeys) {
      const value = this.secretValue(key);
      if (value) secrets.push({ ...splitKey(key), value: value.toString('base64') });
      else this.noteUnknown(nodeId, key);
    }
    const registries: RegistryEntry[] = [];
    for (const key of registryKeys) {
      const credential = [...this.values.registries.entries()].find(([host, c]) => registryKey({ host, hash: c.hash }) === key);
      if (credential) registries.push({ host: credential[0], hash: credential[1].hash, username: credential[1].username, password: credential[1].password });
      else this.noteUnknown(nodeId, key);
    }
    if (secrets.length === 0 && registries.length === 0) return;
    const sent = this.sent.get(nodeId) ?? new Set<string>();
    this.sent.set(nodeId, sent);
    for (const message of packSecretsMessages(this.host.cluster(), nodeId, secrets, registries)) {
      try {
        await this.host.publish(nodeId, message);
        const keys = [...message.secrets.map(secretKey), ...message.registries.map(registryKey)];
        // A node that asks right after (its report crossed this message) gets no second copy.
        for (const key of keys) {
          sent.add(key);
          this.answeredAt.set(`${nodeId} ${key}`, Date.now());
        }
      } catch (err) {
        // Not marked as sent: the next desired state, or the node's report of what it lacks, tries again.
        this.host.log.warn({ node: nodeId, err: errorMessage(err) }, 'cannot send secrets to the node; retrying when it asks');
      }
    }
    const names = [...secrets.map((s) => s.name), ...registries.map((r) => `registry ${r.host}`)];
    this.host.log.info({ node: nodeId, secrets: names }, 'sent secrets to the node');
  }

  private secretValue(key: string): Buffer | undefined {
    const { name, hash } = splitKey(key);
    const current = this.values.secrets.get(name);
    return current?.hash === hash ? current.value : this.earlier.get(key);
  }

  /** A value the control plane no longer has (changed before its restart): the replica waits, said once. */
  private noteUnknown(nodeId: string, key: string): void {
    if (this.unknownLogged.has(`${nodeId} ${key}`)) return;
    this.unknownLogged.add(`${nodeId} ${key}`);
    this.host.log.warn({ node: nodeId, wanted: key }, 'the node needs a secret value the control plane no longer has (it changed); its replica waits until updated');
  }
}

/** `name@hash` -> its parts (a name has no `@`; the hash is hex). */
function splitKey(key: string): { name: string; hash: string } {
  const at = key.lastIndexOf('@');
  return { name: key.slice(0, at), hash: key.slice(at + 1) };
}
