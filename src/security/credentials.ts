/**
 * Each node's broker credential: its username is its node id, its password a random secret of its own,
 * kept in `.otto/credentials.json` (mode 0600). Created for every node when the cluster is initialized and
 * whenever a node is added; a rotation replaces one node's password and nothing else. The control plane's
 * own credential is the API token (.otto/token).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { writeAtomic } from '../workspace.js';

const storeSchema = z.object({
  version: z.literal(1),
  nodes: z.record(z.string(), z.object({ password: z.string().min(16), created: z.string() })),
  /** Each node pool's bootstrap secret (what its join token carries). */
  pools: z.record(z.string(), z.object({ secret: z.string().min(16), created: z.string() })).default({}),
  /** Nodes that joined through a pool: not in otto.yaml, known from here. */
  joined: z
    .record(z.string(), z.object({ pool: z.string(), hostname: z.string().optional(), arch: z.string().optional(), joined_at: z.string() }))
    .default({}),
});
export type JoinedNode = CredentialStore['joined'][string];
export type CredentialStore = z.infer<typeof storeSchema>;

export const newPassword = () => randomBytes(24).toString('base64url');

export class Credentials {
  private store: CredentialStore = { version: 1, nodes: {}, pools: {}, joined: {} };

  constructor(readonly path: string) {}

  /** Reads the store; a missing file is an empty store, a damaged one an error (never silently new passwords). */
  async load(): Promise<this> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this;
      throw err;
    }
    this.store = storeSchema.parse(JSON.parse(text));
    return this;
  }

  password(nodeId: string): string | undefined {
    return this.store.nodes[nodeId]?.password;
  }

  nodes(): string[] {
    return Object.keys(this.store.nodes);
  }

  /** Gives every listed node a credential if it has none; returns the nodes that got one. */
  async ensure(nodeIds: string[], now = new Date()): Promise<string[]> {
    const created = nodeIds.filter((id) => !this.store.nodes[id]);
    for (const id of created) this.store.nodes[id] = { password: newPassword(), created: now.toISOString() };
    if (created.length > 0) await this.save();
    return created;
  }

  /** A new password for one node; the old one stops working as soon as the broker learns this one. */
  async rotate(nodeId: string, now = new Date()): Promise<string> {
    const password = newPassword();
    this.store.nodes[nodeId] = { password, created: now.toISOString() };
    await this.save();
    return password;
  }

  /** Revokes a node's credential (the node was removed): it is refused from then on. */
  async revoke(nodeId: string): Promise<boolean> {
    const known = Boolean(this.store.nodes[nodeId] || this.store.joined[nodeId]);
    if (!known) return false;
    delete this.store.nodes[nodeId];
    delete this.store.joined[nodeId];
    await this.save();
    return true;
  }

  /** Gives every listed pool a bootstrap secret if it has none. */
  async ensurePools(names: string[], now = new Date()): Promise<void> {
    const missing = names.filter((name) => !this.store.pools[name]);
    for (const name of missing) this.store.pools[name] = { secret: newPassword(), created: now.toISOString() };
    if (missing.length > 0) await this.save();
  }

  /** A new bootstrap secret for a pool: its old join tokens are refused (nodes that joined keep theirs). */
  async rotatePool(name: string, now = new Date()): Promise<void> {
    this.store.pools[name] = { secret: newPassword(), created: now.toISOString() };
    await this.save();
  }

  poolSecret(name: string): string | undefined {
    return this.store.pools[name]?.secret;
  }

  joinedNodes(): Record<string, JoinedNode> {
    return { ...this.store.joined };
  }

  /** A node joined through a pool: its own credential, and its record, in one write. */
  async admit(nodeId: string, record: Omit<JoinedNode, 'joined_at'>, now = new Date()): Promise<string> {
    const password = newPassword();
    this.store.nodes[nodeId] = { password, created: now.toISOString() };
    this.store.joined[nodeId] = { ...record, joined_at: now.toISOString() };
    await this.save();
    return password;
  }

  private async save(): Promise<void> {
    await writeAtomic(this.path, `${JSON.stringify(this.store, null, 2)}\n`, 0o600);
  }
}
