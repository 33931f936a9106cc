/**
 * `otto cluster stop --down` on the nodes reached over SSH: on each, over one connection, makes sure the
 * node's agent is stopped (it would create the containers again), then removes every container labelled
 * otto.cluster=<cluster> and otto.node=<node> through the node's Docker engine (nodes[].docker_url), from
 * the uploaded probe program, so the node needs no docker CLI. Works with or without a control plane. The
 * nodes are done in parallel; one that cannot be reached does not keep the others from being cleaned.
 */
import { isSshNode } from '../config/nodes.js';
import type { NodeConfig, OttoConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { OTTO_VERSION } from '../version.js';
import { KnownHosts } from './known-hosts.js';
import { sshTarget } from './manager.js';
import { RemoteAgent, versionOnlyBundle } from './remote-agent.js';
import { SshConnection, type ConnectOptions } from './ssh-connection.js';

export interface RemoteRemoval {
  /** Containers removed, per node reached (also a node where some could not be removed). */
  removed: { node: string; count: number }[];
  /** Nodes not reached, or where some containers could not be removed; `error` without the node id. */
  failed: { node: string; error: string }[];
  /** Nodes whose agent was still running, and was stopped first. */
  agentsStopped: string[];
}

export interface RemoveRemoteOptions {
  workspaceDir: string;
  log: Logger;
  knownHosts?: KnownHosts;
  connect?: Partial<ConnectOptions>;
}

/** Removing needs no bundle: the probe and the pid file only, whose paths do not depend on the version. */
const NO_BUNDLE = versionOnlyBundle(OTTO_VERSION);

/** Removes the cluster's containers on every remote node of the config. */
export async function removeRemoteContainers(config: OttoConfig, options: RemoveRemoteOptions): Promise<RemoteRemoval> {
  const knownHosts = options.knownHosts ?? KnownHosts.forWorkspace(options.workspaceDir);
  const result: RemoteRemoval = { removed: [], failed: [], agentsStopped: [] };
  const remote = config.nodes.filter(isSshNode);
  await Promise.all(remote.map((node) => removeOn(node, config.cluster.name, knownHosts, options, result)));
  result.removed.sort((a, b) => a.node.localeCompare(b.node));
  result.failed.sort((a, b) => a.node.localeCompare(b.node));
  result.agentsStopped.sort();
  return result;
}

async function removeOn(node: NodeConfig, cluster: string, knownHosts: KnownHosts, options: RemoveRemoteOptions, result: RemoteRemoval): Promise<void> {
  const { log } = options;
  let conn: SshConnection | undefined;
  try {
    conn = await SshConnection.connect(sshTarget(node), { knownHosts, readyTimeoutMs: 10_000, keepaliveIntervalMs: 0, ...options.connect });
    const agent = new RemoteAgent(conn, node.id, cluster, NO_BUNDLE);
    const stopped = await agent.stop();
    if (stopped.wasRunning) {
      result.agentsStopped.push(node.id);
      log.info({ node: node.id, pid: stopped.pid }, 'remote agent still running: stopped it before removing the containers');
    }
    const { removed, error } = await agent.removeContainers(node.docker_url);
    result.removed.push({ node: node.id, count: removed });
    log.info({ node: node.id, removed }, 'removed the containers of the remote node');
    if (error) result.failed.push({ node: node.id, error });
  } catch (err) {
    const message = errorMessage(err);
    const error = message.startsWith(`${node.id}: `) ? message.slice(node.id.length + 2) : message;
    result.failed.push({ node: node.id, error });
    log.warn({ node: node.id, err: error }, 'cannot remove the containers of the remote node');
  } finally {
    conn?.close();
  }
}
