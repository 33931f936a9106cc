/**
 * Which node runs which replica. Pure: the same config and the same set of eligible nodes always give
 * the same answer, so a reconcile never moves a running replica without a reason.
 */
import type { NodeConfig, OttoConfig, ServiceConfig } from '../config/schema.js';

export interface Assignment {
  service: string;
  replica: number;
  nodeId: string;
}

export interface Unplaced {
  service: string;
  replica: number;
  reason: string;
}

export interface Placement {
  assignments: Assignment[];
  unplaced: Unplaced[];
}

const constraintPattern = /^\s*([\w.-]+)\s*(==|!=)\s*(.+?)\s*$/;

/** Parses `key == value` / `key != value`; undefined when the text is not a constraint. */
export function parseConstraint(text: string): { key: string; op: '==' | '!='; value: string } | undefined {
  const match = constraintPattern.exec(text);
  if (!match) return undefined;
  return { key: match[1]!, op: match[2] as '==' | '!=', value: match[3]! };
}

function nodeAttribute(node: NodeConfig, key: string): string | undefined {
  if (key === 'node.id') return node.id;
  if (key === 'node.host') return node.host;
  const label = key.startsWith('node.labels.') ? key.slice('node.labels.'.length) : key;
  const value = node.labels[label];
  return value === undefined ? undefined : String(value);
}

export function matchesConstraints(node: NodeConfig, constraints: string[]): boolean {
  return constraints.every((text) => {
    const constraint = parseConstraint(text);
    if (!constraint) return false;
    const actual = nodeAttribute(node, constraint.key);
    return constraint.op === '==' ? actual === constraint.value : actual !== constraint.value;
  });
}

function candidates(service: ServiceConfig, nodes: NodeConfig[]): NodeConfig[] {
  if (service.node) return nodes.filter((n) => n.id === service.node);
  return nodes.filter((n) => matchesConstraints(n, service.placement?.constraints ?? []));
}

/** Spreads each service's replicas round-robin over the nodes it may run on. */
export function placeReplicas(config: OttoConfig, replicasOf: (service: ServiceConfig) => number = (s) => s.replicas): Placement {
  const placement: Placement = { assignments: [], unplaced: [] };
  for (const service of config.services) {
    const eligible = candidates(service, config.nodes);
    for (let replica = 1; replica <= replicasOf(service); replica++) {
      const node = eligible[(replica - 1) % Math.max(1, eligible.length)];
      if (node) placement.assignments.push({ service: service.name, replica, nodeId: node.id });
      else {
        const reason = service.node
          ? `node "${service.node}" is not in the cluster`
          : `no node matches ${service.placement?.constraints.join(' and ')}`;
        placement.unplaced.push({ service: service.name, replica, reason });
      }
    }
  }
  return placement;
}
