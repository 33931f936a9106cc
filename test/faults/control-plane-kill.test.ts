/**
 * kill -9 of the control plane in the middle of a rolling restart, again and again. Only the replicas the
 * operation had reached (their restart generation was bumped in the ledger before the kill) may get a new
 * container; the interrupted operation shows as failed after the restart; the ledger on disk is always a
 * whole, valid snapshot; no replica ever has two containers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, waitFor } from '../support/cli.js';
import { createCluster, type TestCluster } from '../support/cluster.js';
import { apiOperations, apiPost, apiStatus, sleep } from './api.js';
import { recreatedReplicas, replicaContainers, watchContainers } from './container-watch.js';
import { count, median, recordFault, seconds } from './fault-report.js';

const KILLS = count(5, 20);

/** The ledger as a whole snapshot: parses, and has what this scenario reads. */
function readLedger(dir: string): { generations: Record<string, Record<string, number>>; operations: { id: string; state: string }[] } {
  const ledger = JSON.parse(readFileSync(join(dir, '.otto', 'ledger.json'), 'utf8'));
  expect(ledger.version).toBe(1);
  expect(Array.isArray(ledger.operations)).toBe(true);
  return ledger;
}

describe('kill -9 of the control plane during a rolling restart', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await createCluster(
      'cpkill',
      `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - { id: local, host: localhost }
services:
  - name: slow
    image: otto-test/busybox
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.2; done'
    replicas: 5
    stop_grace_period: 2s
    update: { parallelism: 1, monitor: 1s }
`,
    );
  });

  afterAll(async () => {
    await c.destroy();
  });

  it(`${KILLS} kills: only reached replicas change, the operation shows as failed, the ledger stays valid`, { timeout: 900_000 }, async () => {
    const startAndSettle = async () => {
      const started = await c.run('cluster', 'start', '--detach');
      expect(started.code, started.stderr).toBe(0);
      return waitFor('5 replicas running and no operation under way', async () => {
        const s = await apiStatus(c);
        return s && s.services[0]!.running === 5 && !s.operation && s.queue.length === 0 && s.services[0]!.replicas.every((r) => !r.stale) && s;
      }, 120_000, 200);
    };
    await startAndSettle();
    const recovery: number[] = [];
    let unexpected = 0;
    let duplicates = 0;
    for (let i = 0; i < KILLS; i++) {
      const before = await replicaContainers(c.name);
      const generationsBefore = { ...(readLedger(c.dir).generations.slow ?? {}) };
      const watch = watchContainers(c.name);
      const op = await apiPost(c, '/api/v1/services/slow/restart', { rolling: true });
      // Kill somewhere in the operation: before its first batch is done, or a few batches in.
      const reach = i % 3;
      const running = await waitFor('the rolling restart under way', async () => {
        const s = await apiStatus(c);
        return s?.operation?.id === op.id && (s.operation.progress?.done ?? 0) >= reach && s;
      }, 60_000, 100);
      await sleep(Math.random() * 1_000);
      process.kill(running.cluster.pid, 'SIGKILL');
      const killedAt = Date.now();
      await waitFor('the control plane gone', async () => !isAlive(running.cluster.pid), 10_000, 50);
      const atKill = readLedger(c.dir);
      const reached = Object.entries(atKill.generations.slow ?? {})
        .filter(([replica, generation]) => generation > (generationsBefore[replica] ?? 0))
        .map(([replica]) => `slow#${replica}`);

      await startAndSettle();
      recovery.push(Date.now() - killedAt);
      const ops = await apiOperations(c);
      expect(ops.find((o) => o.id === op.id)).toMatchObject({ state: 'failed', message: 'interrupted: the control plane stopped during the operation' });
      await sleep(1_500);
      await watch.stop();
      const changed = recreatedReplicas(before, watch);
      const notReached = changed.filter((key) => !reached.includes(key));
      unexpected += notReached.length;
      duplicates += watch.duplicates;
      expect(notReached, `kill ${i + 1}: replicas changed that the operation had not reached (reached: ${reached.join(', ')})`).toEqual([]);
      expect(watch.duplicates, watch.duplicateNotes.join('\n')).toBe(0);
    }
    recordFault({
      scenario: 'control plane kill -9 in a rolling restart',
      runs: KILLS,
      recreated: unexpected,
      duplicates,
      recoverMaxS: seconds(Math.max(...recovery)),
      recoverP50S: seconds(median(recovery)!),
      notes: 'recreated = replicas the operation had not reached; recovery = kill to 5/5 running, restarted',
    });
  });
});
