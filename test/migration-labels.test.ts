/** How moves and NFR violations read in `otto cluster status` and `otto service ps` (src/cli/migration-labels.ts). */
import { describe, expect, it } from 'vitest';
import type { Operation, ReplicaView, ServiceView, ViolationView } from '../src/http/schemas.js';
import { migrationLabel, replicaNodeLabel, violationRow } from '../src/cli/migration-labels.js';

const replica = (n: number, node: string, migratingTo?: string): ReplicaView => ({
  service: 'web',
  replica: n,
  name: `c-web-${n}`,
  state: 'running',
  health: 'none',
  node,
  node_state: 'online',
  stale: false,
  reported_at: null,
  ...(migratingTo ? { migrating_to: migratingTo } : {}),
});

const service = (replicas: ReplicaView[]): ServiceView => ({
  name: 'web',
  image: 'busybox',
  desired: replicas.length,
  running: replicas.length,
  stale: 0,
  nodes: ['a'],
  revision: 1,
  hold: null,
  state: 'running',
  health: 'none',
  ports: [],
  replicas,
  errors: [],
  violations: [],
});

const migrate = (moves: { service: string; replica: number; from: string; to: string; state: 'pending' | 'starting' | 'done' | 'failed' }[]): Operation => ({
  id: 'op1',
  kind: 'migrate',
  service: [...new Set(moves.map((m) => m.service))].join(','),
  moves: moves.map((m) => ({ ...m, reason: 'moved by hand' })),
  state: 'running',
  requested_at: new Date(0).toISOString(),
});

describe('migration labels', () => {
  it('count the moves of the service in the running migrate operation: done (or failed) of total', () => {
    const op = migrate([
      { service: 'web', replica: 1, from: 'a', to: 'b', state: 'done' },
      { service: 'web', replica: 2, from: 'a', to: 'b', state: 'starting' },
      { service: 'api', replica: 1, from: 'a', to: 'b', state: 'pending' },
    ]);
    expect(migrationLabel(service([replica(1, 'b'), replica(2, 'a', 'b')]), op)).toBe('migrating 1 of 2');
    // Every move of the service ended: no label, though the operation still moves another service.
    op.moves![1]!.state = 'failed';
    expect(migrationLabel(service([replica(1, 'b'), replica(2, 'a')]), op)).toBeUndefined();
  });

  it('fall back to the replicas moving when the running operation is not a migrate, and say nothing when none moves', () => {
    const scale: Operation = { id: 'op2', kind: 'scale', service: 'web', replicas: 3, state: 'running', requested_at: new Date(0).toISOString() };
    expect(migrationLabel(service([replica(1, 'a', 'b'), replica(2, 'a')]), scale)).toBe('migrating 0 of 1');
    expect(migrationLabel(service([replica(1, 'a'), replica(2, 'b')]), null)).toBeUndefined();
  });

  it('show a moving replica as FROM -> TO, the source from the operation when the replica is shown on its target', () => {
    const op = migrate([{ service: 'web', replica: 1, from: 'a', to: 'b', state: 'starting' }]);
    expect(replicaNodeLabel(replica(1, 'a'), op)).toBe('a');
    expect(replicaNodeLabel(replica(1, 'a', 'b'), null)).toBe('a -> b');
    expect(replicaNodeLabel(replica(1, 'b', 'b'), op)).toBe('a -> b');
    expect(replicaNodeLabel(replica(1, 'b', 'b'), null)).toBe('-> b');
  });

  it('give a violation as a row, saying when the latest sample is back inside the rule', () => {
    const since = new Date(Date.now() - 90_000).toISOString();
    const v: ViolationView = { replica: 2, node: 'a', rule: 'node.cpu_percent < 85 for 1m', metric: 'node.cpu_percent', threshold: 85, since, value: 97.5, failing: true, action: 'migrate' };
    expect(violationRow('web', v)).toEqual(['web', '2', 'a', 'node.cpu_percent < 85 for 1m', '97.5', '1m', 'migrate']);
    expect(violationRow('web', { ...v, value: 40, failing: false })[4]).toBe('40 (back inside)');
  });
});
