import { describe, expect, it } from 'vitest';
import type { ClusterStatus, ServiceView, ViolationView } from '../http/schemas.js';
import { clusterNfrBadge, nodeChartViolations, serviceNfrBadge } from './nfr.js';

const violation = (over: Partial<ViolationView> = {}): ViolationView => ({
  replica: 1,
  node: 'pi-1',
  rule: 'node.cpu_percent < 85 for 1m',
  metric: 'node.cpu_percent',
  threshold: 85,
  since: '2026-11-26T00:00:00.000Z',
  value: 97,
  failing: true,
  action: 'migrate',
  ...over,
});

const service = (name: string, violations: ViolationView[], migratingTo?: string) =>
  ({
    name,
    desired: 2,
    violations,
    replicas: [
      { replica: 1, node: 'pi-1', ...(migratingTo ? { migrating_to: migratingTo } : {}) },
      { replica: 2, node: 'pi-2' },
    ],
  }) as unknown as ServiceView;

const status = (...services: ServiceView[]) => ({ services }) as unknown as ClusterStatus;

describe('the dashboard NFR badges', () => {
  it('shows nothing for a service without violations or moves, and a red count with each rule in the title otherwise', () => {
    expect(serviceNfrBadge(service('web', []))).toBeUndefined();
    const badge = serviceNfrBadge(service('web', [violation(), violation({ replica: 2, node: 'pi-2', value: 90, failing: false })]))!;
    expect(badge).toMatchObject({ text: 'NFR: 2 violations', tone: 'bad' });
    expect(badge.title).toBe('#1 on pi-1: node.cpu_percent < 85 for 1m (now 97; migrate)\n#2 on pi-2: node.cpu_percent < 85 for 1m (now 90, back inside; migrate)');
  });

  it('shows a move under way as migrating i of N, with where from and to', () => {
    const badge = serviceNfrBadge(service('web', [violation()], 'pi-3'))!;
    expect(badge).toMatchObject({ text: 'migrating 1 of 2', tone: 'busy' });
    expect(badge.title.split('\n')[0]).toBe('#1: pi-1 → pi-3');
  });

  it('counts violations over the cluster for the header', () => {
    expect(clusterNfrBadge(status(service('web', [])))).toMatchObject({ text: 'NFR ok', tone: 'ok' });
    expect(clusterNfrBadge(status(service('web', [violation()]), service('db', [violation()])))).toMatchObject({ text: 'NFR: 2 violations', tone: 'bad' });
  });

  it('marks a node chart with the strictest violated node threshold; container metrics and other nodes leave it alone', () => {
    const s = status(
      service('web', [violation(), violation({ replica: 2, threshold: 70, rule: 'node.cpu_percent < 70' }), violation({ metric: 'cpu_percent', rule: 'cpu_percent < 50' })]),
      service('db', [violation({ metric: 'node.memory_percent', threshold: 90, rule: 'node.memory_percent < 90' }), violation({ node: 'pi-2' })]),
    );
    expect(nodeChartViolations(s, 'pi-1')).toEqual({
      cpu: { threshold: 70, rules: ['web#1: node.cpu_percent < 85 for 1m', 'web#2: node.cpu_percent < 70'] },
      memory: { threshold: 90, rules: ['db#1: node.memory_percent < 90'] },
    });
    expect(nodeChartViolations(s, 'pi-3')).toEqual({});
  });
});
