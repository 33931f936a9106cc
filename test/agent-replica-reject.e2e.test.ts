/**
 * One agent, a real Mosquitto, the real Docker engine, and this test in the control plane's seat. A
 * desired state with one replica the agent cannot run (`nano_cpus: null`, what JSON makes of Infinity)
 * fails that replica alone, with its reason in the node's state: the good one runs. Used to be: the
 * whole desired state was ignored and nothing new started on the node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicaSpec } from '../src/control-plane/desired-state.js';
import { nodeStateSchema, type DesiredState, type NodeState } from '../src/protocol/messages.js';
import { topics } from '../src/protocol/topics.js';
import { cliPath, docker, removeClusterContainers, waitFor } from './support/cli.js';
import { startMosquitto, type Mosquitto } from './support/mosquitto.js';

const spec = { image: 'otto-test/busybox', command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.2; done'], env: {}, ports: [], volumes: [], restart: 'unless-stopped' as const, labels: {}, stop_grace_ms: 1_000 };

describe('an agent given a replica it cannot run', () => {
  let broker: Mosquitto;
  let client: MqttClient;
  let agent: ChildProcess | undefined;
  const cluster = `rej${Math.random().toString(36).slice(2, 7)}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'otto-agent-state-'));
  let states: NodeState[] = [];

  const startAgent = () => {
    agent = spawn(process.execPath, [cliPath, 'agent', '--node', 'n1', '--cluster', cluster, '--mqtt-url', `mqtt://127.0.0.1:${broker.port}`, '--state-dir', stateDir, '--interval', '500ms', '-c', '/nonexistent/otto.yaml'], { stdio: 'ignore' });
  };
  const stopAgent = async () => {
    if (!agent || agent.exitCode !== null) return;
    agent.kill('SIGTERM');
    await new Promise((resolve) => agent!.once('exit', resolve));
  };
  /** The desired state as the control plane would send it, with `null` where JSON put Infinity. */
  const publish = (revision: number, badCpus: number | null) => {
    const desired: DesiredState = {
      cluster,
      node_id: 'n1',
      revision,
      generated_at: new Date().toISOString(),
      settings: { metrics_interval_ms: 500 },
      replicas: [replicaSpec(cluster, 'good', 1, spec, 0), replicaSpec(cluster, 'greedy', 1, { ...spec, nano_cpus: badCpus ?? Infinity }, 0)],
    };
    const json = JSON.parse(JSON.stringify(desired));
    expect(json.replicas[1].container.nano_cpus).toBe(badCpus);
    return client.publishAsync(topics.desired('n1'), JSON.stringify(json), { qos: 1, retain: true });
  };
  const running = async (service: string) =>
    (await docker.listContainers({ filters: { label: [`otto.cluster=${cluster}`, `otto.service=${service}`] } })).filter((c) => c.State === 'running').length;
  const greedyIn = (state: NodeState | undefined) => state?.replicas.find((r) => r.service === 'greedy');

  beforeAll(async () => {
    broker = await startMosquitto();
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`);
    client.on('message', (_topic, payload) => {
      const parsed = nodeStateSchema.safeParse(JSON.parse(payload.toString()));
      if (parsed.success) states.push(parsed.data);
    });
    await client.subscribeAsync(topics.state('n1'));
  });

  afterAll(async () => {
    await stopAgent();
    await client.endAsync();
    await broker.stop();
    await removeClusterContainers(cluster);
  });

  it('runs the good replica and reports the bad one in error with its reason, also after a restart', async () => {
    startAgent();
    await publish(1, null);
    await waitFor('the good replica running', async () => (await running('good')) === 1, 30_000, 200);
    const report = await waitFor('a report of revision 1 with the good replica running', async () =>
      states.findLast((s) => s.revision === 1 && s.replicas.some((r) => r.service === 'good' && r.state === 'running')),
    30_000, 200);
    expect(greedyIn(report)).toEqual({
      service: 'greedy',
      replica: 1,
      name: `${cluster}-greedy-1`,
      state: 'error',
      health: 'none',
      error: "this agent cannot run the replica's spec: container.nano_cpus: expected number, received null",
    });
    expect(await running('greedy')).toBe(0);

    // Restarted, it reads the same desired state from disk (the retained one is no newer): same verdict.
    await stopAgent();
    states = [];
    startAgent();
    const again = await waitFor('a report after the restart', async () => states.findLast((s) => s.revision === 1 && greedyIn(s)), 30_000, 200);
    expect(greedyIn(again)).toMatchObject({ state: 'error', error: expect.stringContaining('container.nano_cpus') });
    expect(await running('good')).toBe(1);
  });

  it('runs the replica once a newer desired state fixes it', async () => {
    await publish(2, 500_000_000);
    await waitFor('the fixed replica running', async () => (await running('greedy')) === 1, 30_000, 200);
    const report = await waitFor('a report of revision 2 with both running', async () =>
      states.findLast((s) => s.revision === 2 && s.replicas.filter((r) => r.state === 'running').length === 2),
    30_000, 200);
    expect(greedyIn(report)?.error).toBeUndefined();
  });
});
