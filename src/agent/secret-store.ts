/**
 * The node's secrets and registry credentials on disk, so an agent restarted while the control plane is
 * away can still start the replicas that need them. Folder `secrets/` (0700) in the agent's state folder;
 * each value in its own file `NAME@HASH` (0600, owned by the agent's user), the file a replica's container
 * bind-mounts read-only at /run/secrets/NAME: a new value is a new file (and a new container), so a
 * running container never sees its secret change under it. Credentials in `registries.json` (0600).
 *
 * A bind mount shows the container the host file's owner and mode: 0600 and the agent's user, which root
 * in the container reads (as most images run) and so does a container running as the agent's uid. For an
 * image whose USER is another uid, an agent running as root keeps a copy owned by that uid
 * (`secrets/u{uid}/NAME@HASH`, 0600), so the image's user reads its secret and no other user can.
 */
import { join } from 'node:path';
import { chmod, chown, mkdir, readdir, readFile, rm } from '../fs-async.js';
import type { DesiredState } from '../protocol/messages.js';
import { type RegistryEntry, type SecretEntry, type SecretRef } from '../protocol/secrets.js';
import { registryKey, secretKey } from '../protocol/secret-names.js';
import { writeAtomic } from '../workspace.js';

import { checkInput } from './inputs.js';
import type { RegistriesFile } from './state-files.js';

/** A value that arrived this recently is kept even if the desired state does not name it (yet). */
const KEEP_NEW_MS = 10 * 60_000;

export class SecretStore {
  readonly dir: string;
  private readonly registriesFile: string;
  /** `name@hash` of the files present. */
  private readonly present = new Set<string>();
  private registries: RegistriesFile = {};
  /** When each value arrived: the control plane sends values just before the desired state that needs them. */
  private readonly receivedAt = new Map<string, number>();
  private writing: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'secrets');
    this.registriesFile = join(stateDir, 'registries.json');
  }

  /** What an earlier run kept; makes the folder private (an older one may have been created wider). */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    for (const name of await readdir(this.dir)) if (/^[^@]+@[0-9a-f]+$/.test(name)) this.present.add(name);
    const text = await readFile(this.registriesFile, 'utf8').catch(() => undefined);
    const parsed = text === undefined ? undefined : await checkInput('registriesFile', safeJson(text));
    this.registries = parsed?.ok ? parsed.value : {};
  }

  /** The host file of a secret (present or not). */
  pathOf(ref: SecretRef): string {
    return join(this.dir, secretKey(ref));
  }

  /**
   * The file a container whose image runs as `user` (Docker's `USER`: `uid[:gid]`, a name, or empty for
   * root) mounts: the shared one, or a copy owned by that numeric uid when the agent may give it one.
   */
  async fileFor(ref: SecretRef, user: string): Promise<string> {
    const { uid, gid } = numericUser(user);
    const agentUid = process.getuid?.() ?? 0;
    // Root in the container reads any file; the agent's own uid reads its files; only root may hand a file to another uid.
    if (uid === undefined || gid === undefined || uid === 0 || uid === agentUid || agentUid !== 0) return this.pathOf(ref);
    const folder = join(this.dir, `u${uid}`);
    const copy = join(folder, secretKey(ref));
    const run = this.writing.then(async () => {
      await mkdir(folder, { recursive: true, mode: 0o700 });
      await writeAtomic(copy, await readFile(this.pathOf(ref)), 0o600);
      await chown(copy, uid, gid);
    });
    this.writing = run.catch(() => undefined);
    await run;
    return copy;
  }

  has(ref: SecretRef): boolean {
    return this.present.has(secretKey(ref));
  }

  /** The credential for `host` if the one the desired state names is here. */
  credential(host: string, hash: string): { username: string; password: string } | undefined {
    const entry = this.registries[host];
    return entry?.hash === hash ? { username: entry.username, password: entry.password } : undefined;
  }

  hasCredential(host: string, hash: string): boolean {
    return this.registries[host]?.hash === hash;
  }

  /** Stores what the control plane sent; resolves once it is on disk. Returns the hosts whose credential changed. */
  async put(secrets: SecretEntry[], registries: RegistryEntry[]): Promise<string[]> {
    const run = this.writing.then(async () => {
      for (const entry of secrets) {
        const key = secretKey(entry);
        await writeAtomic(join(this.dir, key), Buffer.from(entry.value, 'base64'), 0o600);
        this.present.add(key);
        this.receivedAt.set(key, Date.now());
      }
      const changed = registries.filter((r) => this.registries[r.host]?.hash !== r.hash).map((r) => r.host);
      if (changed.length === 0) return changed;
      for (const r of registries) {
        this.registries[r.host] = { hash: r.hash, username: r.username, password: r.password };
        this.receivedAt.set(registryKey(r), Date.now());
      }
      await writeAtomic(this.registriesFile, JSON.stringify(this.registries), 0o600);
      return changed;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** `name@hash` and `host@hash` the desired state needs and this node lacks. */
  missing(desired: DesiredState): { secrets: string[]; registries: string[] } {
    const secrets = new Set<string>();
    for (const replica of desired.replicas) for (const ref of replica.container.secrets ?? []) if (!this.has(ref)) secrets.add(secretKey(ref));
    const registries = (desired.registries ?? []).filter((r) => !this.hasCredential(r.host, r.hash)).map(registryKey);
    return { secrets: [...secrets], registries };
  }

  /**
   * Removes the values nothing needs any more: not in the desired state, not mounted by a container of
   * this node (a stopped one may start again), and the credentials of registries the desired state no
   * longer names. What arrived lately is kept: its desired state may be on its way.
   */
  async prune(desired: DesiredState, mountedSources: ReadonlySet<string>, now = Date.now()): Promise<void> {
    const recent = (key: string) => now - (this.receivedAt.get(key) ?? 0) < KEEP_NEW_MS;
    const wanted = new Set(desired.replicas.flatMap((r) => (r.container.secrets ?? []).map(secretKey)));
    const stale = [...this.present].filter((key) => !wanted.has(key) && !recent(key) && !mountedSources.has(join(this.dir, key)));
    const hosts = new Set((desired.registries ?? []).map((r) => r.host));
    const staleHosts = Object.keys(this.registries).filter((host) => !hosts.has(host) && !recent(registryKey({ host, hash: this.registries[host]!.hash })));
    if (stale.length === 0 && staleHosts.length === 0) return;
    const run = this.writing.then(async () => {
      for (const key of stale) {
        await rm(join(this.dir, key), { force: true });
        this.present.delete(key);
        this.receivedAt.delete(key);
      }
      await this.pruneCopies(mountedSources);
      if (staleHosts.length === 0) return;
      for (const host of staleHosts) delete this.registries[host];
      await writeAtomic(this.registriesFile, JSON.stringify(this.registries), 0o600);
    });
    this.writing = run.catch(() => undefined);
    await run;
  }

  /** Removes the per-uid copies of values no longer in the store, unless a container mounts one. */
  private async pruneCopies(mountedSources: ReadonlySet<string>): Promise<void> {
    const folders = (await readdir(this.dir, { withFileTypes: true })).filter((e) => e.isDirectory() && /^u\d+$/.test(e.name));
    for (const folder of folders) {
      for (const name of await readdir(join(this.dir, folder.name))) {
        const copy = join(this.dir, folder.name, name);
        const at = name.lastIndexOf('@');
        if (this.present.has(name) || mountedSources.has(copy) || at <= 0) continue;
        await rm(copy, { force: true });
      }
    }
  }
}

/** Docker's USER as uid and gid: `uid[:gid]` numbers; empty or `root` is 0; a name is unknown here (undefined uid). */
function numericUser(user: string): { uid: number | undefined; gid: number | undefined } {
  const trimmed = user.trim();
  if (trimmed === '' || trimmed === 'root' || /^root:/.test(trimmed)) return { uid: 0, gid: 0 };
  const numeric = /^(\d+)(?::(\d+))?$/.exec(trimmed);
  if (!numeric) return { uid: undefined, gid: undefined };
  const uid = Number(numeric[1]);
  return { uid, gid: numeric[2] !== undefined ? Number(numeric[2]) : uid };
}

/**
 * Whether a container running as `user` can read the file `fileFor` gives it: not when the image names its
 * user (the uid is in the image's /etc/passwd), nor a uid other than the agent's when the agent is not root.
 */
export function secretReadableBy(user: string): boolean {
  const { uid } = numericUser(user);
  const agentUid = process.getuid?.() ?? 0;
  return uid !== undefined && (uid === 0 || uid === agentUid || agentUid === 0);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
