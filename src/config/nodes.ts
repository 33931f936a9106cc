import { hostname } from 'node:os';
import type { NodeConfig } from './schema.js';

const localHosts = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0']);

/**
 * How the control plane reaches a node's agent: `local` runs it beside the control plane, `ssh` starts it
 * over SSH, `joined` is a node that dials in by itself (from behind NAT, with a join token).
 */
export type NodeKind = 'local' | 'ssh' | 'joined';

export function isLocalHost(host: string | undefined): boolean {
  return host === undefined || localHosts.has(host) || host === hostname();
}

export function nodeKind(node: Pick<NodeConfig, 'host' | 'user' | 'join'>): NodeKind {
  if (node.join) return 'joined';
  if (isLocalHost(node.host)) return 'local';
  // A remote host with no user and no join is refused by validation (consistency.ts).
  return node.user ? 'ssh' : 'local';
}

/** Its agent runs on this machine, beside the control plane. */
export function isLocalNode(node: NodeConfig): boolean {
  return nodeKind(node) === 'local';
}

/** Reached over SSH: the control plane uploads and starts its agent. */
export function isSshNode(node: NodeConfig): boolean {
  return nodeKind(node) === 'ssh';
}
