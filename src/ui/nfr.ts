/**
 * What the dashboard shows of NFR rules (`nfr` in otto.yaml), from the status alone: a badge per service
 * (its violations, the moves under way), the header's count, and for a node's CPU and memory charts the
 * threshold a replica on it fails, so the offending series stands out. Pure, so it is tested without a page.
 */
import type { ClusterStatus, ServiceView, ViolationView } from '../http/schemas.js';

export interface Badge {
  text: string;
  title: string;
  tone: 'ok' | 'warn' | 'bad' | 'busy' | 'muted';
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export const describeViolation = (v: ViolationView) => `#${v.replica} on ${v.node}: ${v.rule} (now ${v.value}${v.failing ? '' : ', back inside'}; ${v.action})`;

/** The service's NFR badge: moves under way first (they are what changes), then violations; none when all is well. */
export function serviceNfrBadge(service: ServiceView): Badge | undefined {
  const moving = service.replicas.filter((r) => r.migrating_to);
  const title = [...moving.map((r) => `#${r.replica}: ${r.node} → ${r.migrating_to}`), ...service.violations.map(describeViolation)].join('\n');
  if (moving.length) return { text: `migrating ${moving.length} of ${service.desired}`, title, tone: 'busy' };
  if (service.violations.length) return { text: `NFR: ${plural(service.violations.length, 'violation')}`, title, tone: 'bad' };
  return undefined;
}

/** The header's count of violations over all services. */
export function clusterNfrBadge(status: ClusterStatus): Badge {
  const all = status.services.flatMap((s) => s.violations.map((v) => ({ service: s.name, v })));
  if (!all.length) return { text: 'NFR ok', title: 'no NFR rule is violated', tone: 'ok' };
  return { text: `NFR: ${plural(all.length, 'violation')}`, title: all.map(({ service, v }) => `${service}${describeViolation(v)}`).join('\n'), tone: 'bad' };
}

export type ChartMetric = 'cpu' | 'memory';
const CHART_OF: Record<string, ChartMetric> = { 'node.cpu_percent': 'cpu', 'node.memory_percent': 'memory' };

/**
 * For each chart of a node, the strictest threshold a replica on it violates now, with the rules: the chart
 * draws it and turns red. Only node-wide metrics: a container's own CPU is not what the node chart shows.
 */
export function nodeChartViolations(status: ClusterStatus, nodeId: string): Partial<Record<ChartMetric, { threshold: number; rules: string[] }>> {
  const marks: Partial<Record<ChartMetric, { threshold: number; rules: string[] }>> = {};
  for (const service of status.services) {
    for (const v of service.violations) {
      const chart = CHART_OF[v.metric];
      if (!chart || v.node !== nodeId) continue;
      const mark = (marks[chart] ??= { threshold: v.threshold, rules: [] });
      mark.threshold = Math.min(mark.threshold, v.threshold);
      mark.rules.push(`${service.name}#${v.replica}: ${v.rule}`);
    }
  }
  return marks;
}
