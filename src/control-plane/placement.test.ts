import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { matchesConstraints, placeReplicas } from './placement.js';

const config = (services: string) =>
  parseConfig(
    `nodes:
  - { id: pc, host: localhost, labels: { arch: amd64, zone: house } }
  - { id: pi1, host: localhost, labels: { arch: arm64, zone: garage } }
  - { id: pi2, host: localhost, labels: { arch: arm64, zone: barn } }
services:
${services}`,
    'otto.yaml',
  );

const where = (placement: ReturnType<typeof placeReplicas>) => placement.assignments.map((a) => `${a.service}.${a.replica}@${a.nodeId}`);

describe('placeReplicas', () => {
  it('pins a service to its node', () => {
    expect(where(placeReplicas(config('  - { name: db, image: x, node: pi2, replicas: 2 }')))).toEqual(['db.1@pi2', 'db.2@pi2']);
  });

  it('spreads replicas over the nodes matching the constraints', () => {
    const c = config('  - { name: web, image: x, replicas: 4, placement: { constraints: ["arch == arm64"] } }');
    expect(where(placeReplicas(c))).toEqual(['web.1@pi1', 'web.2@pi2', 'web.3@pi1', 'web.4@pi2']);
    const notGarage = config('  - { name: web, image: x, replicas: 2, placement: { constraints: ["zone != garage"] } }');
    expect(where(placeReplicas(notGarage))).toEqual(['web.1@pc', 'web.2@pi2']);
  });

  it('spreads services over the nodes too: among nodes equal for the service, the one with fewer replicas of any service', () => {
    const c = config('  - { name: a, image: x }\n  - { name: b, image: x }\n  - { name: c, image: x, replicas: 2 }\n  - { name: d, image: x }');
    expect(where(placeReplicas(c))).toEqual(['a.1@pc', 'b.1@pi1', 'c.1@pi2', 'c.2@pc', 'd.1@pi1']);
  });

  it('reports a replica no node matches, with the reason', () => {
    const c = config('  - { name: gpu, image: x, placement: { constraints: ["arch == riscv"] } }');
    expect(placeReplicas(c).unplaced).toEqual([{ service: 'gpu', replica: 1, reason: 'no node matches arch == riscv' }]);
  });

  it('does not put two replicas binding one host port on one node', () => {
    const c = config('  - { name: web, image: x, replicas: 4, ports: ["8080:80"] }');
    const placement = placeReplicas(c);
    expect(where(placement)).toEqual(['web.1@pc', 'web.2@pi1', 'web.3@pi2']);
    expect(placement.unplaced[0]!.reason).toBe('host port 8080/tcp taken on every candidate node (pc, pi1, pi2)');
  });

  it('is stable: keeps replicas where they ran while their node is usable', () => {
    const c = config('  - { name: web, image: x, replicas: 2 }');
    const previous = new Map([['web#1', 'pi2'], ['web#2', 'pi1']]);
    expect(where(placeReplicas(c, { previous }))).toEqual(['web.1@pi2', 'web.2@pi1']);
  });

  it('keeps replicas on an unreachable node: only a lost node gives them up', () => {
    const c = config('  - { name: web, image: x, replicas: 1 }\n  - { name: db, image: x, node: pi1 }');
    const previous = new Map([['web#1', 'pi1']]);
    // pi1 unreachable: not available for new replicas, but it keeps web#1.
    const unreachable = placeReplicas(c, { previous, available: (id) => id !== 'pi1', keeps: () => true });
    expect(where(unreachable)).toEqual(['web.1@pi1', 'db.1@pi1']);
    // pi1 lost: web#1 moves to an online node; db is pinned and stays.
    const lost = placeReplicas(c, { previous, available: (id) => id !== 'pi1', keeps: (id) => id !== 'pi1' });
    expect(where(lost)).toEqual(['web.1@pc', 'db.1@pi1']);
  });

  it('leaves the replica of a lost node where it was when no other node can take it', () => {
    const c = config('  - { name: web, image: x, replicas: 1, placement: { constraints: ["zone == barn"] } }');
    const previous = new Map([['web#1', 'pi2']]);
    const placement = placeReplicas(c, { previous, available: () => false, keeps: () => false });
    expect(where(placement)).toEqual(['web.1@pi2']);
    expect(placement.unplaced).toEqual([]);
  });

  it('a new replica waits for an online node', () => {
    const c = config('  - { name: web, image: x, replicas: 1 }');
    const none = placeReplicas(c, { available: () => false });
    expect(none.unplaced.map((u) => u.reason)).toEqual(['waiting for a node: no online node matches (pc, pi1, pi2 not online)']);
  });

  it('scales with the replica count it is given', () => {
    const c = config('  - { name: web, image: x, replicas: 1 }');
    expect(placeReplicas(c, { replicasOf: () => 3 }).assignments).toHaveLength(3);
  });

  it('matches node.id and node.labels.* keys', () => {
    const [pc] = config('  []').nodes;
    expect(matchesConstraints(pc!, ['node.id == pc', 'node.labels.zone == house'])).toBe(true);
    expect(matchesConstraints(pc!, ['node.id != pc'])).toBe(false);
  });
});
