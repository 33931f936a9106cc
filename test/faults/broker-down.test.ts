/**
 * The broker goes away for 15 s, again and again: the embedded one with its control plane (kill -9), an
 * external Mosquitto on its own (kill -9, then back on the same port). Agents keep their containers: none is
 * removed or replaced, and none gets a second copy; metrics flow again within 5 s of the broker being back.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, waitFor } from '../support/cli.js';
import { createCluster, type TestCluster } from '../support/cluster.js';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { apiStatus, sleep } from './api.js';
import { recreatedReplicas, replicaContainers, watchContainers } from './container-watch.js';
import { count, median, recordFault, seconds } from './fault-report.js';

const OUTAGES = count(5, 20);
const OUTAGE_MS = 15_000;

const services = `services:
  - name: three
    image: otto-test/busybox
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.2; done'
    replicas: 3
    stop_grace_period: 2s
`;

/**
 * Connects to the broker as soon as it is back (retrying every 100 ms) and resolves with how long after that
 * the node's metrics arrived.
 */
function metricsAfterBrokerBack(port: number, token: string | undefined): Promise<{ backAt: number; metricsAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      reconnectPeriod: 100,
      connectTimeout: 1_000,
      ...(token ? { username: 'otto-control-plane', password: token } : {}),
    });
    let backAt = 0;
    const timer = setTimeout(() => {
      client.end(true);
      reject(new Error('no metrics within 60 s of the broker being back'));
    }, OUTAGE_MS + 60_000);
    client.on('error', () => undefined);
    client.on('connect', () => {
      backAt ||= Date.now();
      void client.subscribeAsync('otto/nodes/local/metrics/node');
    });
    client.on('message', () => {
      clearTimeout(timer);
      client.end(true);
      resolve({ backAt, metricsAfterMs: Date.now() - backAt });
    });
  });
}

describe.each([
  { broker: 'embedded', embedded: true },
  { broker: 'external Mosquitto', embedded: false },
])('the $broker broker down for 15 s', ({ broker, embedded }) => {
  let c: TestCluster;
  let mosquitto: Mosquitto | undefined;

  beforeAll(async () => {
    if (!embedded) mosquitto = await startMosquitto();
    const body = `metrics:\n  interval: 1s\ncontrol:\n  interval: 1s\nnodes:\n  - { id: local, host: localhost }\n${services}`;
    c = await createCluster('bdown', body, mosquitto ? { externalBroker: { port: mosquitto.port } } : {});
    const started = await c.run('cluster', 'start', '--detach');
    expect(started.code, started.stderr).toBe(0);
    await waitFor('3 replicas running', async () => (await apiStatus(c))?.services[0]?.running === 3, 60_000, 200);
  });

  afterAll(async () => {
    await c.destroy();
    await mosquitto?.stop();
  });

  it(`${OUTAGES} outages: no replica recreated or doubled, metrics back within 5 s`, { timeout: 1_800_000 }, async () => {
    const before = await replicaContainers(c.name);
    expect(before.size).toBe(3);
    const watch = watchContainers(c.name);
    const metricsBack: number[] = [];
    const recovery: number[] = [];
    const token = embedded ? readFileSync(join(c.dir, '.otto', 'token'), 'utf8').trim() : undefined;
    const port = mosquitto?.port ?? c.mqttPort;
    for (let i = 0; i < OUTAGES; i++) {
      const s = await waitFor('the cluster settled', async () => {
        const status = await apiStatus(c);
        return status?.nodes[0]?.online && status.services[0]!.running === 3 && status;
      }, 60_000, 200);
      if (embedded) {
        process.kill(s.cluster.pid, 'SIGKILL');
        await waitFor('the control plane gone', async () => !isAlive(s.cluster.pid), 10_000, 50);
      } else {
        await mosquitto!.kill();
      }
      const downAt = Date.now();
      const watching = metricsAfterBrokerBack(port, token);
      await sleep(OUTAGE_MS - (Date.now() - downAt));
      if (embedded) {
        const started = await c.run('cluster', 'start', '--detach');
        expect(started.code, started.stderr).toBe(0);
      } else {
        mosquitto = await startMosquitto({ port });
      }
      const { backAt, metricsAfterMs } = await watching;
      metricsBack.push(metricsAfterMs);
      await waitFor('node online, 3 running', async () => {
        const status = await apiStatus(c);
        return status?.nodes[0]?.online && status.services[0]!.running === 3 && !status.services[0]!.stale;
      }, 60_000, 200);
      recovery.push(Date.now() - backAt);
    }
    await sleep(2_000);
    await watch.stop();
    const recreated = recreatedReplicas(before, watch);
    recordFault({
      scenario: `${broker} broker down 15 s`,
      runs: OUTAGES,
      recreated: recreated.length,
      duplicates: watch.duplicates,
      recoverMaxS: seconds(Math.max(...recovery)),
      recoverP50S: seconds(median(recovery)!),
      notes: `metrics back after the broker: max ${seconds(Math.max(...metricsBack))}s, p50 ${seconds(median(metricsBack)!)}s`,
    });
    expect(recreated, 'replicas whose container changed').toEqual([]);
    expect(watch.duplicates, watch.duplicateNotes.join('\n')).toBe(0);
    expect(Math.max(...metricsBack), 'ms from broker back to the first metrics').toBeLessThanOrEqual(5_000);
  });
});
