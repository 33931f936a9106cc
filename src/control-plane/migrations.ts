/**
 * Metrics-driven migration, wired: feeds every node and container sample to the violation detector for the
 * replicas it concerns, turns violations into events, and at each control-loop tick asks the pure planners
 * (migration-planner.ts) what to do and does it through the operation queue (a `migrate` operation run by
 * migration-runner.ts, or a restart of one replica), or, in `advise` mode, only says it. Also the manual
 * moves (`otto service move`), rebalancing (`otto cluster rebalance`, `migration.rebalance: auto`) and the
 * plan (`otto cluster plan`).
 */
import { isNodeMetric, nfrOf, ruleHolds, type NfrAction, type NfrRule } from '../config/nfr-rules.js';
import type { OttoConfig, ServiceConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { NotFoundError, UsageError } from '../errors.js';
import type { ClusterEvent, MigrationPlan, MoveView, Operation, ViolationView } from '../http/schemas.js';
import type { ContainerMetricsBatch, NodeMetrics } from '../protocol/messages.js';
import type { ClusterPlan } from './desired-state.js';
import type { Ledger } from './ledger.js';
import { moveRefusal, planNfrActions, planRebalance, type Decision, type MigrationFacts, type MoveDecision, type NodeLoad } from './migration-planner.js';
import { ViolationDetector, subjectKey, type Violation } from './nfr-detector.js';
import type { NodeRegistry } from './node-registry.js';
import type { OperationQueue } from './operations.js';
import { replicaKey } from './placement.js';

export interface MigrationsHost {
  config(): OttoConfig;
  plan(): ClusterPlan;
  registry: NodeRegistry;
  ledger: Ledger;
  queue: OperationQueue;
  event(event: Omit<ClusterEvent, 'id' | 'time'>): void;
}

/** Samples further apart than this many metrics intervals do not make one window. */
const GAP_INTERVALS = 3;
/** A node that just came back or joined is rebalanced onto only after this many metrics intervals online. */
const SETTLE_INTERVALS = 3;

export class Migrations {
  private detector = new ViolationDetector(Number.POSITIVE_INFINITY);
  private intervalMs = 0;
  private readonly rules = new Map<string, { rules: NfrRule[]; action: NfrAction }>();
  private rulesOf?: OttoConfig;
  private servicesOf?: { config: OttoConfig; byName: Map<string, ServiceConfig> };
  /** What was said about each replica's violation, so a decision that stands is said once, not every tick. */
  private readonly said = new Map<string, string>();
  private readonly onlineSince = new Map<string, number>();
  /** Counts the violations that started or ended (the status view rebuilds its service list when it changes). */
  private changes = 0;

  constructor(private readonly host: MigrationsHost) {}

  /** The config is loaded or changed: rules and intervals are read again; violations of rules that remain carry on. */
  configChanged(): void {
    this.rulesOf = undefined;
    const intervalMs = parseDuration(this.host.config().metrics.interval);
    if (intervalMs !== this.intervalMs) {
      this.intervalMs = intervalMs;
      this.detector = new ViolationDetector(GAP_INTERVALS * intervalMs);
      this.changes++;
    }
  }

  nodeOnline(nodeId: string, now = Date.now()): void {
    this.onlineSince.set(nodeId, now);
  }

  private nfr(service: ServiceConfig): { rules: NfrRule[]; action: NfrAction } {
    const config = this.host.config();
    if (this.rulesOf !== config) {
      this.rules.clear();
      this.rulesOf = config;
    }
    let found = this.rules.get(service.name);
    if (!found) {
      found = nfrOf(config, service);
      this.rules.set(service.name, found);
    }
    return found;
  }

  /** The services by name, made once per config (not once per report: thousands of them a second in a fleet). */
  private services(): Map<string, ServiceConfig> {
    const config = this.host.config();
    if (this.servicesOf?.config !== config) this.servicesOf = { config, byName: new Map(config.services.map((s) => [s.name, s])) };
    return this.servicesOf.byName;
  }

  /** A node's sample, judged for each replica assigned to it whose service has node rules. */
  onNodeMetrics(metrics: NodeMetrics, now = Date.now()): void {
    const replicas = this.host.plan().replicasByNode.get(metrics.node_id);
    if (!replicas?.length) return;
    const services = this.services();
    for (const replica of replicas) {
      const service = services.get(replica.service);
      if (!service || this.host.plan().assignments.get(replicaKey(replica.service, replica.replica)) !== metrics.node_id) continue;
      for (const rule of this.nfr(service).rules) {
        if (!isNodeMetric(rule.metric)) continue;
        const value = rule.metric === 'node.cpu_percent' ? metrics.cpu_percent : rule.metric === 'node.memory_percent' ? metrics.memory_percent : metrics.disk_percent;
        this.observe({ service: service.name, replica: replica.replica, node: metrics.node_id, rule }, value, now);
      }
    }
  }

  /** A node's container sample, judged for the replicas assigned to it whose service has container rules. */
  onContainerMetrics(batch: ContainerMetricsBatch, now = Date.now()): void {
    const services = this.services();
    const { assignments } = this.host.plan();
    for (const c of batch.containers) {
      if (!c.service || c.replica === undefined) continue;
      const service = services.get(c.service);
      if (!service || assignments.get(replicaKey(c.service, c.replica)) !== batch.node_id) continue;
      for (const rule of this.nfr(service).rules) {
        if (isNodeMetric(rule.metric)) continue;
        this.observe({ service: c.service, replica: c.replica, node: batch.node_id, rule }, rule.metric === 'cpu_percent' ? c.cpu_percent : c.memory_percent, now);
      }
    }
  }

  private observe(subject: Omit<Violation, 'since' | 'value' | 'failing' | 'at'>, value: number, now: number): void {
    const transition = this.detector.observe(subject, value, now);
    if (!transition) return;
    this.changes++;
    const v = transition.violation;
    const where = { service: v.service, replica: v.replica, node: v.node };
    if (transition.kind === 'violated') {
      this.host.event({ kind: 'nfr-violated', ...where, message: `${v.service}#${v.replica} on ${v.node}: ${v.rule.text} violated (${round(v.value)} for ${Math.round((v.at - v.since) / 1000)}s)` });
    } else {
      this.said.delete(subjectKey(v));
      this.host.event({ kind: 'nfr-cleared', ...where, message: `${v.service}#${v.replica} on ${v.node}: ${v.rule.text} holds again (${round(v.value)})` });
    }
  }

  violationChanges(): number {
    return this.changes;
  }

  /** Violations under way, per service, for the status. */
  violationsByService(): Map<string, ViolationView[]> {
    const byService = new Map<string, ViolationView[]>();
    const services = this.services();
    for (const v of this.detector.violations()) {
      const service = services.get(v.service);
      if (!service) continue;
      const list = byService.get(v.service) ?? [];
      list.push(viewOf(v, this.nfr(service).action));
      byService.set(v.service, list);
    }
    return byService;
  }

  /** Each control-loop tick: forget what is gone, then act on the violations and, if asked, rebalance. */
  tick(now = Date.now()): void {
    const services = this.services();
    const { assignments } = this.host.plan();
    const ended = this.detector.retain((s) => {
      const service = services.get(s.service);
      return service !== undefined && assignments.get(replicaKey(s.service, s.replica)) === s.node && this.nfr(service).rules.some((r) => r.text === s.rule.text);
    });
    if (ended.length > 0) this.changes++;
    const config = this.host.config();
    const facts = this.facts(now);
    if (facts.violations.length > 0) this.act(planNfrActions(facts), config.migration.mode);
    if (config.migration.rebalance === 'auto' && config.migration.mode === 'auto' && !this.migrating()) {
      const moves = planRebalance({ ...this.facts(now), settled: (id) => this.settled(id, now) });
      if (moves.length > 0) this.enqueueMoves(moves, 'rebalance');
    }
  }

  private act(decisions: Decision[], mode: 'auto' | 'advise'): void {
    const moves: MoveDecision[] = [];
    for (const d of decisions) {
      const key = replicaKey(d.service, d.replica);
      const where = { service: d.service, replica: d.replica, node: d.action === 'move' ? d.from : d.node };
      if (d.action === 'wait') continue;
      const what = d.action === 'move' ? `move ${key} from ${d.from} to ${d.to}` : d.action === 'restart' ? `restart ${key} on ${d.node}` : d.reason;
      if (d.action === 'blocked') {
        if (this.sayOnce(key, `blocked:${d.reason.split(':')[0]}`)) this.host.event({ kind: 'migration-blocked', ...where, message: d.reason });
        continue;
      }
      if (mode === 'advise') {
        if (this.sayOnce(key, `advised:${what}`)) this.host.event({ kind: 'migration-advised', ...where, message: `would ${what} (migration.mode advise): ${d.reason}` });
        continue;
      }
      if (d.action === 'restart') {
        this.host.ledger.data.last_moves[key] = { at: new Date().toISOString() };
        this.host.queue.enqueue({ kind: 'restart', service: d.service, replica: d.replica, message: `restart ${key}: ${d.reason}` });
        continue;
      }
      moves.push(d);
    }
    if (moves.length > 0) this.enqueueMoves(moves, 'nfr');
  }

  private sayOnce(key: string, what: string): boolean {
    if (this.said.get(key) === what) return false;
    this.said.set(key, what);
    if (this.said.size > 100_000) this.said.clear();
    return true;
  }

  private enqueueMoves(decisions: MoveDecision[], why: 'nfr' | 'rebalance' | 'manual'): Operation {
    const moves: MoveView[] = decisions.map((d) => ({ service: d.service, replica: d.replica, from: d.from, to: d.to, reason: d.reason, state: 'pending' }));
    const services = [...new Set(moves.map((m) => m.service))];
    const label = why === 'nfr' ? 'NFR violation' : why === 'rebalance' ? 'rebalance' : 'moved by hand';
    return this.host.queue.enqueue({
      kind: 'migrate',
      service: services.join(','),
      moves,
      message: `${label}: ${moves.map((m) => `${m.service}#${m.replica} ${m.from} -> ${m.to}`).join(', ')}`,
    });
  }

  private migrating(): boolean {
    return this.host.queue.movesUnderWay().size > 0;
  }

  private settled(nodeId: string, now: number): boolean {
    const since = this.onlineSince.get(nodeId);
    return since !== undefined && now - since >= SETTLE_INTERVALS * this.intervalMs && this.host.registry.get(nodeId)?.metrics !== undefined;
  }

  private facts(now: number): MigrationFacts {
    const { registry, ledger } = this.host;
    const { assignments } = this.host.plan();
    return {
      config: this.host.config(),
      assignments,
      online: (id) => registry.isOnline(id, now),
      load: (id) => loadOf(registry.get(id)?.metrics),
      usage: (key) => {
        const node = assignments.get(key);
        const [service, replica] = key.split('#');
        const c = node ? registry.get(node)?.containers?.containers.find((x) => x.service === service && x.replica === Number(replica)) : undefined;
        return c && { cpu_percent: c.cpu_percent, memory_usage_mb: c.memory_usage_mb };
      },
      violations: this.detector.violations(),
      inFlight: this.host.queue.movesUnderWay(),
      lastMove: (key) => {
        const last = ledger.data.last_moves[key];
        return last && { at: Date.parse(last.at), ...(last.failed_to ? { failed_to: last.failed_to } : {}) };
      },
      now,
    };
  }

  /** What would happen now, without doing it (`otto cluster plan`). */
  plan(now = Date.now()): MigrationPlan {
    const config = this.host.config();
    const facts = this.facts(now);
    const services = this.services();
    const planned = (d: Decision) => ({
      action: d.action,
      service: d.service,
      replica: d.replica,
      from: d.action === 'move' ? d.from : d.node,
      ...(d.action === 'move' ? { to: d.to } : {}),
      reason: d.reason,
    });
    return {
      mode: config.migration.mode,
      strategy: config.migration.strategy,
      violations: facts.violations.map((v) => ({ service: v.service, ...viewOf(v, services.get(v.service) ? this.nfr(services.get(v.service)!).action : 'alert') })),
      nfr: planNfrActions(facts).map(planned),
      rebalance: planRebalance({ ...facts, settled: (id) => reporting(this.host.registry, id, now) }).map(planned),
    };
  }

  /** `otto service move NAME --replica I --to NODE`: checked now, run by the queue. */
  move(serviceName: string, replica: number, to: string, now = Date.now()): Operation {
    const config = this.host.config();
    const service = config.services.find((s) => s.name === serviceName);
    if (!service) throw new NotFoundError(`no such service: ${serviceName}`, `services: ${config.services.map((s) => s.name).join(', ')}`);
    const key = replicaKey(serviceName, replica);
    const from = this.host.plan().assignments.get(key);
    if (!from) throw new UsageError(`${serviceName} has no replica ${replica}`, `its replicas: ${[...this.host.plan().assignments.keys()].filter((k) => k.startsWith(`${serviceName}#`)).map((k) => k.split('#')[1]).join(', ') || 'none'}`);
    const node = config.nodes.find((n) => n.id === to);
    if (!node) throw new NotFoundError(`no such node: ${to}`, `nodes: ${config.nodes.map((n) => n.id).join(', ')}`);
    if (from === to) throw new UsageError(`${key} already runs on ${to}`);
    if (this.host.queue.movesUnderWay().has(key)) throw new UsageError(`${key} is being moved already`, 'see `otto cluster status`');
    if (service.node) throw new UsageError(`${serviceName} is pinned to node ${service.node} (services[].node)`, 'use placement constraints instead of node to let it move');
    const refusal = moveRefusal(this.facts(now), key, to);
    if (refusal) throw new UsageError(`cannot move ${key} to ${to}: ${refusal}`);
    return this.enqueueMoves([{ action: 'move', service: serviceName, replica, from, to, reason: 'moved by hand (otto service move)' }], 'manual');
  }

  /** `otto cluster rebalance [--dry-run]`. */
  rebalance(dryRun: boolean, now = Date.now()): { operation: Operation | null; moves: MoveDecision[] } {
    const moves = planRebalance({ ...this.facts(now), settled: (id) => reporting(this.host.registry, id, now) });
    if (dryRun || moves.length === 0) return { operation: null, moves };
    return { operation: this.enqueueMoves(moves, 'rebalance'), moves };
  }
}

/** Online and sending metrics: a node rebalancing may fill (`otto cluster rebalance` does not wait for it to settle). */
function reporting(registry: NodeRegistry, id: string, now: number): boolean {
  return registry.isOnline(id, now) && registry.get(id)?.metrics !== undefined;
}

function loadOf(m: NodeMetrics | undefined): NodeLoad | undefined {
  return m && { cpu_percent: m.cpu_percent, memory_percent: m.memory_percent, disk_percent: m.disk_percent, memory_total_mb: m.memory_total_mb, ...(m.cpu_count ? { cpu_count: m.cpu_count } : {}) };
}

function viewOf(v: Violation, action: NfrAction): ViolationView {
  return {
    replica: v.replica,
    node: v.node,
    rule: v.rule.text,
    metric: v.rule.metric,
    threshold: v.rule.threshold,
    since: new Date(v.since).toISOString(),
    value: round(v.value),
    failing: !ruleHolds(v.rule, v.value),
    action,
  };
}

const round = (n: number) => Math.round(n * 10) / 10;
