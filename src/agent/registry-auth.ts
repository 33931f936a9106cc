/**
 * Which credential an image pull uses, as `docker pull` would choose: the one the control plane sent for
 * the image's registry (otto.yaml `registries`), else the node's own `docker login` for that host
 * ($DOCKER_CONFIG/config.json, else ~/.docker/config.json, `auths` entries), else none. Credential helpers
 * (`credsStore`, `credHelpers`) are not run: a login kept by a helper is not seen.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readFile } from '../fs-async.js';
import type { DesiredState } from '../protocol/messages.js';
import { DOCKER_HUB, normalizeRegistryHost, registryHostOf } from '../protocol/secret-names.js';
import type { SecretStore } from './secret-store.js';

/** What Docker's pull takes as X-Registry-Auth. */
export interface PullAuthConfig {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress: string;
}

export type PullCredential = { auth?: PullAuthConfig } | { waiting: string };

/** Docker Hub's logins are kept under its old index address. */
const serverAddress = (host: string) => (host === DOCKER_HUB ? 'https://index.docker.io/v1/' : host);

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || join(homedir(), '.docker');
}

/** The `auths` entry of a Docker config.json for `host`, as a pull credential; undefined if none. */
export function dockerLoginFor(configJson: unknown, host: string): PullAuthConfig | undefined {
  const auths = (configJson as { auths?: Record<string, unknown> } | undefined)?.auths;
  if (!auths || typeof auths !== 'object') return undefined;
  for (const [key, value] of Object.entries(auths)) {
    if (normalizeRegistryHost(key) !== host || !value || typeof value !== 'object') continue;
    const entry = value as { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown };
    if (typeof entry.identitytoken === 'string' && entry.identitytoken) return { identitytoken: entry.identitytoken, serveraddress: serverAddress(host) };
    if (typeof entry.auth === 'string' && entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: serverAddress(host) };
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string') {
      return { username: entry.username, password: entry.password, serveraddress: serverAddress(host) };
    }
  }
  return undefined;
}

export class RegistryAuth {
  constructor(
    private readonly store: SecretStore,
    private readonly desired: () => DesiredState | undefined,
    private readonly configDir = dockerConfigDir(),
  ) {}

  /** Why a pull of `image` must wait (its credential has not arrived), or undefined. */
  waitingFor(image: string): string | undefined {
    const host = registryHostOf(image);
    const ref = this.desired()?.registries?.find((r) => r.host === host);
    return ref && !this.store.hasCredential(ref.host, ref.hash) ? `waiting for the credential of registry ${host} from the control plane` : undefined;
  }

  async forImage(image: string): Promise<PullCredential> {
    const host = registryHostOf(image);
    const ref = this.desired()?.registries?.find((r) => r.host === host);
    if (ref) {
      const credential = this.store.credential(ref.host, ref.hash);
      if (!credential) return { waiting: `waiting for the credential of registry ${host} from the control plane` };
      return { auth: { ...credential, serveraddress: serverAddress(host) } };
    }
    // Read at every pull: a `docker login` on the node counts from the next try, without restarting the agent.
    const text = await readFile(join(this.configDir, 'config.json'), 'utf8').catch(() => undefined);
    if (text === undefined) return {};
    try {
      return { auth: dockerLoginFor(JSON.parse(text), host) };
    } catch {
      return {};
    }
  }
}
