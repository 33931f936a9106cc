/**
 * Join tokens: what `otto node join-command` prints and `otto agent --join URL --token TOKEN` takes on a
 * device that dials in. A token names the cluster, the node (its own credential) or the pool (the shared
 * bootstrap secret), and carries the SHA-256 fingerprint of the cluster CA, so the device checks the broker
 * is the cluster's before it sends anything (K3s does the same with its `K10<ca-hash>` tokens).
 */
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { UsageError } from '../errors.js';

const PREFIX = 'otto1.';

const tokenSchema = z.object({
  cluster: z.string().min(1),
  kind: z.enum(['node', 'pool']),
  name: z.string().min(1),
  secret: z.string().min(16),
  /** SHA-256 of the CA certificate (DER), lowercase hex. */
  ca: z.string().regex(/^[0-9a-f]{64}$/),
});
export type JoinToken = z.infer<typeof tokenSchema>;

/** The SHA-256 fingerprint of a PEM certificate's DER, lowercase hex without colons. */
export function caFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
}

export function formatJoinToken(token: JoinToken): string {
  return PREFIX + Buffer.from(JSON.stringify(token)).toString('base64url');
}

export function parseJoinToken(text: string): JoinToken {
  const hint = 'copy the whole token that `otto node join-command NODE|POOL` printed';
  if (!text.startsWith(PREFIX)) throw new UsageError('--token: not an Otto join token (it starts with "otto1.")', hint);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(text.slice(PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    throw new UsageError('--token: the token is damaged (cut short?)', hint);
  }
  const parsed = tokenSchema.safeParse(json);
  if (!parsed.success) throw new UsageError('--token: the token is damaged (cut short?)', hint);
  return parsed.data;
}
