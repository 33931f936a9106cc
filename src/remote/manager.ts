/**
 * The remote equivalent of the AgentSupervisor: keeps one SSH connection per remote node, starts (or
 * keeps, or replaces) each node's agent, and stops them all on `otto cluster stop`. An agent runs
 * detached from its SSH connection: when the connection drops, the agent and its containers go on, and
 * the manager reconnects with backoff (then makes sure the agent still runs). While connected it checks
 * every `checkIntervalMs` that the agent is alive and starts it again if it died.
 */
import { isLocalNode } from '../config/nodes.js';
import type { NodeConfig, OttoConfig } from '../config/schema.js';
import { InfrastructureError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { OTTO_VERSION } from '../version.js';
import { KnownHosts } from './known-hosts.js';
import { redactUrl } from './mqtt-address.js';
import { RemoteAgent, localAgentBundle, type AgentBundle, type NodeFacts } from './remote-agent.js';
import { SshConnection, SshError, type ConnectOptions, type SshTarget } from './ssh-connection.js';

export type SshState = 'connected' | 'connecting' | 'disconnected' | 'reconnecting' | `failed: ${string}`;

export interface RemoteSettings {
  cluster: string;
  /** The broker URL remote agents get (remoteMqttUrl(config.mqtt)). */
  mqttUrl: string;
  /** metrics.interval */
  interval: string;
}

export interface RemoteNodeInfo {
  ssh_state: SshState;
  agent_pid: number | null;
  agent_version: string | null;
  arch: string | null;
  node_version: string | null;
  last_error: string | null;
}

export interface RemoteAgentManagerOptions {
  /** The .otto folder: its known_hosts is trusted besides ~/.ssh/known_hosts. */
  workspaceDir: string;
  log: Logger;
  bundle?: AgentBundle;
  knownHosts?: KnownHosts;
  connect?: Partial<ConnectOptions>;
  backoff?: { initialMs: number; maxMs: number };
  /** How often a connected node's agent is checked (and restarted if it died); 0 turns it off. */
  checkIntervalMs?: number;
}

interface Managed {
  node: NodeConfig;
  target: SshTarget;
  conn?: SshConnection;
  agent?: RemoteAgent;
  state: SshState;
  attempts: number;
  timer?: NodeJS.Timeout;
  checkTimer?: NodeJS.Timeout;
  facts?: NodeFacts;
  pid?: number;
  version?: string;
  lastError?: string;
  /** The current connect-and-start, if one runs. */
  work?: Promise<void>;
  removed?: boolean;
}

/**
 * Stops the agents of every remote node of a config without a running control plane (one that crashed
 * or was killed left them running): connects to each node, stops its agent, disconnects.
 */
export async function stopRemoteAgents(
  config: OttoConfig,
  workspaceDir: string,
  log: Logger,
): Promise<{ stopped: string[]; failed: { node: string; error: string }[] }> {
  const manager = new RemoteAgentManager({ workspaceDir, log });
  const remote = config.nodes.filter((node) => !isLocalNode(node));
  return manager.stopNodes(remote, config.cluster.name);
}

export function sshTarget(node: NodeConfig): SshTarget {
  return { nodeId: node.id, host: node.host, port: node.ssh?.port ?? 22, user: node.user ?? 'root', identity: node.ssh?.identity };
}

export class RemoteAgentManager {
  private readonly nodes = new Map<string, Managed>();
  private readonly knownHosts: KnownHosts;
  private bundle?: AgentBundle;
  private settings?: RemoteSettings;
  private stopping = false;
  private readonly backoff: { initialMs: number; maxMs: number };

  constructor(private readonly options: RemoteAgentManagerOptions) {
    this.knownHosts = options.knownHosts ?? KnownHosts.forWorkspace(options.workspaceDir);
    this.bundle = options.bundle;
    this.backoff = options.backoff ?? { initialMs: 1_000, maxMs: 30_000 };
  }

  private get log(): Logger {
    return this.options.log;
  }

  sshState(nodeId: string): SshState {
    return this.nodes.get(nodeId)?.state ?? 'disconnected';
  }

  agentPid(nodeId: string): number | undefined {
    return this.nodes.get(nodeId)?.pid;
  }

  /** What `cluster status` / `node list` show for a remote node. */
  info(nodeId: string): RemoteNodeInfo | undefined {
    const managed = this.nodes.get(nodeId);
    if (!managed) return undefined;
    return {
      ssh_state: managed.state,
      agent_pid: managed.pid ?? null,
      agent_version: managed.version ?? null,
      arch: managed.facts?.arch ?? null,
      node_version: managed.facts?.nodeVersion ?? null,
      last_error: managed.lastError ?? null,
    };
  }

  /**
   * Makes every given remote node run its agent; stops the agents of nodes no longer given. Resolves
   * once each node has its agent running or is retrying in the background (unreachable); rejects with
   * every node that needs the user (unknown or changed host key, refused key, no Node.js...).
   */
  async ensure(nodes: NodeConfig[], settings: RemoteSettings): Promise<void> {
    this.stopping = false;
    if (nodes.length > 0) this.bundle ??= localAgentBundle();
    const settingsChanged = this.settings !== undefined && JSON.stringify(this.settings) !== JSON.stringify(settings);
    this.settings = settings;
    const ids = new Set(nodes.map((n) => n.id));
    for (const [id, managed] of this.nodes) {
      if (!ids.has(id)) {
        this.nodes.delete(id);
        managed.removed = true;
        await this.stopNode(managed).catch((err) => this.log.warn({ node: id, err: errorMessage(err) }, 'cannot stop the agent of a removed node'));
      }
    }
    const failures: InfrastructureError[] = [];
    await Promise.all(
      nodes.map(async (node) => {
        let managed = this.nodes.get(node.id);
        const target = sshTarget(node);
        if (managed && JSON.stringify(managed.target) !== JSON.stringify(target)) {
          managed.conn?.close();
          managed.conn = undefined;
          managed.agent = undefined;
        }
        if (!managed) {
          managed = { node, target, state: 'connecting', attempts: 0 };
          this.nodes.set(node.id, managed);
        } else if (!settingsChanged && managed.agent && managed.state === 'connected' && JSON.stringify(managed.node) === JSON.stringify(node)) {
          return;
        }
        managed.node = node;
        managed.target = target;
        try {
          await this.connectAndStart(managed);
        } catch (err) {
          if (err instanceof SshError && err.transient) {
            this.scheduleReconnect(managed);
          } else {
            failures.push(err instanceof InfrastructureError ? err : new InfrastructureError(`${node.id}: ${errorMessage(err)}`));
            this.scheduleReconnect(managed, true);
          }
        }
      }),
    );
    if (failures.length) {
      throw new InfrastructureError(failures.map((f) => f.message).join('; '), failures.map((f) => f.hint).filter(Boolean).join('; ') || undefined);
    }
  }

  /**
   * Stops every remote agent (containers keep running) and closes the connections. `stopped` names the
   * nodes whose agent was running; `failed` those that could not be reached or whose agent would not stop.
   */
  async stopAll(): Promise<{ stopped: string[]; failed: { node: string; error: string }[] }> {
    this.stopping = true;
    const stopped: string[] = [];
    const failed: { node: string; error: string }[] = [];
    await Promise.all(
      [...this.nodes.values()].map(async (managed) => {
        try {
          if (await this.stopNode(managed)) stopped.push(managed.node.id);
        } catch (err) {
          failed.push({ node: managed.node.id, error: errorMessage(err) });
          this.log.warn({ node: managed.node.id, err: errorMessage(err) }, 'cannot stop the remote agent; it keeps running');
        }
      }),
    );
    this.nodes.clear();
    return { stopped: stopped.sort(), failed: failed.sort((a, b) => a.node.localeCompare(b.node)) };
  }

  /** Stops the agents of these nodes, connecting to each (for a manager that did not start them). */
  async stopNodes(nodes: NodeConfig[], cluster: string): Promise<{ stopped: string[]; failed: { node: string; error: string }[] }> {
    this.settings ??= { cluster, mqttUrl: '', interval: '5s' };
    for (const node of nodes) {
      if (!this.nodes.has(node.id)) this.nodes.set(node.id, { node, target: sshTarget(node), state: 'disconnected', attempts: 0 });
    }
    return this.stopAll();
  }

  /** Closes the connections and timers, leaving the agents running (e.g. before a control plane restart). */
  detach(): void {
    this.stopping = true;
    for (const managed of this.nodes.values()) this.release(managed);
    this.nodes.clear();
  }

  private release(managed: Managed): void {
    clearTimeout(managed.timer);
    clearInterval(managed.checkTimer);
    managed.timer = undefined;
    managed.checkTimer = undefined;
    const conn = managed.conn;
    managed.conn = undefined;
    managed.agent = undefined;
    conn?.removeAllListeners('close');
    conn?.close();
    managed.state = 'disconnected';
  }

  /** Stops the node's agent; true if one was running. */
  private async stopNode(managed: Managed): Promise<boolean> {
    clearTimeout(managed.timer);
    clearInterval(managed.checkTimer);
    await managed.work?.catch(() => undefined);
    try {
      let agent = managed.agent;
      if (!agent || managed.conn?.isClosed) {
        // Not connected now: one attempt to reach the node, so that no agent is left behind.
        const conn = await this.connect(managed.target, { readyTimeoutMs: 10_000 });
        managed.conn = conn;
        // Stopping needs no bundle: only the pid file, whose path does not depend on the version.
        const bundle = this.bundle ?? { version: OTTO_VERSION, path: '', sha256: '', id: OTTO_VERSION };
        agent = new RemoteAgent(conn, managed.node.id, this.settings?.cluster ?? 'default', bundle);
      }
      const result = await agent.stop();
      if (result.wasRunning) this.log.info({ node: managed.node.id, pid: result.pid }, 'remote agent stopped');
      managed.pid = undefined;
      return result.wasRunning;
    } finally {
      this.release(managed);
    }
  }

  private connect(target: SshTarget, extra: Partial<ConnectOptions> = {}): Promise<SshConnection> {
    return SshConnection.connect(target, { knownHosts: this.knownHosts, ...this.options.connect, ...extra });
  }

  private connectAndStart(managed: Managed): Promise<void> {
    const work = this.startOn(managed).catch((err: unknown) => {
      managed.lastError = errorMessage(err);
      const transient = err instanceof SshError && err.transient;
      managed.state = transient ? 'reconnecting' : `failed: ${managed.lastError}`;
      throw err;
    });
    managed.work = work.catch(() => undefined);
    return work;
  }

  private async startOn(managed: Managed): Promise<void> {
    const settings = this.settings!;
    const bundle = this.bundle!;
    managed.state = managed.attempts > 0 ? 'reconnecting' : 'connecting';
    let conn = managed.conn;
    if (!conn || conn.isClosed) {
      conn = await this.connect(managed.target);
      managed.conn = conn;
      managed.agent = new RemoteAgent(conn, managed.node.id, settings.cluster, bundle);
      const opened = conn;
      conn.once('close', () => this.onClose(managed, opened));
    }
    const agent = managed.agent!;
    const result = await agent.start({ cluster: settings.cluster, mqttUrl: settings.mqttUrl, interval: settings.interval, dockerUrl: managed.node.docker_url });
    managed.facts = await agent.facts();
    managed.pid = result.pid;
    managed.version = bundle.version;
    managed.state = 'connected';
    managed.attempts = 0;
    managed.lastError = undefined;
    this.log.info(
      { node: managed.node.id, pid: result.pid, action: result.action, previous: result.previous, version: bundle.id, arch: managed.facts.arch, mqtt: redactUrl(settings.mqttUrl) },
      result.action === 'kept' ? 'remote agent already running' : result.action === 'replaced' ? 'remote agent replaced by a newer version' : 'remote agent started',
    );
    this.scheduleCheck(managed);
  }

  private onClose(managed: Managed, conn: SshConnection): void {
    if (managed.conn !== conn) return;
    managed.conn = undefined;
    managed.agent = undefined;
    clearInterval(managed.checkTimer);
    if (this.stopping || managed.removed) {
      managed.state = 'disconnected';
      return;
    }
    this.log.warn({ node: managed.node.id }, 'SSH connection lost; the agent keeps running; reconnecting');
    this.scheduleReconnect(managed);
  }

  /** Retries with exponential backoff; after a failure that needs the user, at the slowest pace. */
  private scheduleReconnect(managed: Managed, needsUser = false): void {
    if (this.stopping || managed.removed) return;
    clearTimeout(managed.timer);
    managed.attempts++;
    if (!needsUser) managed.state = 'reconnecting';
    const delay = needsUser ? this.backoff.maxMs : Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (managed.attempts - 1));
    managed.timer = setTimeout(() => {
      if (this.stopping || managed.removed) return;
      this.connectAndStart(managed).then(
        () => this.log.info({ node: managed.node.id }, 'SSH connection back'),
        (err) => {
          const transient = err instanceof SshError && err.transient;
          this.log.warn({ node: managed.node.id, err: errorMessage(err), attempt: managed.attempts }, 'SSH reconnect failed');
          this.scheduleReconnect(managed, !transient);
        },
      );
    }, delay);
    managed.timer.unref?.();
  }

  private scheduleCheck(managed: Managed): void {
    clearInterval(managed.checkTimer);
    const every = this.options.checkIntervalMs ?? 15_000;
    if (!every) return;
    managed.checkTimer = setInterval(() => {
      const agent = managed.agent;
      if (!agent || this.stopping || managed.work === undefined) return;
      void agent.status().then(
        async (status) => {
          if (status.running || this.stopping || managed.agent !== agent) return;
          this.log.warn({ node: managed.node.id, pid: managed.pid }, 'remote agent died; starting it again');
          await this.connectAndStart(managed).catch((err) => this.log.error({ node: managed.node.id, err: errorMessage(err) }, 'cannot restart the remote agent'));
        },
        () => undefined,
      );
    }, every);
    managed.checkTimer.unref?.();
  }
}
