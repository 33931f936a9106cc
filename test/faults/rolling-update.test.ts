/**
 * Spec changes in otto.yaml roll out replica by replica (hot reload starts an `update` operation), and the
 * service keeps serving all along, sampled in Docker every 200 ms:
 * - a new image tag, stop-first, parallelism 1: at least 3 of 4 replicas run at every moment;
 * - an image that does not exist, failure_action: rollback: no replica ever stops (the old container stops
 *   only once the new image is here), the update ends rolled back with the hold shown in `cluster status`,
 *   and editing otto.yaml back to a good spec clears the hold;
 * - update.order: start-first: all 4 run at every moment;
 * - `otto service rollback` returns to the previous spec.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/http/client.js';
import { operationListSchema, type Operation } from '../../src/http/schemas.js';
import { Workspace } from '../../src/workspace.js';
import { TEST_IMAGE, containersOf, docker, waitFor } from '../support/cli.js';
import { createCluster, type TestCluster } from '../support/cluster.js';
import { recreatedReplicas, replicaContainers, watchContainers, type ContainerWatch } from './container-watch.js';
import { recordFault } from './fault-report.js';

const V2 = `${TEST_IMAGE}:v2`;
const MISSING = 'otto-test/does-not-exist:1';
const REPLICAS = 4;

function config(spec: { image: string; stage: string; order?: 'start-first'; failureAction?: 'rollback' }): string {
  const update = [`parallelism: 1`, `monitor: 1s`, ...(spec.failureAction ? [`failure_action: ${spec.failureAction}`] : []), ...(spec.order ? [`order: ${spec.order}`] : [])];
  return `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - id: local
    host: localhost
services:
  - name: rolling
    image: ${spec.image}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 1; done'
    replicas: ${REPLICAS}
    environment: { STAGE: "${spec.stage}" }
    update: { ${update.join(', ')} }
`;
}

describe('rolled spec updates', () => {
  let cluster: TestCluster;
  let api: ApiClient;
  const seenOps = new Set<string>();

  const operations = () => api.get('/api/v1/operations', operationListSchema);
  /** The next operation of `kind` on the service that was not seen before, once it ended. */
  const nextFinished = async (kind: Operation['kind']): Promise<Operation> => {
    const op = await waitFor(
      `a new ${kind} operation to end`,
      async () => (await operations()).find((o) => o.kind === kind && o.service === 'rolling' && !seenOps.has(o.id) && !['queued', 'running'].includes(o.state)),
      90_000,
      250,
    );
    seenOps.add(op.id);
    return op;
  };
  const rollingContainers = async () => (await containersOf(cluster.name, true)).filter((c) => c.Labels['otto.service'] === 'rolling');
  const envOf = async (id: string) => (await docker.getContainer(id).inspect()).Config.Env;

  beforeAll(async () => {
    await docker.getImage(TEST_IMAGE).tag({ repo: TEST_IMAGE, tag: 'v2' });
    cluster = await createCluster('roll', config({ image: TEST_IMAGE, stage: '1' }));
    const start = await cluster.run('cluster', 'start', '--detach');
    expect(start.code, `${start.stdout}\n${start.stderr}`).toBe(0);
    await waitFor('4 replicas running', async () => (await cluster.status()).services[0]!.running === REPLICAS);
    api = (await ApiClient.connect(new Workspace(cluster.configPath)))!;
    for (const op of await operations()) seenOps.add(op.id);
  });

  afterAll(async () => {
    await cluster.destroy();
    await docker.getImage(V2).remove().catch(() => undefined);
  });

  it('rolls image changes, a failed update back, start-first and a rollback while the service keeps serving', async () => {
    const lowest: string[] = [];
    let duplicates = 0;
    const recreated: string[] = [];
    let updates = 0;
    const phase = async (name: string, options: { allowTwo?: boolean }, body: (watch: ContainerWatch) => Promise<void>) => {
      const watch = watchContainers(cluster.name, options.allowTwo ? { allowTwoPerReplica: (service) => service === 'rolling' } : {});
      await new Promise((resolve) => setTimeout(resolve, 300)); // a first sample
      try {
        await body(watch);
      } finally {
        await watch.stop();
      }
      lowest.push(`${name} ${watch.lowestRunning('rolling')}/${REPLICAS}`);
      duplicates += watch.duplicates;
      expect(watch.duplicates, `${name}: ${watch.duplicateNotes.join('\n')}`).toBe(0);
    };

    // 1. A new image tag, stop-first, one replica at a time.
    await phase('new image', {}, async (watch) => {
      cluster.writeConfig(config({ image: V2, stage: '1' }));
      const op = await nextFinished('update');
      updates++;
      expect(op.state, op.message).toBe('succeeded');
      expect(watch.lowestRunning('rolling'), 'running replicas during a stop-first update of 1 at a time').toBeGreaterThanOrEqual(REPLICAS - 1);
      const containers = await rollingContainers();
      expect(containers).toHaveLength(REPLICAS);
      expect(containers.map((c) => c.Image)).toEqual(Array(REPLICAS).fill(V2));
    });

    // 2. An image no registry has, failure_action: rollback: nothing stops, the update rolls back, the hold shows.
    await phase('missing image', {}, async (watch) => {
      const before = await replicaContainers(cluster.name);
      cluster.writeConfig(config({ image: MISSING, stage: '1', failureAction: 'rollback' }));
      const op = await nextFinished('update');
      updates++;
      expect(op.state, op.message).toBe('rolled-back');
      expect(op.message).toContain(MISSING);
      const status = await cluster.status();
      const hold = status.services[0]!.hold;
      expect(hold, 'services[].hold after a rolled-back update').toBeTruthy();
      expect((await cluster.run('cluster', 'status')).stdout).toContain(`! rolling: ${hold}`);
      expect(watch.lowestRunning('rolling'), 'running replicas while the new image cannot be pulled').toBe(REPLICAS);
      // The hold stays while otto.yaml still asks for the image that failed.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect((await cluster.status()).services[0]!.hold).toBe(hold);
      // Back to a good spec (the one that runs): the hold clears, nothing is replaced.
      cluster.writeConfig(config({ image: V2, stage: '1', failureAction: 'rollback' }));
      await waitFor('the hold cleared', async () => (await cluster.status()).services[0]!.hold === null, 15_000);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect((await operations()).filter((o) => !seenOps.has(o.id) && o.service === 'rolling'), 'operations after the edit back').toEqual([]);
      expect(watch.lowestRunning('rolling')).toBe(REPLICAS);
      recreated.push(...recreatedReplicas(before, watch));
    });

    // 3. start-first on an environment change: the new container runs before the old one stops.
    let startFirstIds = new Map<string, string>();
    await phase('start-first', { allowTwo: true }, async (watch) => {
      const before = await replicaContainers(cluster.name);
      cluster.writeConfig(config({ image: V2, stage: '2', order: 'start-first' }));
      const op = await nextFinished('update');
      updates++;
      expect(op.state, op.message).toBe('succeeded');
      expect(op.message).toContain('start-first');
      expect(watch.lowestRunning('rolling'), 'running replicas during a start-first update').toBeGreaterThanOrEqual(REPLICAS);
      const after = await rollingContainers();
      const oldIds = new Set(before.values());
      expect(after.filter((c) => oldIds.has(c.Id)).map((c) => c.Names[0]), 'old containers still there when the update said it was done').toEqual([]);
      expect(after).toHaveLength(REPLICAS);
      startFirstIds = await replicaContainers(cluster.name);
      for (const id of startFirstIds.values()) expect(await envOf(id)).toContain('STAGE=2');
      // The new containers take the replicas' names once the old ones are gone.
      const names = [1, 2, 3, 4].map((i) => `/${cluster.name}-rolling-${i}`);
      await waitFor('the replicas under their own names', async () => JSON.stringify((await rollingContainers()).map((c) => c.Names[0]).sort()) === JSON.stringify(names), 5_000, 100);
    });

    // 4. otto service rollback: back to the previous spec.
    await phase('rollback', { allowTwo: true }, async () => {
      const rollback = await cluster.run('service', 'rollback', 'rolling');
      expect(rollback.code, `${rollback.stdout}\n${rollback.stderr}`).toBe(0);
      const op = await nextFinished('rollback');
      updates++;
      expect(op.state, op.message).toBe('succeeded');
      const containers = await rollingContainers();
      expect(containers).toHaveLength(REPLICAS);
      for (const c of containers) {
        expect(startFirstIds.get(`rolling#${c.Labels['otto.replica']}`)).not.toBe(c.Id);
        expect(await envOf(c.Id)).toContain('STAGE=1');
      }
    });

    recordFault({ scenario: 'rolling update', runs: updates, recreated: recreated.length, duplicates, notes: `lowest running ${lowest.join(', ')}` });
    expect(recreated, 'replicas replaced that no update asked for').toEqual([]);
  });
});
