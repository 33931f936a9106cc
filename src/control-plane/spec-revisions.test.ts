import { describe, expect, it } from 'vitest';
import type { ContainerSpec } from '../protocol/messages.js';
import { currentRevision, pendingReplicas, revisionOf, rollBack, syncSpecs, type SpecsByService } from './spec-revisions.js';

const spec = (image: string): ContainerSpec => ({ image, env: {}, ports: [], volumes: [], restart: 'always', labels: {} });
const sync = (specs: SpecsByService, image: string, replicas = 4) => syncSpecs(specs, [{ name: 'web', spec: spec(image), replicas }]);

describe('spec revisions', () => {
  it('starts a new service at revision 1 with nothing to update', () => {
    const specs: SpecsByService = {};
    expect(sync(specs, 'app:1')).toEqual([]);
    expect(currentRevision(specs.web!).spec.image).toBe('app:1');
    expect(pendingReplicas(specs.web!, 4)).toEqual([]);
  });

  it('a changed spec becomes current with every replica pinned to the old one until the update moves it', () => {
    const specs: SpecsByService = {};
    sync(specs, 'app:1');
    expect(sync(specs, 'app:2')).toEqual(['web']);
    const web = specs.web!;
    expect(web.current).toBe(2);
    expect(web.previous).toBe(1);
    expect(pendingReplicas(web, 4)).toEqual([1, 2, 3, 4]);
    expect(revisionOf(web, 3).spec.image).toBe('app:1');
    expect(revisionOf(web, 5).spec.image).toBe('app:2'); // a new replica gets the current spec
    delete web.replicas[1];
    expect(pendingReplicas(web, 4)).toEqual([2, 3, 4]);
    expect(sync(specs, 'app:2')).toEqual([]); // the same config again changes nothing
  });

  it('forgets pins of replicas scaled away', () => {
    const specs: SpecsByService = {};
    sync(specs, 'app:1');
    sync(specs, 'app:2');
    sync(specs, 'app:2', 2);
    expect(Object.keys(specs.web!.replicas)).toEqual(['1', '2']);
  });

  it('rolls back to the previous spec and holds the bad one until the config changes it', () => {
    const specs: SpecsByService = {};
    sync(specs, 'app:1');
    sync(specs, 'app:2');
    delete specs.web!.replicas[1]; // replica 1 already updated
    expect(rollBack(specs.web!, 4, 'replica web-1 unhealthy')).toBe(true);
    const web = specs.web!;
    expect(currentRevision(web).spec.image).toBe('app:1');
    expect(pendingReplicas(web, 4)).toEqual([1]);
    expect(web.hold).toMatchObject({ state: 'rolled-back', message: 'replica web-1 unhealthy' });
    expect(sync(specs, 'app:2')).toEqual([]); // held: not rolled out again
    expect(sync(specs, 'app:3')).toEqual(['web']); // a new edit is
    expect(web.hold).toBeUndefined();
  });

  it('rolling back twice toggles between the two specs, as docker service rollback does', () => {
    const specs: SpecsByService = {};
    sync(specs, 'app:1');
    sync(specs, 'app:2');
    for (const i of [1, 2, 3, 4]) delete specs.web!.replicas[i];
    rollBack(specs.web!, 4, 'by hand');
    expect(currentRevision(specs.web!).spec.image).toBe('app:1');
    for (const i of [1, 2, 3, 4]) delete specs.web!.replicas[i];
    rollBack(specs.web!, 4, 'by hand');
    expect(currentRevision(specs.web!).spec.image).toBe('app:2');
  });

  it('editing the config back to the spec that runs clears the hold', () => {
    const specs: SpecsByService = {};
    sync(specs, 'app:1');
    sync(specs, 'app:2');
    rollBack(specs.web!, 4, 'bad');
    expect(sync(specs, 'app:1')).toEqual([]);
    expect(specs.web!.hold).toBeUndefined();
  });

  it('keeps only the revisions in use and a couple of spare ones', () => {
    const specs: SpecsByService = {};
    for (const v of [1, 2, 3, 4, 5, 6]) {
      sync(specs, `app:${v}`);
      specs.web!.replicas = {};
    }
    expect(specs.web!.revisions.map((r) => r.id)).toEqual([3, 4, 5, 6]);
  });
});
