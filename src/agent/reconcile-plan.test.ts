import { describe, expect, it } from 'vitest';
import type { ReplicaSpec } from '../protocol/messages.js';
import type { ManagedContainer } from '../runtime/docker.js';
import { planReconcile } from './reconcile-plan.js';

function replica(service: string, index: number, hash = 'h1', restart: ReplicaSpec['container']['restart'] = 'unless-stopped'): ReplicaSpec {
  return {
    service,
    replica: index,
    name: `c-${service}-${index}`,
    spec_hash: hash,
    container: { image: 'img', env: {}, ports: [], volumes: [], restart, labels: {} },
  };
}

function container(service: string, index: number, over: Partial<ManagedContainer> = {}): ManagedContainer {
  return {
    id: `${service}-${index}-${over.created ?? 1}`,
    name: `c-${service}-${index}`,
    service,
    replica: index,
    specHash: 'h1',
    state: 'running',
    health: 'none',
    created: 1,
    ...over,
  };
}

describe('planReconcile', () => {
  it('does nothing when Docker matches the desired state', () => {
    expect(planReconcile([replica('web', 1)], [container('web', 1)])).toEqual([]);
  });

  it('creates a missing replica', () => {
    expect(planReconcile([replica('web', 1), replica('web', 2)], [container('web', 1)])).toEqual([
      { kind: 'create', replica: replica('web', 2) },
    ]);
  });

  it('replaces a container whose spec hash changed', () => {
    expect(planReconcile([replica('web', 1, 'h2')], [container('web', 1)])).toEqual([
      { kind: 'replace', replica: replica('web', 1, 'h2'), containerId: 'web-1-1' },
    ]);
  });

  it('starts a stopped container unless its restart policy is "no"', () => {
    const stopped = container('web', 1, { state: 'exited' });
    expect(planReconcile([replica('web', 1)], [stopped])).toEqual([
      { kind: 'start', replica: replica('web', 1), containerId: 'web-1-1' },
    ]);
    expect(planReconcile([replica('web', 1, 'h1', 'no')], [stopped])).toEqual([]);
  });

  it('removes containers no longer desired, before creating anything', () => {
    const plan = planReconcile([replica('api', 1)], [container('web', 1), container('web', 2)]);
    expect(plan.map((a) => a.kind)).toEqual(['remove', 'remove', 'create']);
  });

  it('keeps one container per replica and removes duplicates, preferring the current spec and a running one', () => {
    const old = container('web', 1, { specHash: 'h0', created: 5 });
    const current = container('web', 1, { created: 2, state: 'exited' });
    const currentRunning = container('web', 1, { created: 3 });
    const plan = planReconcile([replica('web', 1)], [old, current, currentRunning]);
    expect(plan).toEqual([
      { kind: 'remove', containerId: current.id, name: current.name },
      { kind: 'remove', containerId: old.id, name: old.name },
    ]);
  });
});
