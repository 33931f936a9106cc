/**
 * Who may be on the broker, and as whom: the identity each client proves (control plane, node, pool,
 * reader), the nodes of the running config (otto.yaml's and those that joined through its pools), and the
 * changes to them: a device joining, a node removed or revoked, a credential rotated.
 */
import { nodeKind } from '../config/nodes.js';
import type { OttoConfig } from '../config/schema.js';
import { NotFoundError, UsageError } from '../errors.js';
import type { ClusterEvent } from '../http/schemas.js';
import type { Logger } from '../log.js';
import { PRIVILEGED_MQTT_USER, clientIdAllowed, ownClientId, poolUsername, type BrokerIdentity } from '../protocol/broker-auth.js';
import type { Credentials } from '../security/credentials.js';
import { tokenMatches } from '../workspace.js';
import type { EmbeddedBroker, RefusalKind } from './broker.js';

export interface NodeAccessHost {
  /** otto.yaml as loaded (its nodes and pools). */
  fileConfig(): OttoConfig;
  /** The API token: the control plane's broker password. */
  token(): string;
  credentials(): Credentials;
  broker(): EmbeddedBroker | undefined;
  log: Logger;
  event(event: Omit<ClusterEvent, 'id' | 'time'>): Promise<void>;
  /** The running config's nodes changed (joined, removed): registry, lifecycles and plan follow. */
  nodesChanged(): Promise<void>;
  /** A node got a new credential: its agent (local, or over SSH) is started again with it. */
  reprovision(nodeId: string, kind: 'local' | 'ssh'): Promise<void>;
}

export class NodeAccess {
  private effective!: OttoConfig;
  /** Refusals by the embedded broker, by kind; the last time each client's refusal was logged. */
  readonly refusals: Record<RefusalKind, number> = { connect: 0, publish: 0, subscribe: 0, oversize: 0 };
  private readonly refusalLogged = new Map<string, number>();

  constructor(private readonly host: NodeAccessHost) {}

  /** The running config: otto.yaml's, with the nodes that joined through its pools. */
  get config(): OttoConfig {
    return this.effective;
  }

  /** otto.yaml's nodes, and those that joined through one of its pools (with the pool's labels). */
  refresh(): void {
    const file = this.host.fileConfig();
    const pools = new Map(file.node_pools.map((pool) => [pool.name, pool]));
    const declared = new Set(file.nodes.map((n) => n.id));
    const joined = Object.entries(this.host.credentials().joinedNodes())
      .filter(([id, record]) => pools.has(record.pool) && !declared.has(id))
      .map(([id, record]) => ({ id, join: true, labels: { ...pools.get(record.pool)!.labels }, docker_url: 'unix:///var/run/docker.sock' }));
    this.effective = joined.length ? { ...file, nodes: [...file.nodes, ...joined] } : file;
  }

  /** The identity these credentials prove on the embedded broker with this client id, or undefined. */
  identify(clientId: string, username: string | undefined, password: string | undefined): BrokerIdentity | undefined {
    if (!username || password === undefined) return undefined;
    const credentials = this.host.credentials();
    let identity: BrokerIdentity | undefined;
    let ownId: string | undefined;
    const pool = this.host.fileConfig().node_pools.find((p) => poolUsername(p.name) === username);
    if (username === PRIVILEGED_MQTT_USER) {
      identity = tokenMatches(password, this.host.token()) ? { kind: 'control-plane' } : undefined;
    } else if (pool) {
      const secret = credentials.poolSecret(pool.name);
      identity = secret !== undefined && tokenMatches(password, secret) ? { kind: 'pool', pool: pool.name } : undefined;
    } else {
      const reader = this.config.mqtt.readers.find((r) => r.username === username);
      if (reader) {
        identity = tokenMatches(password, reader.password) ? { kind: 'reader', name: username } : undefined;
      } else {
        const expected = this.config.nodes.some((n) => n.id === username) ? credentials.password(username) : undefined;
        identity = expected !== undefined && tokenMatches(password, expected) ? { kind: 'node', node: username } : undefined;
        if (identity) ownId = ownClientId('agent', this.config.cluster.name, username, expected!);
      }
    }
    // A client id it may not use could push another client off the broker.
    return identity && clientIdAllowed(identity, clientId, ownId) ? identity : undefined;
  }

  refused(kind: RefusalKind, clientId: string, detail: string): void {
    this.refusals[kind]++;
    // A client that keeps trying is logged once every 10 s, not at every attempt.
    const key = `${kind}:${clientId}`;
    const now = Date.now();
    if (now - (this.refusalLogged.get(key) ?? 0) < 10_000) return;
    this.refusalLogged.set(key, now);
    if (this.refusalLogged.size > 10_000) this.refusalLogged.clear();
    this.host.log.warn({ kind, clientId, detail }, 'the broker refused a client');
  }

  /** A node's credential no longer works: it is forgotten and its connections are closed. */
  async revoke(nodeId: string): Promise<void> {
    await this.host.credentials().revoke(nodeId);
    const closed = this.host.broker()?.disconnect((identity) => identity.kind === 'node' && identity.node === nodeId) ?? 0;
    this.host.log.info({ node: nodeId, closed }, 'credential revoked');
  }

  /** A device joined through a pool: it is a node now, placed like any other. */
  async joined(nodeId: string, pool: string): Promise<void> {
    this.refresh();
    await this.host.event({ kind: 'node-joined', node: nodeId, message: `node ${nodeId} joined through pool ${pool}` });
    await this.host.nodesChanged();
  }

  /** Forgets a node that joined through a pool: its credential is revoked, it is refused from now on. */
  async remove(nodeId: string): Promise<{ node: string; removed_at: string }> {
    if (this.host.fileConfig().nodes.some((n) => n.id === nodeId)) {
      throw new UsageError(`node ${nodeId} is declared in otto.yaml`, 'remove it from otto.yaml: its credential is revoked when the control plane reloads the file');
    }
    if (!this.host.credentials().joinedNodes()[nodeId]) throw new NotFoundError(`no such node: ${nodeId}`, `nodes: ${this.config.nodes.map((n) => n.id).join(', ')}`);
    await this.revoke(nodeId);
    this.refresh();
    await this.host.event({ kind: 'node-removed', node: nodeId, message: `node ${nodeId} removed: its credential is revoked, its replicas go to other nodes` });
    await this.host.nodesChanged();
    return { node: nodeId, removed_at: new Date().toISOString() };
  }

  /** A new credential for one node (or a pool's join token); its agent gets it and reconnects; no other node is touched. */
  async rotate(nodeId: string): Promise<{ node: string; rotated_at: string }> {
    const credentials = this.host.credentials();
    const node = this.config.nodes.find((n) => n.id === nodeId);
    if (!node && this.host.fileConfig().node_pools.some((p) => p.name === nodeId)) {
      // A pool's bootstrap token: devices that hold the old one can no longer join.
      await credentials.rotatePool(nodeId);
      this.host.broker()?.disconnect((identity) => identity.kind === 'pool' && identity.pool === nodeId);
      await this.host.event({ kind: 'credential-rotated', message: `the join token of pool ${nodeId} was rotated: the old one is refused; nodes that joined keep their own credentials` });
      return { node: nodeId, rotated_at: new Date().toISOString() };
    }
    if (!node) throw new NotFoundError(`no such node: ${nodeId}`, `nodes: ${this.config.nodes.map((n) => n.id).join(', ')}`);
    const joined = credentials.joinedNodes()[nodeId];
    if (joined) {
      throw new UsageError(`node ${nodeId} joined through pool ${joined.pool}: it has no credential Otto can hand it again`, `remove it (\`otto node remove ${nodeId}\`) and let it join again`);
    }
    await credentials.rotate(nodeId);
    this.host.broker()?.disconnect((identity) => identity.kind === 'node' && identity.node === nodeId);
    const kind = nodeKind(node);
    if (kind !== 'joined') await this.host.reprovision(nodeId, kind);
    // A node that dials in gets the new credential only in a new join token, run on the device.
    const how = kind === 'joined' ? `its old join token is refused now: run the new one (\`otto node join-command ${nodeId}\`) on the device` : 'its agent reconnected with the new one';
    await this.host.event({ kind: 'credential-rotated', node: nodeId, message: `the broker credential of node ${nodeId} was rotated; ${how}` });
    return { node: nodeId, rotated_at: new Date().toISOString() };
  }
}
