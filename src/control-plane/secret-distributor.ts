/**
 * Hands secret values and registry credentials to the nodes that need them, and to no other: a node gets
 * the secrets of the replicas its desired state lists and the credentials its desired state names, on its
 * own topic (QoS 1, never retained). They go out just before a desired state that needs them, again when
 * the node comes back online, and whenever the node reports some missing (its disk was wiped, a message
 * was lost while it was offline). The values come from the keeper (secret-keeper.ts).
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { DesiredState, NodeState } from '../protocol/messages.js';
import { packSecretsMessages, type RegistryEntry, type RegistryRef, type SecretEntry, type SecretsMessage } from '../protocol/secrets.js';
import { registryKey, secretKey } from '../protocol/secret-names.js';
import { splitSecretKey, type SecretKeeper } from './secret-keeper.js';

export interface DistributorHost {
  cluster(): string;
  /** QoS 1, not retained, on the node's secrets topic. */
  publish(nodeId: string, message: SecretsMessage): Promise<void>;
  log: Logger;
}

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
  /** Per node, the keys it was sent since it last came online. */
  private readonly sent = new Map<string, Set<string>>();
  private readonly answeredAt = new Map<string, number>();
  private readonly unknownLogged = new Set<string>();

  constructor(
    private readonly host: DistributorHost,
    private readonly keeper: SecretKeeper,
  ) {}

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

  private async send(nodeId: string, secretKeys: string[], registryKeys: string[]): Promise<void> {
    const secrets: SecretEntry[] = [];
    for (const key of secretKeys) {
      const value = this.keeper.secretValue(key);
      if (value) secrets.push({ ...splitSecretKey(key), value: value.toString('base64') });
      else this.noteUnknown(nodeId, key);
    }
    const registries: RegistryEntry[] = [];
    for (const key of registryKeys) {
      const credential = this.keeper.credential(key);
      if (credential) registries.push(credential);
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

  /** A value the control plane no longer has (changed before its restart): the replica waits, said once. */
  private noteUnknown(nodeId: string, key: string): void {
    if (this.unknownLogged.has(`${nodeId} ${key}`)) return;
    this.unknownLogged.add(`${nodeId} ${key}`);
    this.host.log.warn({ node: nodeId, wanted: key }, 'the node needs a secret value the control plane no longer has (it changed); its replica waits until updated');
  }
}
