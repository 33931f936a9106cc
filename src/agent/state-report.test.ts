import { describe, expect, it } from 'vitest';
import type { ReplicaSpec } from '../protocol/messages.js';
import type { ManagedContainer } from '../runtime/docker.js';
import { leavingContainers, replicaStates, type ReportFacts } from './state-report.js';

const replica = (index: number, hash = 'h2', image = 'img:2'): ReplicaSpec => ({
  service: 'web',
  replica: index,
  name: `c-web-${index}`,
  spec_hash: hash,
  container: { image, env: {}, ports: [], volumes: [], restart: 'always', labels: {} },
});

const container = (index: number, over: Partial<ManagedContainer> = {}): ManagedContainer => ({
  id: `id-${index}-${over.specHash ?? 'h2'}`,
  name: `c-web-${index}`,
  service: 'web',
  replica: index,
  specHash: 'h2',
  state: 'running',
  health: 'none',
  created: 1,
  ...over,
});

const none: ReportFacts = { pull: () => undefined, failure: () => undefined };

describe('replicaStates', () => {
  it('reports the running container of each replica with its spec hash', () => {
    expect(replicaStates([replica(1)], [container(1)], none)).toEqual([
      { service: 'web', replica: 1, name: 'c-web-1', container_id: 'id-1-h2', state: 'running', health: 'none', spec_hash: 'h2' },
    ]);
  });

  it('says "pulling" with the progress while a missing replica waits for its image', () => {
    const facts: ReportFacts = {
      ...none,
      pull: () => ({ state: 'pulling', progress: { percent: 45, bytesDone: 450, bytesTotal: 1000 }, since: 0 }),
    };
    expect(replicaStates([replica(1)], [], facts)[0]).toMatchObject({ state: 'pulling', pull: { image: 'img:2', percent: 45, bytes_done: 450, bytes_total: 1000 } });
  });

  it('keeps showing the old container that serves while the new image is pulled for an update', () => {
    const facts: ReportFacts = { ...none, pull: () => ({ state: 'pulling', progress: { bytesDone: 0, bytesTotal: 0 }, since: 0 }) };
    expect(replicaStates([replica(1)], [container(1, { specHash: 'h1' })], facts)[0]).toMatchObject({ state: 'running', spec_hash: 'h1', pull: { image: 'img:2' } });
  });

  it('reports a failure with its reason and when it is retried; a failed pull counts as one', () => {
    const failing: ReportFacts = { ...none, failure: () => ({ error: 'port is already allocated', retryAt: Date.parse('2026-01-01T00:00:04Z') }) };
    expect(replicaStates([replica(1)], [], failing)[0]).toMatchObject({ state: 'error', error: 'port is already allocated', retry_at: '2026-01-01T00:00:04.000Z' });
    const pullFailed: ReportFacts = { ...none, pull: () => ({ state: 'failed', error: 'manifest unknown', retryAt: 0 }) };
    expect(replicaStates([replica(1)], [], pullFailed)[0]).toMatchObject({ state: 'error', error: 'pull img:2: manifest unknown' });
  });

  it('prefers the running container at the desired spec, and gives the exit code of a stopped one', () => {
    const states = replicaStates(
      [replica(1), replica(2)],
      [container(1, { specHash: 'h1', created: 5 }), container(1, { created: 2 }), container(2, { state: 'exited', exitCode: 3 })],
      none,
    );
    expect(states[0]).toMatchObject({ container_id: 'id-1-h2', spec_hash: 'h2' });
    expect(states[1]).toMatchObject({ state: 'exited', exit_code: 3 });
  });
});

describe('leavingContainers', () => {
  const leaving = (c: ManagedContainer) => ({ name: c.name, service: c.service, replica: c.replica, state: c.state });

  it('lists the containers of replicas no longer desired', () => {
    const gone = container(3);
    expect(leavingContainers([replica(1)], [container(1), gone])).toEqual([leaving(gone)]);
  });

  it('lists the old container of a start-first update once the new one runs, not before', () => {
    const old = container(1, { specHash: 'h1' });
    const starting = container(1, { name: 'c-web-1-h2', state: 'created', created: 2 });
    expect(leavingContainers([replica(1)], [old, starting])).toEqual([]);
    expect(leavingContainers([replica(1)], [old, { ...starting, state: 'running', health: 'starting' }])).toEqual([]);
    expect(leavingContainers([replica(1)], [old, { ...starting, state: 'running', health: 'healthy' }])).toEqual([leaving(old)]);
  });

  it('lists a duplicate of a replica at the desired spec, and nothing of a replica still being pulled', () => {
    const duplicate = container(1, { id: 'dup', state: 'exited', exitCode: 0 });
    expect(leavingContainers([replica(1)], [container(1), duplicate])).toEqual([leaving(duplicate)]);
    expect(leavingContainers([replica(1)], [container(1, { specHash: 'h1' })])).toEqual([]);
  });
});
