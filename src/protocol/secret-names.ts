/**
 * How a node names what secrets.ts carries, without zod (the agent loads this at start, the schemas only
 * when a message fails its check): a secret's file `NAME@HASH`, a registry's credential `HOST@HASH`, and
 * registry hosts compared the way Docker does.
 */
import type { RegistryRef, SecretRef } from './secrets.js';

export const secretKey = (ref: SecretRef) => `${ref.name}@${ref.hash}`;
export const registryKey = (ref: RegistryRef) => `${ref.host}@${ref.hash}`;

export const DOCKER_HUB = 'docker.io';

/** `Index.Docker.io`, `registry-1.docker.io`, `https://index.docker.io/v1/` all mean Docker Hub; hosts are case-insensitive. */
export function normalizeRegistryHost(host: string): string {
  const bare = host
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return bare === 'index.docker.io' || bare === 'registry-1.docker.io' ? DOCKER_HUB : bare;
}

/** The registry an image is pulled from: its first component when it looks like a host (Docker's rule), else Docker Hub. */
export function registryHostOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? normalizeRegistryHost(first) : DOCKER_HUB;
}
