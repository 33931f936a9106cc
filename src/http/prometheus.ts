/**
 * GET /metrics in the Prometheus text exposition format (0.0.4): node gauges labelled by node, container
 * gauges labelled by node, service and container, service replica gauges, and the control plane's counters.
 * Sizes are in bytes, as Prometheus names want; the wire protocol's MB and GB are binary (MiB, GiB).
 */
import type { ControlPlaneCounters } from './handlers.js';
import type { ClusterStatus } from './schemas.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

type Labels = Record<string, string | number | undefined>;

/** Label values escape backslash, double quote and newline. */
function labelText(labels: Labels): string {
  const parts = Object.entries(labels)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([key, value]) => `${key}="${String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function numberText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'gauge' | 'counter' | 'summary', help: string, samples: Array<[Labels, number]>, suffix = ''): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) this.lines.push(`${name}${suffix}${labelText(labels)} ${numberText(value)}`);
  }

  raw(line: string): void {
    this.lines.push(line);
  }

  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

export function prometheusText(status: ClusterStatus, counters: ControlPlaneCounters): string {
  const out = new Exposition();
  const cluster = status.cluster.name;
  out.family('otto_cluster_info', 'gauge', 'Always 1; labels name the cluster and its config.', [[{ cluster, config_hash: status.cluster.config_hash.slice(0, 12) }, 1]]);

  const nodes = status.nodes;
  const withMetrics = nodes.filter((n) => n.metrics);
  const nodeGauge = (name: string, help: string, value: (m: NonNullable<(typeof nodes)[number]['metrics']>) => number, type: 'gauge' | 'counter' = 'gauge') =>
    out.family(name, type, help, withMetrics.map((n) => [{ node: n.id }, value(n.metrics!)]));
  out.family('otto_node_up', 'gauge', 'Whether the node agent reports (1) or not (0).', nodes.map((n) => [{ node: n.id }, n.online ? 1 : 0]));
  out.family(
    'otto_node_docker_up',
    'gauge',
    "Whether the node's Docker engine is reachable (1) or not (0).",
    nodes.filter((n) => n.docker).map((n) => [{ node: n.id }, n.docker!.reachable ? 1 : 0]),
  );
  out.family(
    'otto_node_last_seen_timestamp_seconds',
    'gauge',
    'When the control plane last heard from the node.',
    nodes.filter((n) => n.last_seen).map((n) => [{ node: n.id }, Date.parse(n.last_seen!) / 1000]),
  );
  nodeGauge('otto_node_cpu_percent', 'CPU use of the node, 0-100.', (m) => m.cpu_percent);
  nodeGauge('otto_node_memory_percent', 'Memory use of the node, 0-100.', (m) => m.memory_percent);
  nodeGauge('otto_node_memory_used_bytes', 'Memory used on the node.', (m) => Math.round(m.memory_used_mb * MiB));
  nodeGauge('otto_node_memory_total_bytes', 'Memory of the node.', (m) => Math.round(m.memory_total_mb * MiB));
  nodeGauge('otto_node_disk_percent', 'Disk use of the node, 0-100.', (m) => m.disk_percent);
  nodeGauge('otto_node_disk_used_bytes', 'Disk used on the node.', (m) => Math.round(m.disk_used_gb * GiB));
  nodeGauge('otto_node_disk_total_bytes', 'Disk size of the node.', (m) => Math.round(m.disk_total_gb * GiB));
  nodeGauge('otto_node_network_sent_bytes_total', 'Bytes the node sent.', (m) => m.network_bytes_sent, 'counter');
  nodeGauge('otto_node_network_received_bytes_total', 'Bytes the node received.', (m) => m.network_bytes_recv, 'counter');

  const containers = nodes.flatMap((n) =>
    n.containers.map((c) => ({ labels: { node: n.id, service: c.service ?? '', container: c.container_name, replica: c.replica }, c })),
  );
  const containerGauge = (name: string, help: string, value: (c: (typeof containers)[number]['c']) => number, type: 'gauge' | 'counter' = 'gauge') =>
    out.family(name, type, help, containers.map(({ labels, c }) => [labels, value(c)]));
  containerGauge('otto_container_cpu_percent', 'CPU use of the container (100 = one core).', (c) => c.cpu_percent);
  containerGauge('otto_container_memory_percent', 'Memory use of the container against its limit, 0-100.', (c) => c.memory_percent);
  containerGauge('otto_container_memory_usage_bytes', 'Memory used by the container.', (c) => Math.round(c.memory_usage_mb * MiB));
  containerGauge('otto_container_memory_limit_bytes', 'Memory limit of the container.', (c) => Math.round(c.memory_limit_mb * MiB));
  containerGauge('otto_container_network_received_bytes_total', 'Bytes the container received.', (c) => c.network_rx_bytes, 'counter');
  containerGauge('otto_container_network_sent_bytes_total', 'Bytes the container sent.', (c) => c.network_tx_bytes, 'counter');
  containerGauge('otto_container_block_read_bytes_total', 'Bytes the container read from block devices.', (c) => c.block_read_bytes, 'counter');
  containerGauge('otto_container_block_written_bytes_total', 'Bytes the container wrote to block devices.', (c) => c.block_write_bytes, 'counter');

  out.family('otto_service_replicas_desired', 'gauge', 'Replicas the service should run.', status.services.map((s) => [{ service: s.name }, s.desired]));
  out.family('otto_service_replicas_running', 'gauge', 'Replicas of the service that run.', status.services.map((s) => [{ service: s.name }, s.running]));
  out.family('otto_service_healthy', 'gauge', 'Whether every replica of the service is healthy or has no healthcheck (1) or not (0).', status.services.map((s) => [{ service: s.name }, s.health === 'healthy' || s.health === 'none' ? 1 : 0]));
  out.family(
    'otto_nfr_violation',
    'gauge',
    'An NFR rule the replica violates now (1; the series is absent otherwise). Labels: service, replica, node, rule as written.',
    status.services.flatMap((s) => s.violations.map((v) => [{ service: s.name, replica: v.replica, node: v.node, rule: v.rule }, 1] as [Labels, number])),
  );
  out.family('otto_drift_services', 'gauge', 'Services whose running replicas differ from the desired ones.', [[{}, status.drift.length]]);
  out.family('otto_operation_running', 'gauge', 'Whether an operation is under way (1) or not (0).', [[{}, status.operation ? 1 : 0]]);
  out.family('otto_operation_queue_length', 'gauge', 'Operations waiting behind the one under way.', [[{}, status.queue.length]]);

  out.family('otto_mqtt_messages_received_total', 'counter', 'MQTT messages the control plane received.', [[{}, counters.messages_received]]);
  out.family('otto_mqtt_invalid_messages_total', 'counter', 'MQTT messages the control plane rejected as invalid.', [[{}, counters.invalid_messages]]);
  out.family('otto_reconcile_duration_seconds', 'summary', 'Time the control loop spent reconciling.', [[{}, counters.reconcile_seconds_sum]], '_sum');
  out.raw(`otto_reconcile_duration_seconds_count ${numberText(counters.reconcile_count)}`);
  out.family(
    'otto_operations_total',
    'counter',
    'Finished operations by result.',
    Object.entries(counters.operations_by_result).map(([result, count]) => [{ result }, count]),
  );
  return out.toString();
}
