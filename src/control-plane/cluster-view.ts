/**
 * What `otto cluster status`, the API and the dashboard show, built from what the control plane knows:
 * nodes with their lifecycle, services with their replicas (last known state, stale on an unreachable
 * node), drift, operations. Cheap: no I/O, called on every request.
 */
import { isLocalNode, isSshNode } from '../config/nodes.js';
import type { OttoConfig } from '../config/schema.js';
import type { ClusterStatus, NodeView, Operation, ServiceView, ViolationView } from '../http/schemas.js';
import { containerName } from '../protocol/labels.js';
import type { ClusterPlan } from './desired-state.js';
import type { DriftRecord } from './drift.js';
import type { Ledger } from './ledger.js';
import type { NodeRegistry } from './node-registry.js';
import type { ReplicaProgress } from './operation-runners.js';
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
}

export class ClusterView {
  constructor(private readonly host: ViewHost) {}

  status(): ClusterStatus {
    const config = this.host.config();
    return {
      cluster: { name: config.cluster.name, embedded_broker: config.mqtt.embedded, ...this.host.cluster() },
      nodes: config.nodes.map((node) => this.node(node)),
      services: this.services(),
      drift: this.host.drift(),
      operation: this.host.operation(),
      queue: this.host.queue(),
      counters: this.host.counters(),
    };
  }

  services(): ServiceView[] {
    const config = this.host.config();
    const { registry, ledger } = this.host;
    const plan = this.host.plan();
    const violations = this.host.violations();
    const migrations = new Map(ledger.data.migrations.map((m) => [m.key, m]));
    return config.services.map((service) =>
      serviceView(service, plan.placement, {
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
      metrics: record?.metrics ?? null,
      containers: record?.containers?.containers ?? [],
    };
  }
}
