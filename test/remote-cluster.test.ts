/**
 * A 3-node cluster through the CLI: the local node plus two nodes over SSH from the test bed
 * (test/support/sshd.ts). `otto cluster start` uploads and starts the remote agents, places the services
 * as configured, streams metrics from all three; an older agent is replaced; an SSH server that dies
 * leaves its node's agent and containers running and the node online; `otto cluster stop` leaves no agent
 * process on any node. Needs the RemoteAgentManager wired into the control plane.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KnownHosts } from '../src/remote/known-hosts.js';
import { RemoteAgent, loadAgentBundle } from '../src/remote/remote-agent.js';
import { SshConnection } from '../src/remote/ssh-connection.js';
import { TEST_IMAGE, brokerLogin, containersOf, docker, freePort, isAlive, removeClusterContainers, waitFor } from './support/cli.js';
import { agentPids, clusterYaml, generateKey, killAgents, makeWorkdir, startTestBed, type SshdNode, type TestBed, type Workdir } from './support/sshd.js';

const root = new URL('..', import.meta.url).pathname;
const NODES = ['local', 'rpi-01', 'rpi-02'];

describe('a 3-node cluster: local + 2 nodes over SSH', () => {
  let bed: TestBed;
  let rpi1: SshdNode;
  let rpi2: SshdNode;
  let work: Workdir;
  let mqttPort: number;
  let oldAgentPid: number;

  const services = `  - name: here
    image: ${TEST_IMAGE}
    node: local
    command: sh -c 'while true; do sleep 1; done'
    init: true
  - name: there
    image: ${TEST_IMAGE}
    node: rpi-01
    command: sh -c 'while true; do sleep 1; done'
    init: true
  - name: yonder
    image: ${TEST_IMAGE}
    node: rpi-02
    command: sh -c 'while true; do sleep 1; done'
    init: true
`;

  const status = () => work.status();

  beforeAll(async () => {
    bed = await startTestBed(2, { firstAddress: 4 });
    [rpi1, rpi2] = bed.nodes as [SshdNode, SshdNode];
    work = makeWorkdir('otto-3node-');
    mqttPort = await freePort();
    work.write(
      'otto.yaml',
      clusterYaml({
        cluster: work.cluster,
        mqttPort,
        httpPort: await freePort(),
        nodes: [
          { id: 'rpi-01', sshd: rpi1 },
          { id: 'rpi-02', sshd: rpi2 },
        ],
        services,
      }),
    );
    for (const id of ['rpi-01', 'rpi-02']) {
      const trust = await work.run(['node', 'trust', id, '--yes']);
      expect(trust.code, trust.stderr).toBe(0);
    }
  });

  afterAll(async () => {
    await work.run(['cluster', 'stop']);
    killAgents(work.cluster, NODES);
    await removeClusterContainers(work.cluster);
    await bed?.stop();
  });

  it('a wrong key makes `cluster start` fail with exit 2 and a clear line', async () => {
    const wrong = generateKey(join(work.dir, 'wrong_key'));
    work.write(
      'wrong-key.yaml',
      clusterYaml({ cluster: work.cluster, mqttPort, httpPort: await freePort(), nodes: [{ id: 'rpi-01', sshd: rpi1, identity: wrong.path }] }),
    );
    const result = await work.run(['cluster', 'start', '--detach'], 'wrong-key.yaml');
    if (result.code === 0) await work.run(['cluster', 'stop'], 'wrong-key.yaml');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`rpi-01: SSH authentication as root failed (tried key ${wrong.path})`);
    expect(agentPids(work.cluster, 'rpi-01')).toEqual([]);
    expect((await work.run(['cluster', 'status'], 'wrong-key.yaml')).stdout).toContain('is stopped');
  });

  it('an older agent already on a node (Otto 0.0.1) runs before the start', async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'otto-old-bundle-'));
    execFileSync(process.execPath, [join(root, 'scripts', 'bundle-agent.mjs'), '--version', '0.0.1', '--outdir', outdir, '--quiet']);
    const old = loadAgentBundle(join(outdir, 'otto-agent-0.0.1.cjs'), '0.0.1');
    const conn = await SshConnection.connect(
      { nodeId: 'rpi-01', host: rpi1.host, port: rpi1.port, user: 'root', identity: rpi1.clientKeyPath },
      { knownHosts: KnownHosts.forWorkspace(join(work.dir, '.otto'), work.home) },
    );
    try {
      const started = await new RemoteAgent(conn, 'rpi-01', work.cluster, old).start({
        cluster: work.cluster,
        mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
        interval: '1s',
        dockerUrl: 'unix:///var/run/docker.sock',
      });
      oldAgentPid = started.pid;
    } finally {
      conn.close();
    }
    expect(agentPids(work.cluster, 'rpi-01')).toEqual([oldAgentPid]);
  });

  it('starts: every node online with metrics, the old agent replaced, the services placed as configured', async () => {
    const result = await work.run(['cluster', 'start', '--detach']);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const live = await waitFor('3 nodes online with metrics and 3 services running', async () => {
      const s = await status();
      return s.nodes.every((n) => n.online && n.metrics) && s.services.every((svc) => svc.running === 1) && s;
    }, 90_000);
    expect(live.nodes.map((n) => n.id)).toEqual(NODES);
    for (const id of ['rpi-01', 'rpi-02']) {
      const node = live.nodes.find((n) => n.id === id)!;
      expect(node.local).toBe(false);
      expect(node.agent_version).toBe('0.1.0');
      expect(node.ssh_state).toBe('connected');
      expect(agentPids(work.cluster, id)).toEqual([node.agent_pid]);
    }
    expect(isAlive(oldAgentPid)).toBe(false);

    const placed = (await containersOf(work.cluster)).map((c) => [c.Labels['otto.service'], c.Labels['otto.node']]).sort();
    expect(placed).toEqual([
      ['here', 'local'],
      ['there', 'rpi-01'],
      ['yonder', 'rpi-02'],
    ]);

    const list = await work.run(['node', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/rpi-01\s+127\.0\.0\.4\s+ssh root@127\.0\.0\.4\s+connected\s+online/);
    expect(list.stdout).toContain('connected');
  });

  it('cluster check, while the cluster runs, connects to the broker over MQTT from every node', async () => {
    const result = await work.run(['cluster', 'check', '--json']);
    expect(result.code, result.stdout).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.broker_mode).toBe('mqtt');
    expect(report.nodes.map((n: { checks: { broker: { status: string } } }) => n.checks.broker.status)).toEqual(['ok', 'ok', 'ok']);
  });

  it('streams metrics from all three nodes to a plain MQTT subscriber', async () => {
    // Remote nodes: mqtt.tls auto is on, so the broker speaks mqtts with the cluster's own CA.
    const url = (await status()).cluster.mqtt_url;
    expect(url).toBe(`mqtts://127.0.0.1:${mqttPort}`);
    const client = await mqtt.connectAsync(url, brokerLogin(work.dir));
    const seen = new Set<string>();
    client.on('message', (topic) => seen.add(topic));
    await client.subscribeAsync('otto/nodes/+/metrics/#');
    await waitFor('node and container metrics from every node', async () =>
      NODES.every((id) => seen.has(`otto/nodes/${id}/metrics/node`) && seen.has(`otto/nodes/${id}/metrics/containers`)),
    );
    await client.endAsync();
  });

  it('an SSH server that dies leaves the agent and containers running and the node online over MQTT', async () => {
    const before = (await status()).nodes.find((n) => n.id === 'rpi-02')!;
    const container = (await containersOf(work.cluster)).find((c) => c.Labels['otto.node'] === 'rpi-02')!;
    await rpi2.stop();
    const during = await waitFor('rpi-02 SSH state not connected', async () => {
      const s = await status();
      const node = s.nodes.find((n) => n.id === 'rpi-02')!;
      return node.ssh_state !== 'connected' && node;
    }, 30_000);
    expect(during.ssh_state).toMatch(/^(reconnecting|disconnected)/);
    expect(isAlive(before.agent_pid!)).toBe(true);
    // Online: fresh heartbeats keep coming over MQTT while SSH is down.
    const cutAt = Date.now();
    await waitFor('fresh heartbeats from rpi-02', async () => {
      const node = (await status()).nodes.find((n) => n.id === 'rpi-02')!;
      return node.online && node.last_seen !== null && Date.parse(node.last_seen) > cutAt + 3_000;
    });
    expect((await docker.getContainer(container.Id).inspect()).State.Running).toBe(true);

    await rpi2.restart();
    await waitFor('rpi-02 SSH reconnected', async () => (await status()).nodes.find((n) => n.id === 'rpi-02')!.ssh_state === 'connected', 60_000);
    expect((await status()).nodes.find((n) => n.id === 'rpi-02')!.agent_pid).toBe(before.agent_pid);
  });

  it('stop leaves no agent process on any node, and the containers running', async () => {
    const s = await status();
    const pids = s.nodes.map((n) => n.agent_pid!);
    const result = await work.run(['cluster', 'stop']);
    expect(result.code, result.stderr).toBe(0);
    for (const id of ['rpi-01', 'rpi-02']) expect(agentPids(work.cluster, id), id).toEqual([]);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect((await containersOf(work.cluster)).map((c) => c.State)).toEqual(['running', 'running', 'running']);
  });

  it('after the control plane was killed, stop still stops the remote agents', async () => {
    const start = await work.run(['cluster', 'start', '--detach']);
    expect(start.code, start.stderr).toBe(0);
    const s = await waitFor('remote agents connected', async () => {
      const current = await status();
      return current.nodes.filter((n) => !n.local).every((n) => n.ssh_state === 'connected' && n.agent_pid) && current;
    });
    const remotePids = s.nodes.filter((n) => !n.local).map((n) => n.agent_pid!);
    const controlPlane = JSON.parse(readFileSync(join(work.dir, '.otto', 'control-plane.json'), 'utf8')) as { pid: number };
    process.kill(controlPlane.pid, 'SIGKILL');
    await waitFor('the control plane gone', async () => !isAlive(controlPlane.pid));
    for (const pid of remotePids) expect(isAlive(pid)).toBe(true);
    // The local agent was the killed control plane's child: it outlived it.
    const local = s.nodes.find((n) => n.local)!.agent_pid!;
    expect(isAlive(local)).toBe(true);

    const result = await work.run(['cluster', 'stop']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`stopped the agent left running on node local (pid ${local})`);
    expect(result.stdout).toContain('stopped the agents left running on rpi-01, rpi-02');
    for (const id of ['rpi-01', 'rpi-02']) expect(agentPids(work.cluster, id), id).toEqual([]);
    // Gone, or an exited process init has yet to reap.
    await waitFor('the local agent reaped', async () => !isAlive(local), 10_000);
  });
});
