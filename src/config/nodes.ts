import { hostname } from 'node:os';
import type { NodeConfig } from './schema.js';

const localHosts = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0']);

/** A node is local when it is this machine or has no SSH user (as in seed 002); others are reached over SSH. */
export function isLocalNode(node: NodeConfig): boolean {
  return localHosts.has(node.host) || node.host === hostname() || !node.user;
}
