/**
 * One agent, a real Mosquitto, the real Docker engine, and this test in the control plane's seat: it
 * publishes desired states itself. A newer desired state arriving mid-reconcile stops the old plan at its
 * next action; an older or equal revision is ignored; a Docker engine that hangs stalls no heartbeat. The
 * one-file bundle every node runs reads no config and checks its messages without zod until one needs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_ENV, AGENT_NODE_FLAGS, localAgentBundle } from '../src/agent/bundle.js';
import { replicaSpec } from '../src/control-plane/desired-state.js';
import { nodeStateSchema, type DesiredState, type NodeState } from '../src/protocol/messages.js';
import { encode } from '../src/protocol/codec.js';
import { topics } from '../src/protocol/topics.js';
import { cliPath, docker, freePort, removeClusterContainers, waitFor } from './support/cli.js';
import { startMosquitto, type Mosquitto } from './support/mosquitto.js';

const spec = { image: 'otto-test/busybox', command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.2; done'], env: {}, ports: [], volumes: [], restart: 'unless-stopped' as const, labels: {}, stop_grace_ms: 1_000 };

describe('an agent obeying desired states over a real broker', () => {
  let broker: Mosquitto;
  let client: MqttClient;
  let agent: ChildProcess | undefined;
  let cluster: string;
  const states: NodeState[] = [];
  let metricsSeen = 0;

  const desired = (revision: number, replicas: number): DesiredState => ({
    cluster,
    node_id: 'n1',
    revision,
    generated_at: new Date().toISOString(),
    settings: { metrics_interval_ms: 500 },
    replicas: Array.from({ length: replicas }, (_, i) => replicaSpec(cluster, 'svc', i + 1, spec, 0)),
  });
  const publish = (d: DesiredState) => client.publishAsync(topics.desired('n1'), encode(d), { qos: 1, retain: true });
  const startAgent = (dockerUrl = 'unix:///var/run/docker.sock') => {
    const stateDir = mkdtempSync(join(tmpdir(), 'otto-agent-state-'));
    agent = spawn(process.execPath, [cliPath, 'agent', '--node', 'n1', '--cluster', cluster, '--mqtt-url', `mqtt://127.0.0.1:${broker.port}`, '--docker-url', dockerUrl, '--state-dir', stateDir, '--interval', '500ms', '-c', '/nonexistent/otto.yaml'], {
      stdio: 'ignore',
    });
  };
  const ours = async () => docker.listContainers({ all: true, filters: { label: [`otto.cluster=${cluster}`] } });

  beforeAll(async () => {
    broker = await startMosquitto();
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`);
    client.on('message', (topic, payload) => {
      if (topic.endsWith('/state')) {
        const parsed = nodeStateSchema.safeParse(JSON.parse(payload.toString()));
        if (parsed.success) states.push(parsed.data);
      } else metricsSeen++;
    });
    await client.subscribeAsync(['otto/nodes/n1/state', 'otto/nodes/n1/metrics/node']);
  });

  afterEach(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((resolve) => agent!.once('exit', resolve));
    }
    await removeClusterContainers(cluster);
  });

  afterAll(async () => {
    await client.endAsync();
    await broker.stop();
  });

  it('drops the rest of a plan when a newer desired state arrives mid-reconcile', async () => {
    cluster = `dsr${Math.random().toString(36).slice(2, 7)}`;
    startAgent();
    const created = new Set<string>();
    const events = await docker.getEvents({ filters: { type: ['container'], event: ['create'], label: [`otto.cluster=${cluster}`] } });
    events.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) created.add(JSON.parse(line).id);
    });
    await publish(desired(10, 20));
    await waitFor('the first containers', async () => created.size >= 1, 30_000, 20);
    await publish(desired(11, 1));
    await waitFor('one replica left', async () => {
      const list = await ours();
      return list.length === 1 && list[0]!.State === 'running' && states.at(-1)?.revision === 11;
    }, 60_000, 200);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    (events as unknown as { destroy(): void }).destroy();
    // At most 4 actions run at once: those already under way finish, the queued ones are dropped.
    expect(created.size).toBeLessThan(12);
  });

  it('ignores an older or equal revision: what a node runs never goes backwards', async () => {
    cluster = `dso${Math.random().toString(36).slice(2, 7)}`;
    startAgent();
    await publish(desired(20, 2));
    await waitFor('2 running at revision 20', async () => (await ours()).filter((c) => c.State === 'running').length === 2 && states.at(-1)?.revision === 20, 30_000, 200);
    await publish(desired(19, 5));
    await publish(desired(20, 4));
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await ours()).length).toBe(2);
    expect(states.at(-1)?.revision).toBe(20);
    await publish(desired(21, 3));
    await waitFor('3 running at revision 21', async () => (await ours()).filter((c) => c.State === 'running').length === 3, 30_000, 200);
  });

  it('restarts stopped containers as Docker means each policy: on-failure not after exit 0, no never', async () => {
    cluster = `dsp${Math.random().toString(36).slice(2, 7)}`;
    startAgent();
    const once = (restart: 'on-failure' | 'no' | 'always', code: number, index: number) =>
      replicaSpec(cluster, `${restart}-${code}`, index, { ...spec, restart, command: ['sh', '-c', `sleep 1; exit ${code}`] }, 0);
    const replicas = [once('on-failure', 0, 1), once('no', 1, 1), once('on-failure', 3, 1)];
    await publish({ ...desired(40, 0), replicas });
    const restarts = async (service: string) => {
      const [container] = await docker.listContainers({ all: true, filters: { label: [`otto.cluster=${cluster}`, `otto.service=${service}`] } });
      return container ? (await docker.getContainer(container.Id).inspect()).RestartCount : -1;
    };
    // on-failure with a failing exit keeps being restarted (by Docker); the others stay stopped.
    await waitFor('the failing on-failure container restarted', async () => (await restarts('on-failure-3')) >= 2, 30_000, 500);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const report = states.at(-1)!;
    expect(report.replicas.find((r) => r.service === 'on-failure-0')).toMatchObject({ state: 'exited', exit_code: 0 });
    expect(report.replicas.find((r) => r.service === 'no-1')).toMatchObject({ state: 'exited', exit_code: 1 });
    expect(await restarts('on-failure-0')).toBe(0);
    expect(await restarts('no-1')).toBe(0);
    const started = async (service: string) => {
      const [container] = await docker.listContainers({ all: true, filters: { label: [`otto.cluster=${cluster}`, `otto.service=${service}`] } });
      return (await docker.getContainer(container!.Id).inspect()).State.StartedAt;
    };
    const firstStart = await started('on-failure-0');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await started('on-failure-0')).toBe(firstStart);
  });

  it('as the one-file bundle every node runs: reads no config, and loads zod only for a message its checks refuse', async () => {
    cluster = `dsb${Math.random().toString(36).slice(2, 7)}`;
    // Started where a broken otto.yaml lies, as the control plane starts its local agents: with every
    // setting as a flag, the config is not read (it would fail, and cost the agent the config's memory).
    const cwd = mkdtempSync(join(tmpdir(), 'otto-agent-cwd-'));
    writeFileSync(join(cwd, 'otto.yaml'), 'cluster: [not a config\n');
    const bundle = localAgentBundle().path;
    const args = ['agent', '--node', 'n1', '--cluster', cluster, '--mqtt-url', `mqtt://127.0.0.1:${broker.port}`, '--state-dir', mkdtempSync(join(tmpdir(), 'otto-agent-state-')), '--interval', '500ms'];
    let output = '';
    agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, bundle, ...args], { cwd, env: { ...process.env, ...AGENT_ENV, OTTO_LOG_PRETTY: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    agent.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const running = (n: number, revision: number) => async () => (await ours()).filter((c) => c.State === 'running').length === n && states.at(-1)?.revision === revision;
    await publish(desired(50, 2));
    await waitFor('2 running at revision 50', running(2, 50), 30_000, 200);
    expect(output).not.toContain('checked a message with zod');
    // A field this agent does not know (a newer control plane's): the build's check refuses the replica,
    // zod (loaded now, from the bundle) strips the field, and the replica runs.
    const newer = desired(51, 3);
    newer.replicas[2] = { ...newer.replicas[2]!, from_a_newer_control_plane: true } as (typeof newer.replicas)[number];
    await publish(newer);
    await waitFor('3 running at revision 51', running(3, 51), 30_000, 200);
    expect(output).toContain('checked a message with zod');
    expect(states.at(-1)!.replicas.filter((r) => r.state === 'error')).toEqual([]);

    // Without the flags, the bundle says what it needs instead of reading otto.yaml (the CLI's `otto agent -c` does).
    const refused = spawnSync(process.execPath, [bundle, 'agent', '--node', 'n1'], { cwd, encoding: 'utf8' });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('the one-file agent reads no config: pass --cluster, --mqtt-url, --state-dir and --interval');
  });

  it('keeps its heartbeats when the Docker engine hangs, and says Docker does not answer', async () => {
    cluster = `dsh${Math.random().toString(36).slice(2, 7)}`;
    // An "engine" that accepts connections and never answers.
    const held: Socket[] = [];
    const hung: Server = createServer((socket) => held.push(socket));
    const port = await freePort();
    await new Promise<void>((resolve) => hung.listen(port, '127.0.0.1', resolve));
    try {
      startAgent(`tcp://127.0.0.1:${port}`);
      await publish(desired(30, 2));
      const before = metricsSeen;
      const report = await waitFor('a state report saying Docker does not answer', async () => states.find((s) => s.revision === 30 && !s.docker.reachable), 40_000, 200);
      expect(report.docker.error).toContain('no answer from the Docker engine in time');
      // Node metrics every 500 ms all along: the heartbeat never waited for Docker.
      expect(metricsSeen - before).toBeGreaterThanOrEqual(20);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => hung.close(resolve));
    }
  });
});
