/**
 * otto.yaml and the secrets it names, followed while the control plane runs: each tick checks the file (a
 * rejected edit keeps the running config and says why, once) and the secret values (a changed one rolls the
 * services that use it). What the error shown in `status` (`config_error`) is lives here too.
 */
import type { LoadedConfig } from '../config/load.js';
import type { OttoConfig } from '../config/schema.js';
import type { ClusterEvent } from '../http/schemas.js';
import type { Logger } from '../log.js';
import { writeAtomic, type Workspace } from '../workspace.js';
import type { ConfigWatcher } from './config-watcher.js';
import type { Ledger } from './ledger.js';
import type { SecretKeeper } from './secret-keeper.js';
import { describeChange, type SpecRollout } from './spec-rollout.js';

export interface ConfigReloadHost {
  watcher: ConfigWatcher;
  ledger: Ledger;
  specs: SpecRollout;
  secretValues: SecretKeeper;
  workspace: Workspace;
  log: Logger;
  /** The running config (otto.yaml's with the nodes that joined) and the file it came from. */
  config(): OttoConfig;
  loaded(): LoadedConfig;
  /** Takes a new otto.yaml as the running one: nodes, pools, access, lifecycle, migration settings. */
  adopt(loaded: LoadedConfig): Promise<void>;
  /** After the new config is saved: credentials of new nodes, revocation of removed ones, agents (SSH in the background). */
  provision(config: OttoConfig, before: OttoConfig): Promise<void>;
  event(event: Omit<ClusterEvent, 'id' | 'time'>): Promise<void>;
}

export class ConfigReload {
  /** Why otto.yaml (or a secret it names) is not what runs, for `status`; null when all is well. */
  error: string | null = null;
  private secretsError: string | null = null;

  constructor(private readonly host: ConfigReloadHost) {}

  /** An edit of otto.yaml: applied (spec changes rolled), or rejected with the running config kept. */
  async checkConfig(): Promise<void> {
    const { host } = this;
    const change = await host.watcher.check();
    if (change.kind === 'rejected') {
      this.error = change.error;
      host.log.error({ error: change.error }, 'otto.yaml changed but is invalid; keeping the running config');
      await host.event({ kind: 'config-rejected', message: `config rejected, still running the previous one: ${change.error}` });
      return;
    }
    if (change.kind === 'restored') {
      this.error = null;
      await host.event({ kind: 'config-reloaded', message: 'config reloaded: otto.yaml is back to the running config' });
      return;
    }
    if (change.kind !== 'reloaded') return;
    const before = host.config();
    const beforeFile = host.loaded().config;
    await host.adopt({ ...host.loaded(), config: change.config, text: change.text, hash: change.hash });
    host.secretValues.adoptVerified();
    this.secretsError = null;
    this.error = null;
    const scales = host.ledger.data.scales;
    // A scale holds only while the config's replicas for the service stay what they were when it was made.
    for (const [name, scale] of Object.entries(scales)) {
      const service = change.config.services.find((s) => s.name === name);
      if (!service || service.replicas !== scale.config_replicas) delete scales[name];
    }
    const changedSpecs = host.specs.sync();
    await host.ledger.save();
    await writeAtomic(host.workspace.snapshotPath, change.text, 0o600);
    await writeAtomic(host.workspace.hashPath, `${change.hash}\n`);
    await host.provision(change.config, beforeFile);
    host.log.info({ hash: change.hash.slice(0, 12) }, 'otto.yaml reloaded');
    await host.event({ kind: 'config-reloaded', message: `config reloaded: ${describeChange(before, change.config)}` });
    host.specs.enqueueUpdates(changedSpecs);
  }

  /** A secret's file or variable changed: the services using it update; one that cannot be read is reported once. */
  async checkSecrets(): Promise<void> {
    const { host } = this;
    const result = await host.secretValues.refresh(host.config(), host.loaded());
    if (result.kind === 'failed') {
      if (!result.first) return;
      this.secretsError = result.error;
      this.error ??= result.error;
      host.log.error({ error: result.error }, 'a secret cannot be read; its replicas keep the value read before');
      await host.event({ kind: 'config-rejected', message: `a secret cannot be read; replicas keep the value read before: ${result.error}` });
      return;
    }
    if (this.secretsError !== null) {
      if (this.error === this.secretsError) this.error = null;
      this.secretsError = null;
      if (result.kind === 'recovered') await host.event({ kind: 'config-reloaded', message: 'every secret can be read again' });
    }
    if (result.kind !== 'changed') return;
    const changed = host.specs.sync();
    const what = [...result.secrets.map((name) => `secret ${name}`), ...(result.registries ? ['a registry credential'] : [])].join(', ');
    host.log.info({ secrets: result.secrets, registries: result.registries }, 'secret values changed');
    await host.event({ kind: 'config-reloaded', message: `${what} changed${changed.length ? `: updating ${changed.join(', ')}` : ''}` });
    host.specs.enqueueUpdates(changed);
  }
}
