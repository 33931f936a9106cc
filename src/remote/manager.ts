/**
 * The remote equivalent of the AgentSupervisor: keeps one SSH connection per remote node, starts (or
 * keeps, or replaces) each node's agent, and stops them all on `otto cluster stop`. An agent runs
 * detached from its SSH connection: when the connection drops, the agent and its containers go on, and
 * the manager reconnects with backoff (then makes sure the agent still runs). While connected it checks
 * every `checkIntervalMs` that the agent is alive and starts it again if it died.
 *
 * Provisioning runs in the background: `ensure` can return at once (the control loop must not wait for
 * an unreachable node) and every attempt's outcome goes to `onNodeResult`. Every start, check and stop
 * of one node's agent runs in that node's queue, after the previous one finished, so that an agent is
 * never started twice at once; a stop cuts short a start still connecting and runs right after it.
 */
import { isSshNode } from '../config/nodes.js';
import type { NodeConfig, OttoConfig } from '../config/schema.js';
import { InfrastructureError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { OTTO_VERSION } from '../version.js';
import { KnownHosts } from './known-hosts.js';
import { redactUrl, withCredentials } from './mqtt-address.js';
import { RemoteAgent, localAgentBundle, versionOnlyBundle, type AgentBundle, type NodeFacts, type RemoteAgentSettings, type StartAction } from './remote-agent.js';
import { SerialQueues } from './serial-queue.js';
import { SshConnection, SshError, type ConnectOptions, type SshTarget } from './ssh-connection.js';

export type SshState = 'connected' | 'connecting' | 'disconnected' | 'reconnecting' | `failed: ${string}`;

export interface RemoteSettings {
  cluster: string;
  /** The broker URL remote agents get (remoteMqttUrl(config)). */
  mqttUrl: string;
  /** PEM of the CA remote agents verify the broker with (mqtts); uploaded beside their credential. */
  ca?: string;
  /** Each node's broker credential; it reaches the node in a 0600 file, never on a command line. */
  credentials?: Record<string, { username: string; password: string }>;
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

/**
 * The outcome of one attempt to make a node run its agent. `attempt` counts the node's attempts (1 for
 * the first); `changed` is false when the outcome repeats the previous one (the same error again, or ok
 * again), so that a caller can record only what changed.
 */
export type NodeResult =
  | { ok: true; pid: number; action: StartAction; attempt: number; changed: boolean }
  | {
      ok: false;
      error: string;
      hint?: string;
      /** Host key unknown or changed, key refused, no Node.js...: retrying alone will not help. */
      needsUser: boolean;
      attempt: number;
      changed: boolean;
    };

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
  /** Told the outcome of every attempt to start a node's agent (first ones, retries, restarts). */
  onNodeResult?: (nodeId: string, result: NodeResult) => void;
}

export interface EnsureOptions {
  /**
   * How long `ensure` waits for the first attempt of each node it (re)starts: 0 returns at once; left
   * out, it waits until each first attempt has finished. Nodes whose first attempt failed within that
   * time on something that needs the user make `ensure` reject; the others go on in the background.
   */
  waitFirstAttemptMs?: number;
}

interface Managed {
  node: NodeConfig;
  target: SshTarget;
  conn?: SshConnection;
  agent?: RemoteAgent;
  state: SshState;
  /** Attempts made, for NodeResult.attempt. */
  attempts: number;
  /** Failures in a row, for the backoff. */
  failures: number;
  timer?: NodeJS.Timeout;
  checkTimer?: NodeJS.Timeout;
  facts?: NodeFacts;
  pid?: number;
  version?: string;
  lastError?: string;
  /** The start queued or running: a request to start the node joins it rather than queueing another. */
  pendingStart?: { promise: Promise<NodeResult>; running: boolean };
  /** Cuts short the running start while it connects (the one step that is safe to abandon). */
  abort?: AbortController;
  /** Set once its agent is to stop (stopAll, node removed) or the manager let go (detach): no more starts. */
  retired?: boolean;
  lastReported?: string;
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
  const remote = config.nodes.filter(isSshNode);
  return manager.stopNodes(remote, config.cluster.name);
}

/** What one remote node's agent is started with: the cluster's settings with the node's own credential. */
export function agentSettingsFor(settings: RemoteSettings, node: NodeConfig): RemoteAgentSettings {
  const mqttUrl = withCredentials(settings.mqttUrl, settings.credentials?.[node.id]);
  return { cluster: settings.cluster, mqttUrl, interval: settings.interval, dockerUrl: node.docker_url, ...(settings.ca ? { ca: settings.ca } : {}) };
}

export function sshTarget(node: NodeConfig): SshTarget {
  // Only SSH nodes get here, and an SSH node has a host (validation).
  return { nodeId: node.id, host: node.host ?? '', port: node.ssh?.port ?? 22, user: node.user ?? 'root', identity: node.ssh?.identity };
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Time bound of the one attempt to reach a node when stopping its agent. */
const STOP_CONNECT_TIMEOUT_MS = 10_000;

export class RemoteAgentManager {
  private readonly nodes = new Map<string, Managed>();
  /** One queue per node id, kept across Managed records (a node removed and added again shares it). */
  private readonly queues = new SerialQueues();
  private readonly knownHosts: KnownHosts;
  private bundle?: AgentBundle;
  private settings?: RemoteSettings;
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
   * Makes every given remote node run its agent; stops the agents of nodes no longer given. A node
   * already connected with the same config and settings is left alone; the others get an attempt now
   * (joining one already under way), and retry in the background after a failure. Waits as
   * `options.waitFirstAttemptMs` says, then rejects with every node whose first attempt needs the user
   * (unknown or changed host key, refused key, no Node.js...).
   */
  async ensure(nodes: NodeConfig[], settings: RemoteSettings, options: EnsureOptions = {}): Promise<void> {
    if (nodes.length > 0) this.bundle ??= localAgentBundle();
    const settingsChanged = this.settings !== undefined && !sameJson(this.settings, settings);
    this.settings = settings;
    const wanted = new Set(nodes.map((n) => n.id));
    const waits: Promise<unknown>[] = [];
    for (const [id, managed] of this.nodes) {
      if (wanted.has(id)) continue;
      this.nodes.delete(id);
      waits.push(this.retire(managed).catch((err) => this.log.warn({ node: id, err: errorMessage(err) }, 'cannot stop the agent of a removed node')));
    }
    const outcomes = new Map<string, NodeResult>();
    for (const node of nodes) {
      let managed = this.nodes.get(node.id);
      const changed = !managed || managed.retired || settingsChanged || !sameJson(managed.node, node);
      if (!managed || managed.retired) {
        managed = { node, target: sshTarget(node), state: 'connecting', attempts: 0, failures: 0 };
        this.nodes.set(node.id, managed);
      } else if (!changed && managed.state === 'connected' && managed.agent) {
        continue;
      }
      managed.node = node;
      managed.target = sshTarget(node);
      // An unchanged node joins even a running attempt; a changed one needs an attempt with the new config.
      waits.push(this.requestStart(managed, !changed).then((result) => outcomes.set(node.id, result)));
    }
    const waitMs = options.waitFirstAttemptMs ?? Infinity;
    if (waitMs <= 0 || waits.length === 0) return;
    await withinMs(Promise.all(waits), waitMs);
    // Read once the wait is over: attempts still under way are left out.
    const failures = nodes.flatMap((node) => {
      const result = outcomes.get(node.id);
      return result && !result.ok && result.needsUser ? [result] : [];
    });
    if (failures.length) {
      throw new InfrastructureError(failures.map((f) => f.error).join('; '), failures.flatMap((f) => (f.hint ? [f.hint] : [])).join('; ') || undefined);
    }
  }

  /**
   * Stops every remote agent (containers keep running) and closes the connections. A start under way
   * is cut short if still connecting, else finished first, then stopped. `stopped` names the nodes
   * whose agent was running; `failed` those that could not be reached or whose agent would not stop.
   */
  async stopAll(): Promise<{ stopped: string[]; failed: { node: string; error: string }[] }> {
    const stopped: string[] = [];
    const failed: { node: string; error: string }[] = [];
    await Promise.all(
      [...this.nodes.values()].map(async (managed) => {
        const id = managed.node.id;
        try {
          if (await this.retire(managed)) stopped.push(id);
        } catch (err) {
          failed.push({ node: id, error: errorMessage(err) });
          this.log.warn({ node: id, err: errorMessage(err) }, 'cannot stop the remote agent; it keeps running');
        } finally {
          if (this.nodes.get(id) === managed) this.nodes.delete(id);
        }
      }),
    );
    return { stopped: stopped.sort(), failed: failed.sort((a, b) => a.node.localeCompare(b.node)) };
  }

  /** Stops the agents of these nodes, connecting to each (for a manager that did not start them). */
  async stopNodes(nodes: NodeConfig[], cluster: string): Promise<{ stopped: string[]; failed: { node: string; error: string }[] }> {
    this.settings ??= { cluster, mqttUrl: '', interval: '5s' };
    for (const node of nodes) {
      if (!this.nodes.has(node.id)) this.nodes.set(node.id, { node, target: sshTarget(node), state: 'disconnected', attempts: 0, failures: 0 });
    }
    return this.stopAll();
  }

  /** Closes the connections and timers, leaving the agents running (e.g. before a control plane restart). */
  detach(): void {
    for (const managed of this.nodes.values()) {
      managed.retired = true;
      managed.abort?.abort();
      this.release(managed);
    }
    this.nodes.clear();
  }

  /** No more starts for this node: cuts short a start still connecting, then stops the agent in its turn. */
  private retire(managed: Managed): Promise<boolean> {
    managed.retired = true;
    clearTimeout(managed.timer);
    clearInterval(managed.checkTimer);
    managed.abort?.abort();
    return this.queues.run(managed.node.id, () => this.stopNode(managed));
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

  /** Stops the node's agent; true if one was running. Runs in the node's queue. */
  private async stopNode(managed: Managed): Promise<boolean> {
    try {
      let conn = managed.conn?.isClosed ? undefined : managed.conn;
      if (!conn) {
        // Not connected now: one attempt to reach the node, so that no agent is left behind.
        const readyTimeoutMs = Math.min(STOP_CONNECT_TIMEOUT_MS, this.options.connect?.readyTimeoutMs ?? STOP_CONNECT_TIMEOUT_MS);
        conn = await this.connect(managed.target, { readyTimeoutMs });
        managed.conn = conn;
      }
      // Stopping needs no bundle: only the pid file, whose path does not depend on the version.
      const bundle = this.bundle ?? versionOnlyBundle(OTTO_VERSION);
      const agent = managed.agent?.conn === conn ? managed.agent : new RemoteAgent(conn, managed.node.id, this.settings?.cluster ?? 'default', bundle);
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

  /** Connects unless `signal` aborts first; a connection that comes after the abort is closed. */
  private connectUnlessAborted(target: SshTarget, signal: AbortSignal): Promise<SshConnection> {
    const givenUp = () => new SshError(`${target.nodeId}: connection given up: the agent is being stopped`, undefined, 'closed');
    if (signal.aborted) return Promise.reject(givenUp());
    const connecting = this.connect(target);
    return new Promise<SshConnection>((resolve, reject) => {
      const onAbort = () => reject(givenUp());
      signal.addEventListener('abort', onAbort, { once: true });
      connecting.then(
        (conn) => {
          signal.removeEventListener('abort', onAbort);
          if (signal.aborted) conn.close();
          else resolve(conn);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  /**
   * Queues an attempt to start the node's agent, or joins the one queued (or, with `joinRunning`, the
   * one running). Never rejects: the outcome is the NodeResult.
   */
  private requestStart(managed: Managed, joinRunning: boolean): Promise<NodeResult> {
    const pending = managed.pendingStart;
    if (pending && (!pending.running || joinRunning)) return pending.promise;
    clearTimeout(managed.timer);
    managed.timer = undefined;
    const entry = { running: false } as { promise: Promise<NodeResult>; running: boolean };
    entry.promise = this.queues.run(managed.node.id, async () => {
      entry.running = true;
      try {
        return await this.attemptStart(managed);
      } finally {
        if (managed.pendingStart === entry) managed.pendingStart = undefined;
      }
    });
    managed.pendingStart = entry;
    return entry.promise;
  }

  /** One attempt (in the node's queue): records and reports its outcome, and schedules what follows. */
  private async attemptStart(managed: Managed): Promise<NodeResult> {
    const id = managed.node.id;
    if (managed.retired) return { ok: false, error: `${id}: not started: its agent is being stopped`, needsUser: false, attempt: managed.attempts, changed: false };
    managed.attempts++;
    const abort = new AbortController();
    managed.abort = abort;
    try {
      const { pid, action } = await this.startOn(managed, abort.signal);
      if (managed.retired) return { ok: true, pid, action, attempt: managed.attempts, changed: false };
      if (managed.failures > 0) this.log.info({ node: id, after: managed.failures }, 'SSH connection back');
      managed.failures = 0;
      managed.lastError = undefined;
      this.scheduleCheck(managed);
      return this.report(managed, { ok: true, pid, action, attempt: managed.attempts, changed: true });
    } catch (err) {
      const error = errorMessage(err);
      if (managed.retired) return { ok: false, error, needsUser: false, attempt: managed.attempts, changed: false };
      const needsUser = !(err instanceof SshError && err.transient);
      managed.lastError = error;
      managed.state = needsUser ? `failed: ${error}` : 'reconnecting';
      const retryInMs = this.scheduleReconnect(managed, needsUser);
      this.log.warn({ node: id, err: error, attempt: managed.attempts, retryInMs }, 'cannot start the remote agent');
      const hint = err instanceof InfrastructureError ? err.hint : undefined;
      return this.report(managed, { ok: false, error, hint, needsUser, attempt: managed.attempts, changed: true });
    } finally {
      if (managed.abort === abort) managed.abort = undefined;
    }
  }

  private async startOn(managed: Managed, signal: AbortSignal): Promise<{ pid: number; action: StartAction }> {
    const settings = this.settings!;
    const bundle = this.bundle!;
    let conn = managed.conn;
    if (conn && (conn.isClosed || !sameJson(conn.target, managed.target))) {
      // nodes[].host, port, user or key changed: a new connection.
      conn.removeAllListeners('close');
      conn.close();
      managed.conn = undefined;
      managed.agent = undefined;
      conn = undefined;
    }
    if (!conn) {
      managed.state = managed.failures > 0 ? 'reconnecting' : 'connecting';
      const opened = await this.connectUnlessAborted(managed.target, signal);
      conn = opened;
      managed.conn = opened;
      managed.agent = undefined;
      opened.once('close', () => this.onClose(managed, opened));
    }
    if (!managed.agent || managed.agent.cluster !== settings.cluster || managed.agent.bundle !== bundle) {
      managed.agent = new RemoteAgent(conn, managed.node.id, settings.cluster, bundle);
    }
    // Past this point the start runs to its end: an agent cut off between its launch and its pid file
    // would be out of reach of the stop that follows.
    const agent = managed.agent;
    const result = await agent.start(agentSettingsFor(settings, managed.node));
    managed.pid = result.pid;
    managed.facts = await agent.facts();
    managed.version = bundle.version;
    managed.state = 'connected';
    this.log.info(
      { node: managed.node.id, pid: result.pid, action: result.action, previous: result.previous, version: bundle.id, arch: managed.facts.arch, mqtt: redactUrl(settings.mqttUrl) },
      result.action === 'kept' ? 'remote agent already running' : result.action === 'replaced' ? 'remote agent replaced by a newer version' : 'remote agent started',
    );
    return { pid: result.pid, action: result.action };
  }

  private report(managed: Managed, result: NodeResult): NodeResult {
    const key = result.ok ? 'ok' : `error: ${result.error}`;
    const full = { ...result, changed: managed.lastReported !== key };
    managed.lastReported = key;
    try {
      this.options.onNodeResult?.(managed.node.id, full);
    } catch (err) {
      this.log.error({ node: managed.node.id, err: errorMessage(err) }, 'onNodeResult failed');
    }
    return full;
  }

  private onClose(managed: Managed, conn: SshConnection): void {
    if (managed.conn !== conn) return;
    managed.conn = undefined;
    managed.agent = undefined;
    clearInterval(managed.checkTimer);
    if (managed.retired) {
      managed.state = 'disconnected';
      return;
    }
    this.log.warn({ node: managed.node.id }, 'SSH connection lost; the agent keeps running; reconnecting');
    managed.state = 'reconnecting';
    // A start under way fails on the closed connection and schedules the retry itself.
    if (!managed.pendingStart) this.scheduleReconnect(managed, false);
  }

  /**
   * Retries with exponential backoff; after a failure that needs the user, at the slowest pace (the user
   * may fix it without telling Otto). Returns the delay.
   */
  private scheduleReconnect(managed: Managed, needsUser: boolean): number | undefined {
    if (managed.retired) return undefined;
    clearTimeout(managed.timer);
    managed.failures++;
    const delay = needsUser ? this.backoff.maxMs : Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (managed.failures - 1));
    managed.timer = setTimeout(() => {
      managed.timer = undefined;
      if (!managed.retired) void this.requestStart(managed, true);
    }, delay);
    managed.timer.unref?.();
    return delay;
  }

  /** Checks, in the node's queue, that the agent still runs; queues a start if it died. */
  private scheduleCheck(managed: Managed): void {
    clearInterval(managed.checkTimer);
    const every = this.options.checkIntervalMs ?? 15_000;
    if (!every) return;
    managed.checkTimer = setInterval(() => {
      const id = managed.node.id;
      // Anything queued for the node (a start, a stop) settles the agent's fate anyway.
      if (managed.retired || !managed.agent || this.queues.pending(id) > 0) return;
      void this.queues.run(id, async () => {
        const agent = managed.agent;
        if (!agent || managed.retired) return;
        const status = await agent.status().catch(() => undefined);
        if (!status || status.running || managed.retired || managed.agent !== agent) return;
        this.log.warn({ node: id, pid: managed.pid }, 'remote agent died; starting it again');
        void this.requestStart(managed, true);
      });
    }, every);
    managed.checkTimer.unref?.();
  }
}

/** Waits for `promise`, at most `ms` (Infinity: no bound). */
async function withinMs(promise: Promise<unknown>, ms: number): Promise<void> {
  if (!Number.isFinite(ms)) {
    await promise;
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
