/**
 * What to do about NFR violations, and how to spread replicas back over the nodes: pure decisions from
 * facts (violations, where every replica runs, each node's latest load, each replica's own usage, moves
 * under way, the cooldowns). The migration coordinator runs the moves they return.
 *
 * A move must never make things worse: the target is predicted with the replica's usage added, and it must
 * keep every node rule of the moving service inside its threshold by the clearing margin (so the replica
 * is not moved straight back), and every node rule of the replicas already there inside theirs. A replica
 * moved within `migration.cooldown` stays; at most `migration.max_in_flight` moves run at once; one move
 * at a time leaves a node whose own load is the problem, judged again on fresh metrics.
 */
import { CLEAR_MARGIN, isNodeMetric, nfrOf, resourceOf, ruleHolds, type NfrRule } from '../config/nfr-rules.js';
import type { NodeConfig, OttoConfig, ServiceConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { Violation } from './nfr-detector.js';
import { hostPorts, matchesConstraints, replicaKey } from './placement.js';

export interface NodeLoad {
  cpu_percent: number;
  memory_percent: number;
  disk_percent: number;
  /** Cores, to weigh a replica's CPU (100 % = one core, as `docker stats`) on the node's (100 % = all cores). */
  cpu_count?: number;
  memory_total_mb: number;
}

export interface ReplicaUsage {
  cpu_percent: number;
  memory_usage_mb: number;
}

export interface MoveRecord {
  at: number;
  /** The move failed on this node: it is not tried there again within the cooldown. */
  failed_to?: string;
}

export interface MigrationFacts {
  config: OttoConfig;
  /** `service#replica` -> node. */
  assignments: ReadonlyMap<string, string>;
  online(nodeId: string): boolean;
  load(nodeId: string): NodeLoad | undefined;
  usage(key: string): ReplicaUsage | undefined;
  violations: Violation[];
  /** Replicas being moved, or queued to be: `service#replica` -> the move. */
  inFlight: ReadonlyMap<string, { from: string; to: string }>;
  lastMove(key: string): MoveRecord | undefined;
  now: number;
}

export interface MoveDecision {
  action: 'move';
  service: string;
  replica: number;
  from: string;
  to: string;
  reason: string;
}

export type Decision =
  | MoveDecision
  | { action: 'restart'; service: string; replica: number; node: string; reason: string }
  /** Nothing can be done now (no node can take it): said once per violation. */
  | { action: 'blocked'; service: string; replica: number; node: string; reason: string }
  /** It will be done, later: a limit holds it back (cooldown, moves in flight, one at a time off a node). */
  | { action: 'wait'; service: string; replica: number; node: string; reason: string };

const round = (n: number) => Math.round(n * 10) / 10;

/** The load of a node once these replicas' usage is added (or taken away, with sign -1). */
export function predictLoad(load: NodeLoad, usages: ReplicaUsage[], sign = 1): NodeLoad {
  const cores = load.cpu_count && load.cpu_count > 0 ? load.cpu_count : 1;
  let cpu = load.cpu_percent;
  let memory = load.memory_percent;
  for (const u of usages) {
    cpu += (sign * u.cpu_percent) / cores;
    if (load.memory_total_mb > 0) memory += (sign * u.memory_usage_mb * 100) / load.memory_total_mb;
  }
  return { ...load, cpu_percent: Math.max(0, cpu), memory_percent: Math.max(0, memory) };
}

const nodeValue = (load: NodeLoad, metric: NfrRule['metric']): number =>
  metric === 'node.cpu_percent' ? load.cpu_percent : metric === 'node.memory_percent' ? load.memory_percent : load.disk_percent;

const headroom = (load: NodeLoad, resource: 'cpu' | 'memory' | 'disk') =>
  100 - (resource === 'cpu' ? load.cpu_percent : resource === 'memory' ? load.memory_percent : load.disk_percent);

/**
 * Works out, for a set of facts, where replicas could go: shared by the NFR decisions and rebalancing, it
 * keeps the moves it has granted so far, so two moves in one pass never fill the same node twice.
 */
class Targets {
  private readonly services: Map<string, ServiceConfig>;
  private readonly rules = new Map<string, NfrRule[]>();
  /** Replicas per node, with the moves granted so far. */
  private readonly byNode = new Map<string, string[]>();
  private readonly cooldownMs: number;

  constructor(private readonly facts: MigrationFacts) {
    this.services = new Map(facts.config.services.map((s) => [s.name, s]));
    this.cooldownMs = parseDuration(facts.config.migration.cooldown);
    for (const [key, node] of facts.assignments) this.place(key, node);
    // A move under way already weighs on its target.
    for (const [key, move] of facts.inFlight) if (facts.assignments.get(key) !== move.to) this.place(key, move.to);
  }

  rulesOf(service: string): NfrRule[] {
    let rules = this.rules.get(service);
    if (!rules) {
      const config = this.services.get(service);
      rules = config ? nfrOf(this.facts.config, config).rules : [];
      this.rules.set(service, rules);
    }
    return rules;
  }

  service(name: string): ServiceConfig | undefined {
    return this.services.get(name);
  }

  replicasOn(nodeId: string): string[] {
    return this.byNode.get(nodeId) ?? [];
  }

  /** How long until the replica may move again (0: now). */
  cooldownLeft(key: string): number {
    const last = this.facts.lastMove(key);
    return last ? Math.max(0, last.at + this.cooldownMs - this.facts.now) : 0;
  }

  /** The node's load with the moves granted so far in this pass and those under way (their usage added). */
  predicted(nodeId: string, adding: string[] = []): NodeLoad | undefined {
    const load = this.facts.load(nodeId);
    if (!load) return undefined;
    const arriving = [...this.replicasOn(nodeId).filter((key) => this.facts.assignments.get(key) !== nodeId), ...adding];
    return predictLoad(load, arriving.map((key) => this.facts.usage(key) ?? { cpu_percent: 0, memory_usage_mb: 0 }));
  }

  /** Why `nodeId` cannot take the replica, or undefined if it can. */
  refusal(key: string, service: ServiceConfig, nodeId: string, node: NodeConfig): string | undefined {
    if (!this.facts.online(nodeId)) return `${nodeId} is not online`;
    if (service.node && service.node !== nodeId) return `${service.name} is pinned to ${service.node}`;
    const constraints = service.placement?.constraints ?? [];
    if (!matchesConstraints(node, constraints)) return `${nodeId} does not match ${constraints.join(' and ')}`;
    const ports = hostPorts(service);
    if (ports.length > 0) {
      const taken = this.replicasOn(nodeId).some((other) => {
        const otherService = this.services.get(other.split('#')[0]!);
        return otherService !== undefined && hostPorts(otherService).some((p) => ports.includes(p));
      });
      if (taken) return `host port ${ports.join(', ')} is taken on ${nodeId}`;
    }
    const last = this.facts.lastMove(key);
    if (last?.failed_to === nodeId && this.cooldownLeft(key) > 0) return `a move of ${key} to ${nodeId} failed ${Math.round((this.facts.now - last.at) / 1000)}s ago`;
    const after = this.predicted(nodeId, [key]);
    if (!after) return `${nodeId} has sent no metrics yet`;
    for (const rule of this.rulesOf(service.name).filter((r) => isNodeMetric(r.metric))) {
      if (!ruleHolds(rule, nodeValue(after, rule.metric), CLEAR_MARGIN)) return `${nodeId} would reach ${rule.metric} ${round(nodeValue(after, rule.metric))} (rule: ${rule.text})`;
    }
    for (const other of this.replicasOn(nodeId)) {
      for (const rule of this.rulesOf(other.split('#')[0]!).filter((r) => isNodeMetric(r.metric))) {
        if (!ruleHolds(rule, nodeValue(after, rule.metric))) return `${nodeId} would reach ${rule.metric} ${round(nodeValue(after, rule.metric))}, over ${other}'s rule ${rule.text}`;
      }
    }
    return undefined;
  }

  grant(key: string, from: string, to: string): void {
    this.byNode.set(from, this.replicasOn(from).filter((k) => k !== key));
    this.place(key, to);
  }

  private place(key: string, nodeId: string): void {
    const list = this.byNode.get(nodeId);
    if (list) list.push(key);
    else this.byNode.set(nodeId, [key]);
  }
}

/** The best node for the replica by the strategy, or why there is none. */
function chooseTarget(
  targets: Targets,
  facts: MigrationFacts,
  key: string,
  service: ServiceConfig,
  from: string,
  resource: 'cpu' | 'memory' | 'disk',
): { to: string; note: string } | { refused: string } {
  const refusals: string[] = [];
  let best: { id: string; headroom: number; sameService: number; total: number } | undefined;
  for (const node of facts.config.nodes) {
    if (node.id === from) continue;
    const why = targets.refusal(key, service, node.id, node);
    if (why) {
      refusals.push(why);
      continue;
    }
    const candidate = {
      id: node.id,
      headroom: headroom(targets.predicted(node.id, [key])!, resource),
      sameService: targets.replicasOn(node.id).filter((k) => k.startsWith(`${service.name}#`)).length,
      total: targets.replicasOn(node.id).length,
    };
    if (!best || better(candidate, best, facts.config.migration.strategy)) best = candidate;
  }
  if (!best) {
    const shown = refusals.slice(0, 4).join('; ');
    return { refused: refusals.length ? `${shown}${refusals.length > 4 ? `; and ${refusals.length - 4} more` : ''}` : 'there is no other node' };
  }
  const note =
    facts.config.migration.strategy === 'spread'
      ? `${best.id} has the fewest replicas of ${service.name} (${best.sameService})`
      : `${best.id} has the most ${resource} headroom (${round(100 - best.headroom)}% after the move)`;
  return { to: best.id, note };
}

function better(
  a: { id: string; headroom: number; sameService: number; total: number },
  b: { id: string; headroom: number; sameService: number; total: number },
  strategy: 'least-loaded' | 'spread',
): boolean {
  const order =
    strategy === 'spread'
      ? [b.sameService - a.sameService, b.total - a.total, a.headroom - b.headroom]
      : [a.headroom - b.headroom, b.sameService - a.sameService, b.total - a.total];
  for (const d of order) if (Math.abs(d) > 1e-9) return d > 0;
  return a.id < b.id;
}

const describeViolation = (v: Violation) => `${v.rule.text} violated on ${v.node} since ${new Date(v.since).toISOString()} (now ${round(v.value)})`;

/** What the violations call for: moves (action migrate), restarts (action restart), or why not now. */
export function planNfrActions(facts: MigrationFacts): Decision[] {
  const targets = new Targets(facts);
  const max = facts.config.migration.max_in_flight;
  let moving = facts.inFlight.size;
  const decisions: Decision[] = [];
  const leavingNode = new Set([...facts.inFlight.values()].map((m) => m.from));
  // One decision per replica: its oldest violation that still fails now.
  const byReplica = new Map<string, Violation>();
  for (const v of [...facts.violations].sort((a, b) => a.since - b.since || subjectOrder(a, b))) {
    const key = replicaKey(v.service, v.replica);
    if (!v.failing || byReplica.has(key) || facts.assignments.get(key) !== v.node) continue;
    byReplica.set(key, v);
  }
  for (const [key, v] of byReplica) {
    const service = targets.service(v.service);
    if (!service || facts.inFlight.has(key)) continue;
    const { action } = nfrOf(facts.config, service);
    const subject = { service: v.service, replica: v.replica, node: v.node };
    if (action === 'alert') continue;
    const cooldown = targets.cooldownLeft(key);
    if (cooldown > 0) {
      decisions.push({ action: 'wait', ...subject, reason: `${key} moved or restarted less than ${facts.config.migration.cooldown} ago (cooldown: ${Math.ceil(cooldown / 1000)}s left)` });
      continue;
    }
    if (action === 'restart') {
      decisions.push({ action: 'restart', ...subject, reason: describeViolation(v) });
      continue;
    }
    // The node's own load is the problem: one replica leaves it at a time, then fresh metrics decide.
    if (isNodeMetric(v.rule.metric) && leavingNode.has(v.node)) {
      decisions.push({ action: 'wait', ...subject, reason: `a replica is already leaving ${v.node}; judged again on its next metrics` });
      continue;
    }
    if (moving >= max) {
      decisions.push({ action: 'wait', ...subject, reason: `${moving} move(s) under way (migration.max_in_flight ${max})` });
      continue;
    }
    const target = chooseTarget(targets, facts, key, service, v.node, resourceOf(v.rule.metric));
    if ('refused' in target) {
      decisions.push({ action: 'blocked', ...subject, reason: `no node can take ${key} (${describeViolation(v)}): ${target.refused}` });
      continue;
    }
    targets.grant(key, v.node, target.to);
    moving++;
    if (isNodeMetric(v.rule.metric)) leavingNode.add(v.node);
    decisions.push({ action: 'move', ...subject, from: v.node, to: target.to, reason: `${describeViolation(v)}; ${target.note}` });
  }
  return decisions;
}

function subjectOrder(a: Violation, b: Violation): number {
  return a.service === b.service ? a.replica - b.replica : a.service < b.service ? -1 : 1;
}

/**
 * Moves that spread each service's replicas evenly over the nodes that may run them (online, matching,
 * settled: online long enough to have sent metrics), one replica at a time from the fullest node to the
 * emptiest, until no two nodes differ by more than one; never onto a node a move would push over a rule,
 * never a replica in its cooldown; at most what `max_in_flight` leaves room for. The replicas with the
 * highest numbers move first, as a scale-down would remove them.
 */
export function planRebalance(facts: MigrationFacts & { settled(nodeId: string): boolean }): MoveDecision[] {
  const targets = new Targets(facts);
  let room = facts.config.migration.max_in_flight - facts.inFlight.size;
  const moves: MoveDecision[] = [];
  for (const service of facts.config.services) {
    if (service.node || room <= 0) continue;
    const eligible = facts.config.nodes.filter((n) => facts.online(n.id) && facts.settled(n.id) && matchesConstraints(n, service.placement?.constraints ?? []));
    if (eligible.length < 2) continue;
    const count = (id: string) => targets.replicasOn(id).filter((k) => k.startsWith(`${service.name}#`)).length;
    const stuck = new Set<string>();
    while (room > 0) {
      const ranked = [...eligible].sort((a, b) => count(b.id) - count(a.id) || targets.replicasOn(b.id).length - targets.replicasOn(a.id).length || (a.id < b.id ? -1 : 1));
      const fullest = ranked[0]!;
      const movable = targets
        .replicasOn(fullest.id)
        .filter((k) => k.startsWith(`${service.name}#`) && !facts.inFlight.has(k) && !stuck.has(k) && targets.cooldownLeft(k) === 0)
        .sort((a, b) => Number(b.split('#')[1]) - Number(a.split('#')[1]));
      const emptiestFirst = [...eligible].sort((a, b) => count(a.id) - count(b.id) || targets.replicasOn(a.id).length - targets.replicasOn(b.id).length || (a.id < b.id ? -1 : 1));
      const emptiest = emptiestFirst.find((n) => count(fullest.id) - count(n.id) > 1 && movable.length > 0 && !targets.refusal(movable[0]!, service, n.id, n));
      if (!emptiest) {
        // The fullest node's first candidate cannot go anywhere: try its next one, until none is left.
        if (movable.length > 0 && ranked.some((n) => count(fullest.id) - count(n.id) > 1)) {
          stuck.add(movable[0]!);
          continue;
        }
        break;
      }
      const key = movable[0]!;
      const reason = `rebalance: ${service.name} has ${count(fullest.id)} replica(s) on ${fullest.id} and ${count(emptiest.id)} on ${emptiest.id}`;
      targets.grant(key, fullest.id, emptiest.id);
      room--;
      moves.push({ action: 'move', service: service.name, replica: Number(key.split('#')[1]), from: fullest.id, to: emptiest.id, reason });
    }
  }
  return moves;
}

/** Why the replica cannot go to `to` now (node state, placement, ports, rules), or undefined; no cooldown: a move by hand is wanted now. */
export function moveRefusal(facts: MigrationFacts, key: string, to: string): string | undefined {
  const targets = new Targets({ ...facts, lastMove: () => undefined });
  const service = targets.service(key.split('#')[0]!);
  const node = facts.config.nodes.find((n) => n.id === to);
  if (!service || !node) return `no service or node for ${key} -> ${to}`;
  return targets.refusal(key, service, to, node);
}
