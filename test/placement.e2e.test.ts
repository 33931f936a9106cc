/**
 * Placement by constraints on node labels: three agents with different node ids and labels share this
 * machine's Docker engine (the otto.node label keeps their containers apart).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containersOf, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

describe('placement constraints', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await createCluster(
      'place',
      `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - { id: pc, host: localhost, labels: { arch: amd64, zone: house } }
  - { id: pi-a, host: localhost, labels: { arch: arm64, zone: garage } }
  - { id: pi-b, host: localhost, labels: { arch: arm64, zone: barn } }
services:
  - name: sensor
    image: otto-test/busybox
    command: sleep 3600
    init: true
    replicas: 4
    placement: { constraints: ["arch == arm64"] }
  - name: indoor
    image: otto-test/busybox
    command: sleep 3600
    init: true
    placement: { constraints: ["zone != garage", "zone != barn"] }
  - name: gpu
    image: otto-test/busybox
    command: sleep 3600
    init: true
    placement: { constraints: ["arch == riscv64"] }
`,
    );
    expect((await c.run('cluster', 'start', '--detach')).code).toBe(0);
  });

  afterAll(async () => {
    await c.destroy();
  });

  it('spreads replicas over the matching nodes only', async () => {
    await waitFor('sensor and indoor running', async () => {
      const s = await c.status();
      return s.services.find((x) => x.name === 'sensor')?.running === 4 && s.services.find((x) => x.name === 'indoor')?.running === 1;
    });
    const containers = await containersOf(c.name);
    const nodesOf = (service: string) => containers.filter((x) => x.Labels['otto.service'] === service).map((x) => x.Labels['otto.node']).sort();
    expect(nodesOf('sensor')).toEqual(['pi-a', 'pi-a', 'pi-b', 'pi-b']);
    expect(nodesOf('indoor')).toEqual(['pc']);
    expect(nodesOf('gpu')).toEqual([]);
  });

  it('reports a replica no node matches, with the reason', async () => {
    const gpu = (await c.status()).services.find((x) => x.name === 'gpu')!;
    expect(gpu.errors).toEqual(['replica 1 not placed: no node matches arch == riscv64']);
    const ps = await c.run('service', 'ps', 'gpu');
    expect(ps.stdout).toContain('! replica 1 not placed: no node matches arch == riscv64');
    const status = await c.run('cluster', 'status');
    expect(status.stdout).toMatch(/gpu\s+1\s+0\s+-\s+starting/);
  });

  it('keeps running replicas where they are when the cluster restarts', async () => {
    const before = (await containersOf(c.name)).map((x) => `${x.Id}@${x.Labels['otto.node']}`).sort();
    expect((await c.run('cluster', 'stop')).code).toBe(0);
    expect((await c.run('cluster', 'start', '--detach')).code).toBe(0);
    await waitFor('all nodes online', async () => (await c.status()).nodes.every((n) => n.online));
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await containersOf(c.name)).map((x) => `${x.Id}@${x.Labels['otto.node']}`).sort()).toEqual(before);
  });
});
