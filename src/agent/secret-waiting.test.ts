/** A replica whose secrets have not reached the node gets no container yet, and says why in its state. */
import { describe, expect, it } from 'vitest';
import type { ReplicaSpec } from '../protocol/messages.js';
import type { ManagedContainer } from '../runtime/docker.js';
import { planReconcile } from './reconcile-plan.js';
import { replicaStates } from './state-report.js';

const replica = (hash: string): ReplicaSpec => ({
  service: 'app',
  replica: 1,
  name: 'c-app-1',
  spec_hash: hash,
  container: { image: 'img', env: {}, ports: [], volumes: [], restart: 'always', labels: {}, secrets: [{ name: 'db', hash: 'aaaaaaaaaaaaaaaa' }] },
});

const running: ManagedContainer = { id: 'old', name: 'c-app-1', service: 'app', replica: 1, specHash: 'h1', state: 'running', health: 'none', created: 1 };
const reason = 'waiting for secret db from the control plane (not on this node yet)';

describe('a replica waiting for its secrets', () => {
  it('gets no container, and no replacement of the old one, until they are here', () => {
    expect(planReconcile([replica('h2')], [], { blocked: () => true })).toEqual([]);
    expect(planReconcile([replica('h2')], [running], { blocked: () => true })).toEqual([]);
    expect(planReconcile([replica('h2')], [], { blocked: () => false })).toEqual([{ kind: 'create', replica: replica('h2') }]);
  });

  it('reports the reason, whether or not an older container still serves', () => {
    const facts = { pull: () => undefined, failure: () => undefined, waiting: () => reason };
    expect(replicaStates([replica('h2')], [], facts)[0]).toMatchObject({ state: 'missing', error: reason });
    expect(replicaStates([replica('h2')], [running], facts)[0]).toMatchObject({ state: 'running', spec_hash: 'h1', error: reason });
    expect(replicaStates([replica('h1')], [running], facts)[0]!.error).toBeUndefined();
  });
});
