/**
 * What `otto cluster status`, the API and the dashboard show, built from what the control plane knows:
 * nodes with their lifecycle, services with their replicas (last known state, stale on an unreachable
 * node), drift, operations. No I/O. The node and service lists are the costly part with thousands of nodes
 * (each report changes them): they are rebuilt when older than ten times their last build took (at most half
 * a metrics interval), so a small cluster's are always fresh and a fleet's cost a bounded share of the CPU
 * however often they are asked for. Between rebuilds the same arrays are returned, which lets the API serialize each once.
 */
import { isLocalNode, isSshNode } from '../config/nodes.js';
import type { OttoConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { ClusterStatus, NodeView, Operation, ServiceView, ViolationView } from '../http/schemas.js';
import { containerName } from '../protocol/labels.js';
import type { ClusterPlan } from './desired-state.js';
import type { DriftRecord } from './drift.js';
import type { Ledger } from './ledger.js';
import type { NodeRegistry } from './node-registry.js';
import type { ReplicaProgress } from './operation-runners.js';
import type { Placement } from './placement.js';
import { serviceView } from './service-view.js';

export interface ViewHost {
  config(): OttoConfig;
  cluster(): Omit<ClusterStatus['cluster'], 'name' | 'embedded_broker'>;
  registry: NodeRegistry;
  ledger: Ledger;
  plan(): ClusterPlan;
  remote(nodeId: string): { agentPid?: number; sshState: string } | undefined;
  drift(): DriftRecord[];
  operation(): Operation | null;
  queue(): Operation[];
  counters(): ClusterStatus['counters'];
  /** NFR violations under way, per service. */
  violations(): Map<string, ViolationView[]>;
  /** Counts the violations that started or ended: the service list is rebuilt when it changes. */
  violationChanges(): number;
}

/** A list is rebuilt when older than `MAX_AGE_FACTOR` times its build time, at most half a metrics interval. */
const MAX_AGE_FACTOR = 10;

/** A list rebuilt when what it is made of changed (`inputs`: the config, the plan), or when it is old (reports). */
class Throttled<T> {
  private value?: T;
  private inputs: unknown[] = [];
  private builtAt = 0;
  private buildMs = 0;

  constructor(
    private readonly build: () => T,
    private readonly currentInputs: () => unknown[],
    private readonly maxAgeMs: () => number,
  ) {}

  get(): T {
    const now = performance.now();
    const inputs = this.currentInputs();
    const changed = inputs.some((input, i) => input !== this.inputs[i]);
    if (this.value === undefined || changed || now - this.builtAt >= Math.min(this.maxAgeMs(), MAX_AGE_FACTOR * this.buildMs)) {
      this.inputs = inputs;
      this.value = this.build();
      this.builtAt = performance.now();
      this.buildMs = this.builtAt - now;
    }
    return this.value;
  }
}

export class ClusterView {
  private readonly nodeList = new Throttled(
    () => this.host.config().nodes.map((node) => this.node(node)),
    () => [this.host.config()],
    () => this.maxAgeMs(),
  );
  private readonly serviceList = new Throttled(
    () => this.buildServices(),
    // A move or a violation that starts or ends shows at once; a violation's latest value with the next rebuild.
    () => [this.host.config(), this.host.plan(), this.host.ledger.data.specs, this.host.ledger.data.migrations, this.host.violationChanges()],
    () => this.maxAgeMs(),
  );

  constructor(private readonly host: ViewHost) {}

  /** Nodes report once an interval: a view half an interval old is as good as any. */
  private maxAgeMs(): number {
    return parseDuration(this.host.config().metrics.interval) / 2;
  }

  status(): ClusterStatus {
    const config = this.host.config();
    return {
      cluster: { name: config.cluster.name, embedded_broker: config.mqtt.embedded, ...this.host.cluster() },
      nodes: this.nodeList.get(),
      services: this.serviceList.get(),
      drift: this.host.drift(),
      operation: this.host.operation(),
      queue: this.host.queue(),
      counters: this.host.counters(),
    };
  }

  services(): ServiceView[] {
    return this.serviceList.get();
  }

  private buildServices(): ServiceView[] {
    const config = this.host.config();
    const { registry, ledger } = this.host;
    const plan = this.host.plan();
    const violations = this.host.violations();
    const migrations = new Map(ledger.data.migrations.map((m) => [m.key, m]));
    // Each service's share of the placement, sorted out once (not once per service).
    const placements = new Map<string, Placement>(config.services.map((s) => [s.name, { assignments: [], unplaced: [] }]));
    for (const a of plan.placement.assignments) placements.get(a.service)?.assignments.push(a);
    for (const u of plan.placement.unplaced) placements.get(u.service)?.unplaced.push(u);
    return config.services.map((service) =>
      serviceView(service, placements.get(service.name)!, {
        migration: migrations.size ? (replica) => migrations.get(`${service.name}#${replica}`) : undefined,
        violations: violations.get(service.name),
        reported: (nodeId, name) => {
          const record = registry.get(nodeId);
          const state = record?.state?.replicas.find((r) => r.name === name);
          return state && { state, at: record?.stateReceivedAt };
        },
        nodeState: (nodeId) => registry.lifecycle(nodeId).state,
        replicaName: (replica) => containerName(config.cluster.name, service.name, replica),
        specs: ledger.data.specs[service.name],
      }),
    );
  }

  /** A service's replicas with the spec hash each one must reach (what operations wait for). */
  replicaProgress(serviceName: string): ReplicaProgress[] {
    const view = this.services().find((v) => v.name === serviceName);
    if (!view) return [];
    const plan = this.host.plan();
    return view.replicas.map((r) => ({
      ...r,
      expected_hash: plan.replicasByNode.get(r.node)?.find((spec) => spec.name === r.name)?.spec_hash ?? '',
    }));
  }

  leaving(serviceName: string): number {
    return this.host.registry
      .all()
      .filter((node) => this.host.registry.isOnline(node.id))
      .reduce((sum, node) => sum + (node.state?.leaving?.filter((c) => c.service === serviceName).length ?? 0), 0);
  }

  unplaced(serviceName: string): string[] {
    return this.host
      .plan()
      .placement.unplaced.filter((u) => u.service === serviceName)
      .map((u) => u.reason);
  }

  private node(node: OttoConfig['nodes'][number]): NodeView {
    const { registry } = this.host;
    const record = registry.get(node.id);
    const lifecycle = registry.lifecycle(node.id);
    const remote = isSshNode(node) ? this.host.remote(node.id) : undefined;
    return {
      id: node.id,
      // A node that joins by itself may declare no address: the one it says it has.
      host: node.host ?? record?.status?.hostname ?? '-',
      local: isLocalNode(node),
      online: lifecycle.state === 'online',
      state: lifecycle.state,
      unreachable_since: lifecycle.unreachableSince === undefined ? null : new Date(lifecycle.unreachableSince).toISOString(),
      last_seen: record?.lastSeen ? new Date(record.lastSeen).toISOString() : null,
      agent_version: record?.status?.agent_version ?? null,
      arch: record?.status?.arch ?? null,
      agent_pid: record?.status?.pid ?? remote?.agentPid ?? null,
      ssh_state: remote ? remote.sshState : null,
      docker: record?.state?.docker ?? null,
      labels: node.labels,
      metrics: record?.metrics ?? null,
      containers: record?.containers?.containers ?? [],
    };
  }
}
