import { describe, expect, it } from 'vitest';
import type { NodeState, ReplicaState } from '../protocol/messages.js';
import { ReplicaTracker } from './replica-tracker.js';

const report = (replica: Partial<ReplicaState>): NodeState => ({
  node_id: 'n1',
  timestamp: new Date().toISOString(),
  revision: 1,
  docker: { reachable: true },
  replicas: [{ service: 'web', replica: 1, name: 'c-web-1', state: 'running', health: 'none', spec_hash: 'h1', container_id: 'a', ...replica }],
});
const expected = () => 'h1';

describe('ReplicaTracker', () => {
  it('reports a replica that stops running, once, and its return', () => {
    const tracker = new ReplicaTracker();
    expect(tracker.observe(report({}), expected).changes).toEqual([]);
    const died = tracker.observe(report({ state: 'exited' }), expected).changes;
    expect(died.map((c) => [c.kind, c.message])).toEqual([['replica-died', 'c-web-1 is exited']]);
    expect(tracker.observe(report({ state: 'exited' }), expected).changes).toEqual([]);
    expect(tracker.observe(report({}), expected).changes.map((c) => c.kind)).toEqual(['replica-healed']);
  });

  it('reports a container removed and recreated between two reports', () => {
    const tracker = new ReplicaTracker();
    tracker.observe(report({}), expected);
    const changes = tracker.observe(report({ container_id: 'b' }), expected).changes;
    expect(changes.map((c) => c.kind)).toEqual(['replica-died', 'replica-healed']);
  });

  it('does not call a planned replacement (new spec) a death', () => {
    const tracker = new ReplicaTracker();
    tracker.observe(report({}), expected);
    expect(tracker.observe(report({ state: 'missing', spec_hash: 'h1', container_id: undefined }), () => 'h2').changes).toEqual([]);
    expect(tracker.observe(report({ spec_hash: 'h2', container_id: 'b' }), () => 'h2').changes).toEqual([]);
  });

  it('lists the containers it saw, for the ledger', () => {
    const tracker = new ReplicaTracker();
    expect(tracker.observe(report({}), expected).containers).toEqual([{ node: 'n1', service: 'web', replica: 1, containerId: 'a' }]);
  });
});
