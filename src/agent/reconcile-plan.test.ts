import { describe, expect, it } from 'vitest';
import type { ReplicaSpec } from '../protocol/messages.js';
import type { ManagedContainer } from '../runtime/docker.js';
import { bindsHostPorts, needsStart, planReconcile } from './reconcile-plan.js';

function replica(
  service: string,
  index: number,
  hash = 'h1',
  restart: ReplicaSpec['container']['restart'] = 'unless-stopped',
  over: Partial<ReplicaSpec> = {},
): ReplicaSpec {
  return {
    service,
    replica: index,
    name: `c-${service}-${index}`,
    spec_hash: hash,
    container: { image: 'img', env: {}, ports: [], volumes: [], restart, labels: {} },
    ...over,
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

  it('replaces a replica whose spec changed, stop-first unless the spec says start-first', () => {
    const old = container('web', 1, { specHash: 'old' });
    expect(planReconcile([replica('web', 1)], [old])).toEqual([{ kind: 'replace', replica: replica('web', 1), old, order: 'stop-first' }]);
    const startFirst = replica('web', 1, 'h1', 'unless-stopped', { update_order: 'start-first' });
    expect(planReconcile([startFirst], [old])).toEqual([{ kind: 'replace', replica: startFirst, old, order: 'start-first' }]);
  });

  it('plans nothing for a replica whose image is still being pulled, but still removes its duplicates', () => {
    const pulling = { ...replica('web', 1), container: { ...replica('web', 1).container, image: 'slow' } };
    const waitingForImage = (image: string) => image === 'slow';
    expect(planReconcile([pulling, replica('api', 1)], [], { waitingForImage })).toEqual([{ kind: 'create', replica: replica('api', 1) }]);
    const old = container('web', 1, { specHash: 'old', created: 2 });
    const extra = container('web', 1, { specHash: 'old', state: 'exited' });
    // The old container keeps serving until the new image is here.
    expect(planReconcile([pulling], [old, extra], { waitingForImage })).toEqual([{ kind: 'remove', container: extra, reason: 'duplicate' }]);
  });

  it('removes replicas no longer desired, before anything else, as graceful removals', () => {
    const extra = container('web', 3);
    const plan = planReconcile([replica('web', 1), replica('api', 1)], [container('web', 1), extra]);
    expect(plan).toEqual([
      { kind: 'remove', container: extra, reason: 'not desired' },
      { kind: 'create', replica: replica('api', 1) },
    ]);
  });

  it('keeps one container per replica: the current spec, running, newest; removes the duplicates', () => {
    const stale = container('web', 1, { specHash: 'old', created: 5 });
    const good = container('web', 1, { created: 2 });
    const older = container('web', 1, { created: 1 });
    expect(planReconcile([replica('web', 1)], [stale, good, older])).toEqual([
      { kind: 'remove', container: older, reason: 'duplicate' },
      { kind: 'remove', container: stale, reason: 'duplicate' },
    ]);
  });

  it('touches nothing of a replica or container that has an action in flight', () => {
    const old = container('web', 1, { specHash: 'old' });
    const orphan = container('web', 9);
    expect(planReconcile([replica('web', 1), replica('web', 2)], [old, orphan], { busy: new Set(['c-web-1', orphan.id, 'c-web-2']) })).toEqual([]);
    expect(planReconcile([replica('web', 1)], [old], { busy: new Set([old.id]) })).toEqual([]);
  });

  it('resumes a start-first update interrupted before the new container was ready: the old one still serves', () => {
    const spec = replica('web', 1, 'h2', 'unless-stopped', { update_order: 'start-first' });
    const old = container('web', 1, { specHash: 'h1', created: 1 });
    const next = container('web', 1, { specHash: 'h2', created: 2, name: 'c-web-1-h2', health: 'starting' });
    expect(planReconcile([spec], [old, next])).toEqual([{ kind: 'replace', replica: spec, old, order: 'start-first', next }]);
  });

  it('once the new container of a start-first update is ready, the old one goes and the new one takes the name', () => {
    const spec = replica('web', 1, 'h2', 'unless-stopped', { update_order: 'start-first' });
    const old = container('web', 1, { specHash: 'h1', created: 1 });
    const next = container('web', 1, { specHash: 'h2', created: 2, name: 'c-web-1-h2' });
    expect(planReconcile([spec], [old, next])).toEqual([{ kind: 'remove', container: old, reason: 'duplicate' }]);
    expect(planReconcile([spec], [next])).toEqual([{ kind: 'rename', replica: spec, containerId: next.id }]);
  });

  it('never renames onto a name another container holds', () => {
    const spec = replica('web', 1);
    const mine = container('web', 1, { name: 'c-web-1-h1' });
    const stranger = { ...container('other', 1), name: 'c-web-1' };
    expect(planReconcile([spec, replica('other', 1)], [mine, stranger])).toEqual([]);
  });

  it('leaves a container under its node-suffixed name alone (its own name was taken by a stranger)', () => {
    expect(planReconcile([replica('web', 1)], [container('web', 1, { name: 'c-web-1.pi1' })])).toEqual([]);
  });

  it('restarts stopped containers as their restart policy says (Docker meaning)', () => {
    const exited = (code: number) => container('web', 1, { state: 'exited', exitCode: code });
    const startOf = (restart: ReplicaSpec['container']['restart'], code: number, byHand = false) =>
      planReconcile([replica('web', 1, 'h1', restart)], [exited(code)], { stoppedByHand: byHand ? new Set([exited(code).id]) : new Set() }).length > 0;
    expect(startOf('no', 1)).toBe(false);
    expect(startOf('on-failure', 0)).toBe(false);
    expect(startOf('on-failure', 137)).toBe(true);
    expect(startOf('always', 0)).toBe(true);
    expect(startOf('always', 0, true)).toBe(true);
    expect(startOf('unless-stopped', 0)).toBe(true);
    expect(startOf('unless-stopped', 143, true)).toBe(false);
  });

  it('starts a container that was created but never started, whatever the policy', () => {
    const created = container('web', 1, { state: 'created' });
    expect(needsStart(created, replica('web', 1, 'h1', 'no'))).toBe(true);
    expect(planReconcile([replica('web', 1, 'h1', 'no')], [created])).toEqual([{ kind: 'start', replica: replica('web', 1, 'h1', 'no'), containerId: created.id }]);
  });

  it('leaves running, restarting, paused and removing containers alone', () => {
    for (const state of ['running', 'restarting', 'paused', 'removing'] as const) {
      expect(needsStart(container('web', 1, { state }), replica('web', 1, 'h1', 'always'))).toBe(false);
    }
  });

  it('marks the creations that bind host ports, which wait for removals in flight', () => {
    const withPort = replica('web', 1);
    withPort.container = { ...withPort.container, ports: [{ host_port: 8080, container_port: 80, protocol: 'tcp' }] };
    expect(bindsHostPorts({ kind: 'create', replica: withPort })).toBe(true);
    expect(bindsHostPorts({ kind: 'create', replica: replica('web', 2) })).toBe(false);
    expect(bindsHostPorts({ kind: 'start', replica: withPort, containerId: 'x' })).toBe(false);
  });
});
