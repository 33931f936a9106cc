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
});
export type CredentialStore = z.infer<typeof storeSchema>;

export const newPassword = () => randomBytes(24).toString('base64url');

export class Credentials {
  private store: CredentialStore = { version: 1, nodes: {} };

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
    if (!this.store.nodes[nodeId]) return false;
    delete this.store.nodes[nodeId];
    await this.save();
    return true;
  }

  private async save(): Promise<void> {
    await writeAtomic(this.path, `${JSON.stringify(this.store, null, 2)}\n`, 0o600);
  }
}
