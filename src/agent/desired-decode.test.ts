import { describe, expect, it } from 'vitest';
import type { NodeState } from '../protocol/messages.js';
import { decodeDesired, withRejected } from './desired-decode.js';

const container = { image: 'busybox', env: {}, ports: [], volumes: [], restart: 'no', labels: {} };
const replica = (service: string, extra: Record<string, unknown> = {}) => ({
  service,
  replica: 1,
  name: `c-${service}-1`,
  spec_hash: 'h',
  container: { ...container, ...extra },
});
const envelope = (replicas: unknown[]) => ({ cluster: 'c', node_id: 'n1', revision: 3, generated_at: '2024-01-01T00:00:00Z', settings: { metrics_interval_ms: 500 }, replicas });

describe('decodeDesired', () => {
  it('keeps the replicas it can run and sets aside each one it cannot, with the field and the reason', async () => {
    const decoded = await decodeDesired(JSON.stringify(envelope([replica('good'), replica('greedy', { nano_cpus: null }), replica('huge', { memory_bytes: -1 })])));
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.desired.replicas.map((r) => r.service)).toEqual(['good']);
    expect(decoded.rejected).toEqual([
      { service: 'greedy', replica: 1, name: 'c-greedy-1', error: "this agent cannot run the replica's spec: container.nano_cpus: expected number, received null" },
      { service: 'huge', replica: 1, name: 'c-huge-1', error: expect.stringContaining('container.memory_bytes: Too small') },
    ]);
    expect(decoded.envelope.replicas).toHaveLength(3);
  });

  it('names a replica without a readable identity by its place in the list', async () => {
    const decoded = await decodeDesired(JSON.stringify(envelope([42])));
    expect(decoded.ok && decoded.rejected).toEqual([{ service: '', replica: 0, name: 'replicas[0]', error: "this agent cannot run the replica's spec: (replica): expected object, received number" }]);
  });

  it('refuses the whole message only when the envelope itself is wrong', async () => {
    expect(await decodeDesired('{"cluster":"c"}')).toMatchObject({ ok: false, error: expect.stringContaining('node_id') });
    expect(await decodeDesired(JSON.stringify({ ...envelope([]), replicas: {} }))).toMatchObject({ ok: false, error: expect.stringContaining('replicas') });
    expect(await decodeDesired('not json')).toMatchObject({ ok: false, error: expect.stringMatching(/^not JSON/) });
  });
});

describe('withRejected', () => {
  const state: NodeState = { node_id: 'n1', timestamp: '2024-01-01T00:00:00Z', revision: 3, docker: { reachable: true }, replicas: [] };
  const rejected = [{ service: 'greedy', replica: 1, name: 'c-greedy-1', error: 'why' }];

  it('adds the set-aside replicas of the same revision, in error', () => {
    expect(withRejected(state, { revision: 3, replicas: rejected }).replicas).toEqual([
      { service: 'greedy', replica: 1, name: 'c-greedy-1', state: 'error', health: 'none', error: 'why' },
    ]);
  });

  it('leaves a report of another revision alone (a pass that started before the new desired state)', () => {
    expect(withRejected(state, { revision: 4, replicas: rejected })).toBe(state);
  });
});
