/**
 * Which node runs which replica. Pure: the same config and the same set of eligible nodes always give
 * the same answer, so a reconcile never moves a running replica without a reason.
 */
import { parsePortSpec } from '../config/ports.js';
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
  return compileConstraints(constraints)(node);
}

/** The constraints parsed once, as a test of a node; a text that is no constraint matches no node. */
function compileConstraints(constraints: string[]): (node: NodeConfig) => boolean {
  const parsed = constraints.map(parseConstraint);
  if (parsed.some((c) => c === undefined)) return () => false;
  return (node) =>
    parsed.every((constraint) => {
      const actual = nodeAttribute(node, constraint!.key);
      return constraint!.op === '==' ? actual === constraint!.value : actual !== constraint!.value;
    });
}

interface Eligible {
  nodes: NodeConfig[];
  ids: Set<string>;
}

/** Eligible nodes per service, for one config (a reload makes a new config object): placement runs on every reconcile. */
const eligibleCache = new WeakMap<NodeConfig[], Map<string, Eligible>>();

function candidates(config: OttoConfig, service: ServiceConfig): Eligible {
  let byService = eligibleCache.get(config.nodes);
  if (!byService) eligibleCache.set(config.nodes, (byService = new Map()));
  const key = service.node !== undefined ? `node:${service.node}` : `constraints:${JSON.stringify(service.placement?.constraints ?? [])}`;
  let eligible = byService.get(key);
  if (!eligible) {
    const matches = compileConstraints(service.placement?.constraints ?? []);
    const nodes = service.node !== undefined ? config.nodes.filter((n) => n.id === service.node) : config.nodes.filter(matches);
    eligible = { nodes, ids: new Set(nodes.map((n) => n.id)) };
    byService.set(key, eligible);
  }
  return eligible;
}

/** Node ids for a message: all of a few, the first of many. */
function someIds(nodes: NodeConfig[]): string {
  const shown = nodes.slice(0, 5).map((n) => n.id).join(', ');
  return nodes.length > 5 ? `${shown} and ${nodes.length - 5} more` : shown;
}

export interface PlacementInput {
  /** Replicas wanted per service (the config's, or a scale). */
  replicasOf?: (service: ServiceConfig) => number;
  /** Where each replica ran before (key `service#replica`): kept while that node stays usable. */
  previous?: Map<string, string>;
  /** Whether a node may take new replicas now (online, or not yet known at start-up). */
  available?: (nodeId: string) => boolean;
  /**
   * Whether a node keeps the replicas it has: true unless it is lost. An unreachable node keeps them (it is
   * probably still serving); a lost one keeps them only while no other node can take them.
   */
  keeps?: (nodeId: string) => boolean;
}

export const replicaKey = (service: string, replica: number) => `${service}#${replica}`;

/** Host ports (ip/port/protocol) a service binds; two replicas binding one cannot share a node. */
export function hostPorts(service: ServiceConfig): string[] {
  return service.ports.map((spec) => {
    try {
      const p = parsePortSpec(spec);
      return `${p.host_port}/${p.protocol}`;
    } catch {
      return String(spec);
    }
  });
}

/**
 * Places every replica: first keeps each on its previous node while that node is still eligible and not
 * lost (placement is stable; an unreachable node keeps its replicas), then puts the rest on the online
 * eligible node with the fewest replicas of the service whose host ports are free. A replica of a lost
 * node that no other node can take stays where it was.
 */
export function placeReplicas(config: OttoConfig, input: PlacementInput = {}): Placement {
  const replicasOf = input.replicasOf ?? ((s: ServiceConfig) => s.replicas);
  const available = input.available ?? (() => true);
  const keeps = input.keeps ?? available;
  const previous = input.previous ?? new Map<string, string>();
  const placement: Placement = { assignments: [], unplaced: [] };
  // Only nodes with a port taken get a set, and only services placed get a count: a fleet has many nodes.
  const portsInUse = new Map<string, Set<string>>();
  const portsFree = (nodeId: string, ports: string[]) => ports.length === 0 || ports.every((p) => !portsInUse.get(nodeId)?.has(p));
  /** Per service, replicas per node; and replicas of every service per node (the tie-break, so services do not pile up). */
  const loads = new Map<string, Map<string, number>>();
  const totals = new Map<string, number>();
  const assign = (service: ServiceConfig, replica: number, nodeId: string, ports: string[]) => {
    placement.assignments.push({ service: service.name, replica, nodeId });
    let load = loads.get(service.name);
    if (!load) loads.set(service.name, (load = new Map()));
    load.set(nodeId, (load.get(nodeId) ?? 0) + 1);
    totals.set(nodeId, (totals.get(nodeId) ?? 0) + 1);
    if (ports.length === 0) return;
    let used = portsInUse.get(nodeId);
    if (!used) portsInUse.set(nodeId, (used = new Set()));
    for (const p of ports) used.add(p);
  };

  const pending: { service: ServiceConfig; replica: number; eligible: Eligible; ports: string[]; before?: string }[] = [];
  for (const service of config.services) {
    const eligible = candidates(config, service);
    const ports = hostPorts(service);
    for (let replica = 1; replica <= replicasOf(service); replica++) {
      const before = previous.get(replicaKey(service.name, replica));
      const stays = before !== undefined && eligible.ids.has(before) && (service.node !== undefined || keeps(before));
      if (stays && portsFree(before, ports)) assign(service, replica, before, ports);
      else pending.push({ service, replica, eligible, ports, before });
    }
  }
  for (const { service, replica, eligible: { nodes: eligible, ids }, ports, before } of pending) {
    if (eligible.length === 0) {
      const reason = service.node
        ? `node "${service.node}" is not in the cluster`
        : `no node matches ${service.placement?.constraints.join(' and ')}`;
      placement.unplaced.push({ service: service.name, replica, reason });
      continue;
    }
    // A pinned service has no choice; an unpinned one waits for an online node.
    const usable = service.node ? eligible : eligible.filter((n) => available(n.id));
    const free = usable.filter((n) => portsFree(n.id, ports));
    // A lost node keeps its own replica while no other node can take it: it may still be serving.
    const home = before !== undefined && ids.has(before) ? before : undefined;
    if (free.length === 0 && home !== undefined && portsFree(home, ports)) {
      assign(service, replica, home, ports);
      continue;
    }
    if (usable.length === 0) {
      placement.unplaced.push({ service: service.name, replica, reason: `waiting for a node: no online node matches (${someIds(eligible)} not online)` });
      continue;
    }
    if (free.length === 0) {
      placement.unplaced.push({ service: service.name, replica, reason: `host port ${ports.join(', ')} taken on every candidate node (${someIds(usable)})` });
      continue;
    }
    const load = (nodeId: string) => loads.get(service.name)?.get(nodeId) ?? 0;
    const total = (nodeId: string) => totals.get(nodeId) ?? 0;
    const lighter = (node: Eligible['nodes'][number], best: Eligible['nodes'][number]) => load(node.id) < load(best.id) || (load(node.id) === load(best.id) && total(node.id) < total(best.id));
    const target = free.reduce((best, node) => (lighter(node, best) ? node : best));
    assign(service, replica, target.id, ports);
  }
  placement.assignments.sort((a, b) => (a.service === b.service ? a.replica - b.replica : 0));
  return placement;
}
