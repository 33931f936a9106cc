/**
 * Secrets and registry credentials on the wire. The desired state names them with a hash of the value
 * (never the value); the values travel only on `otto/nodes/{node}/secrets` (QoS 1, never retained), to the
 * node that runs a replica needing them. Their names on a node and registry hosts: secret-names.ts.
 */
import { z } from 'zod';

/** A secret's name is a file name on the node and in the container (/run/secrets/NAME): no path in it. */
export const SECRET_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const HASH = /^[0-9a-f]{8,64}$/;

export const secretRefSchema = z.object({ name: z.string().regex(SECRET_NAME).max(128), hash: z.string().regex(HASH) });
export type SecretRef = z.infer<typeof secretRefSchema>;

export const registryRefSchema = z.object({ host: z.string().min(1).max(256), hash: z.string().regex(HASH) });
export type RegistryRef = z.infer<typeof registryRefSchema>;

export const secretsMessageSchema = z.object({
  cluster: z.string().min(1),
  node_id: z.string().min(1),
  /** Values in base64: a secret may be any bytes (a key file). */
  secrets: z.array(secretRefSchema.extend({ value: z.base64() })),
  registries: z.array(registryRefSchema.extend({ username: z.string().min(1), password: z.string() })),
});
export type SecretsMessage = z.infer<typeof secretsMessageSchema>;
export type SecretEntry = SecretsMessage['secrets'][number];
export type RegistryEntry = SecretsMessage['registries'][number];

/** The largest secret (as Swarm): the messages carrying them stay well below the broker's packet limit. */
export const MAX_SECRET_BYTES = 500 * 1024;
/** A secrets message is split so that each stays below this many bytes of JSON. */
const MESSAGE_BUDGET_BYTES = 768 * 1024;

/** Packs entries into as few messages as fit the budget (one entry alone always makes a message). */
export function packSecretsMessages(cluster: string, nodeId: string, secrets: SecretEntry[], registries: RegistryEntry[]): SecretsMessage[] {
  const messages: SecretsMessage[] = [];
  let current: SecretsMessage = { cluster, node_id: nodeId, secrets: [], registries: [] };
  let size = 0;
  const add = (bytes: number, put: (m: SecretsMessage) => void) => {
    if (size > 0 && size + bytes > MESSAGE_BUDGET_BYTES) {
      messages.push(current);
      current = { cluster, node_id: nodeId, secrets: [], registries: [] };
      size = 0;
    }
    put(current);
    size += bytes;
  };
  for (const entry of secrets) add(entry.value.length + entry.name.length + 80, (m) => m.secrets.push(entry));
  for (const entry of registries) add(entry.host.length + entry.username.length + entry.password.length + 100, (m) => m.registries.push(entry));
  if (size > 0) messages.push(current);
  return messages;
}
