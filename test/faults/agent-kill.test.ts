/**
 * kill -9 of the agent, again and again, at random moments: while it starts and reconciles, and while it
 * idles. No replica container may be removed or replaced, and no replica may ever have two containers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, waitFor } from '../support/cli.js';
import { createCluster, type TestCluster } from '../support/cluster.js';
import { apiStatus, sleep } from './api.js';
import { recreatedReplicas, replicaContainers, watchContainers } from './container-watch.js';
import { count, median, recordFault, seconds } from './fault-report.js';

const KILLS = count(20, 100);

describe('kill -9 of the agent', () => {
  let c: TestCluster;
  const agentPidFile = () => Number(readFileSync(join(c.dir, '.otto', 'agents', 'local', 'agent.pid'), 'utf8').trim() || 0);
  const readPid = () => {
    try {
      return agentPidFile();
    } catch {
      return 0;
    }
  };

  beforeAll(async () => {
    c = await createCluster(
      'akill',
      `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - { id: local, host: localhost }
services:
  - name: five
    image: otto-test/busybox
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.2; done'
    replicas: 5
    stop_grace_period: 2s
`,
    );
    const started = await c.run('cluster', 'start', '--detach');
    expect(started.code, started.stderr).toBe(0);
    await waitFor('5 replicas running', async () => (await apiStatus(c))?.services[0]?.running === 5);
  });

  afterAll(async () => {
    await c.destroy();
  });

  it(`${KILLS} kills in a row recreate nothing and never make two containers of one replica`, { timeout: 900_000 }, async () => {
    const before = await replicaContainers(c.name);
    expect(before.size).toBe(5);
    const watch = watchContainers(c.name);
    const recovery: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      // Half the kills hit an agent that has just started (loading, connecting, reconciling), half an idle one.
      const early = i % 2 === 0;
      const pid = await waitFor('an agent running', async () => {
        const current = readPid();
        if (!current || !isAlive(current)) return 0;
        if (early) return current;
        const s = await apiStatus(c);
        return s?.nodes[0]?.online && s.nodes[0].agent_pid === current && s.services[0]!.running === 5 ? current : 0;
      }, 60_000, 50);
      await sleep(early ? Math.random() * 400 : Math.random() * 1_500);
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      await waitFor(`agent back after kill ${i + 1}`, async () => {
        const s = await apiStatus(c);
        const node = s?.nodes[0];
        return node?.online && node.agent_pid !== pid && node.last_seen && Date.parse(node.last_seen) > killedAt && s!.services[0]!.running === 5;
      }, 60_000, 100);
      recovery.push(Date.now() - killedAt);
    }
    await sleep(3_000);
    await watch.stop();
    const recreated = recreatedReplicas(before, watch);
    recordFault({
      scenario: 'agent kill -9',
      runs: KILLS,
      recreated: recreated.length,
      duplicates: watch.duplicates,
      recoverMaxS: seconds(Math.max(...recovery)),
      recoverP50S: seconds(median(recovery)!),
      notes: '5 replicas; half the kills during start-up',
    });
    expect(recreated, 'replicas whose container changed').toEqual([]);
    expect(watch.duplicates, watch.duplicateNotes.join('\n')).toBe(0);
    expect([...(await replicaContainers(c.name)).values()].sort()).toEqual([...before.values()].sort());
  });
});
