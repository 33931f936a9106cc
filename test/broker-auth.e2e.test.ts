/**
 * On the embedded broker only the control plane (and the CLI, for logs) may tell an agent what to run:
 * anonymous clients are refused at connect, and a node's own credential cannot publish a desired state (for
 * itself or another node): it is refused and never reaches the agent.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../src/protocol/topics.js';
import { containersOf, nodeSession, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

describe('the embedded broker keeps the desired state to the control plane', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await createCluster(
      'auth',
      `metrics:\n  interval: 1s\nnodes:\n  - { id: local, host: localhost }\nservices:\n  - { name: web, image: otto-test/busybox, command: sleep 3600 }\n`,
    );
    expect((await c.run('cluster', 'start', '--detach')).code).toBe(0);
    await waitFor('web running', async () => (await c.status()).services[0]!.running === 1);
  });

  afterAll(async () => {
    await c.destroy();
  });

  const rogueDesired = () =>
    JSON.stringify({
      cluster: c.name,
      node_id: 'local',
      revision: Date.now() * 2,
      generated_at: new Date().toISOString(),
      settings: { metrics_interval_ms: 1000 },
      replicas: [
        {
          service: 'rogue',
          replica: 1,
          name: `${c.name}-rogue-1`,
          spec_hash: 'abcdefabcdef',
          container: { image: 'otto-test/busybox', command: ['sleep', '3600'], env: {}, ports: [], volumes: [], restart: 'no', labels: {} },
        },
      ],
    });

  it('refuses an anonymous client at connect', async () => {
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${c.mqttPort}`, { reconnectPeriod: 0 })).rejects.toThrow(/Not authorized|Bad username or password/);
  });

  it('refuses a node that publishes a desired state, and the agent runs nothing new', async () => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${c.mqttPort}`, { ...nodeSession(c.dir, c.name, 'local', 'rogue'), reconnectPeriod: 0 });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish(topics.desired('local'), rogueDesired(), { qos: 0, retain: true });
    await closed;
    client.end(true);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await containersOf(c.name, true)).map((x) => x.Labels['otto.service'])).toEqual(['web']);
    const log = readFileSync(join(c.dir, '.otto', 'logs', 'control-plane.log'), 'utf8');
    expect(log).toMatch(/the broker refused a client.*kind=publish.*detail=otto\/nodes\/local\/desired/);
  });

  it('accepts the same message from a client holding the token (so the refusal above is the check), and the control plane takes back control', async () => {
    const token = readFileSync(join(c.dir, '.otto', 'token'), 'utf8').trim();
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${c.mqttPort}`, { username: 'otto-control-plane', password: token, reconnectPeriod: 0 });
    const revisions: number[] = [];
    client.on('message', (_topic, payload) => revisions.push(JSON.parse(payload.toString()).revision));
    await client.subscribeAsync(topics.state('local'));
    const rogue = rogueDesired();
    const rogueRevision = JSON.parse(rogue).revision as number;
    await client.publishAsync(topics.desired('local'), rogue, { qos: 1 });
    // The agent took it (it reports that revision)...
    await waitFor('the agent to report the revision it was sent', async () => revisions.includes(rogueRevision), 30_000, 100);
    // ...and the control plane, seeing an agent ahead of it, publishes its own desired state above it.
    await waitFor('the control plane back in charge', async () => revisions.some((r) => r > rogueRevision), 30_000, 100);
    await waitFor('only web left', async () => (await containersOf(c.name, true)).every((x) => x.Labels['otto.service'] === 'web'), 30_000, 200);
    await client.endAsync();
  });

  it('refuses a wrong token', async () => {
    await expect(
      mqtt.connectAsync(`mqtt://127.0.0.1:${c.mqttPort}`, { username: 'otto-control-plane', password: 'not-the-token', reconnectPeriod: 0 }),
    ).rejects.toThrow(/Not authorized|Bad username or password/);
  });
});
