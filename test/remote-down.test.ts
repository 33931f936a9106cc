/**
 * Remote nodes (the SSH test bed, test/support/sshd.ts), each with its own broker credential:
 * - the agents connect, yet no command line on a node shows its password: it is in a 0600 file beside
 *   the agent's state, which `--mqtt-credentials-file` names;
 * - `otto cluster stop --down` removes the containers on the remote nodes too (over SSH, through the
 *   node's Docker socket), with the control plane running or not; a node it cannot reach is named and
 *   makes it exit 2 once the others are done.
 * The nodes share this machine's Docker engine: the otto.node label tells their containers apart.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterStatus } from '../src/http/schemas.js';
import { TEST_IMAGE, containersOf, freePort, isAlive, removeClusterContainers, waitFor } from './support/cli.js';
import { agentPids, clusterYaml, killAgents, makeWorkdir, startTestBed, type SshdNode, type TestBed, type Workdir } from './support/sshd.js';

const NODES = ['local', 'rpi-01', 'rpi-02'];
const REMOTE = ['rpi-01', 'rpi-02'];

describe('remote nodes with broker credentials: no secret on a command line; stop --down', () => {
  let bed: TestBed;
  let rpi1: SshdNode;
  let rpi2: SshdNode;
  let work: Workdir;
  let mqttPort: number;
  /** Each node's password, from the 0600 store `cluster init` wrote. */
  const passwordOf = (id: string): string => JSON.parse(readFileSync(join(work.dir, '.otto', 'credentials.json'), 'utf8')).nodes[id].password;

  const services = `  - name: here
    image: ${TEST_IMAGE}
    node: local
    command: sh -c 'while true; do sleep 1; done'
    init: true
  - name: there
    image: ${TEST_IMAGE}
    node: rpi-01
    replicas: 2
    command: sh -c 'while true; do sleep 1; done'
    init: true
  - name: yonder
    image: ${TEST_IMAGE}
    node: rpi-02
    command: sh -c 'while true; do sleep 1; done'
    init: true
`;

  const status = () => work.status();

  /** The cluster's containers (running or not) per otto.node label. */
  const containersPerNode = async (): Promise<Record<string, number>> => {
    const counts: Record<string, number> = {};
    for (const c of await containersOf(work.cluster, true)) counts[c.Labels['otto.node']!] = (counts[c.Labels['otto.node']!] ?? 0) + 1;
    return counts;
  };

  /** Starts the cluster and waits for every node online and every replica running. */
  const startCluster = async (): Promise<ClusterStatus> => {
    const result = await work.run(['cluster', 'start', '--detach']);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const live = await waitFor(
      'every node online and every replica running',
      async () => {
        const s = await status();
        return s.nodes.every((n) => n.online) && s.services.every((svc) => svc.running === svc.desired) && s;
      },
      90_000,
    );
    expect(await containersPerNode()).toEqual({ local: 1, 'rpi-01': 2, 'rpi-02': 1 });
    return live;
  };

  const credentialsFile = (node: SshdNode, id: string) => join(node.home, '.otto', 'state', `${work.cluster}-${id}`, 'mqtt.json');

  beforeAll(async () => {
    bed = await startTestBed(2, { firstAddress: 6 });
    [rpi1, rpi2] = bed.nodes as [SshdNode, SshdNode];
    work = makeWorkdir('otto-down-');
    mqttPort = await freePort();
    const yaml = clusterYaml({
      cluster: work.cluster,
      mqttPort,
      httpPort: await freePort(),
      nodes: [
        { id: 'rpi-01', sshd: rpi1 },
        { id: 'rpi-02', sshd: rpi2 },
      ],
      services,
    });
    work.write('otto.yaml', yaml);
    const init = await work.run(['cluster', 'init']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain('broker credentials for local, rpi-01, rpi-02');
    expect(statSync(join(work.dir, '.otto', 'credentials.json')).mode & 0o777).toBe(0o600);
    for (const id of REMOTE) {
      const trust = await work.run(['node', 'trust', id, '--yes']);
      expect(trust.code, trust.stderr).toBe(0);
    }
  });

  afterAll(async () => {
    await rpi2?.restart().catch(() => undefined);
    await work?.run(['cluster', 'stop']);
    if (work) {
      killAgents(work.cluster, NODES);
      await removeClusterContainers(work.cluster);
    }
    await bed?.stop();
  });

  it('the remote agents reach the broker with the credentials, and no command line on the nodes carries them', async () => {
    await startCluster();

    // The broker does check them: a node's name with a wrong password is refused.
    const ca = readFileSync(join(work.dir, '.otto', 'tls', 'ca.pem'), 'utf8');
    await expect(mqtt.connectAsync(`mqtts://127.0.0.1:${mqttPort}`, { ca, username: 'rpi-01', password: 'wrong', reconnectPeriod: 0, connectTimeout: 5_000 })).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );

    for (const [id, node] of [['rpi-01', rpi1], ['rpi-02', rpi2]] as const) {
      const password = passwordOf(id);
      const pids = agentPids(work.cluster, id);
      expect(pids, id).toHaveLength(1);
      // What `ps` shows to every user of the node.
      const argv = readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0');
      const line = argv.join(' ');
      expect(line).not.toContain(password);
      expect(line).not.toMatch(/mqtt:\/\/[^ ]*@/);
      expect(argv[argv.indexOf('--mqtt-url') + 1]).toBe(`mqtts://127.0.0.1:${mqttPort}`);
      // The agent verifies the broker with the cluster's CA, uploaded beside its credential.
      const caFile = argv[argv.indexOf('--mqtt-ca-file') + 1]!;
      expect(readFileSync(caFile, 'utf8')).toBe(readFileSync(join(work.dir, '.otto', 'tls', 'ca.pem'), 'utf8'));
      expect(argv[argv.indexOf('--mqtt-credentials-file') + 1]).toBe(credentialsFile(node, id));
      // Nor is it in the agent's environment.
      expect(readFileSync(`/proc/${pids[0]}/environ`, 'utf8')).not.toContain(password);

      const file = credentialsFile(node, id);
      expect(statSync(file).mode & 0o777, file).toBe(0o600);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ username: id, password });

      const script = join(node.home, '.otto', 'agent', `${work.cluster}-${id}.start.sh`);
      expect(statSync(script).mode & 0o777).toBe(0o700);
      expect(readFileSync(script, 'utf8')).not.toContain(password);
    }
  });

  it('stop --down with the control plane running removes the containers on the remote nodes too', async () => {
    const result = await work.run(['cluster', 'stop', '--down']);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain('removed 4 container(s) (local: 1, rpi-01: 2, rpi-02: 1)');
    for (const id of REMOTE) expect(agentPids(work.cluster, id), id).toEqual([]);
    expect(await containersPerNode()).toEqual({});
  });

  it('stop --down without a control plane: removes what it reaches, names the node it cannot (exit 2), and finishes once it is back', async () => {
    const live = await startCluster();
    const controlPlane = JSON.parse(readFileSync(join(work.dir, '.otto', 'control-plane.json'), 'utf8')) as { pid: number };
    process.kill(controlPlane.pid, 'SIGKILL');
    await waitFor('the control plane gone', async () => !isAlive(controlPlane.pid));
    // The local agent was the killed control plane's child: it outlived it, and `stop` must stop it
    // before removing its container, or it would create it again.
    const local = live.nodes.find((n) => n.local)!.agent_pid!;
    expect(isAlive(local)).toBe(true);
    const rpi2Agent = agentPids(work.cluster, 'rpi-02');
    expect(rpi2Agent).toHaveLength(1);
    await rpi2.stop();

    const partial = await work.run(['cluster', 'stop', '--down']);
    expect(partial.code, `${partial.stdout}\n${partial.stderr}`).toBe(2);
    expect(partial.stdout).toContain(`stopped the agent left running on node local (pid ${local})`);
    expect(partial.stdout).toContain('stopped the agents left running on rpi-01');
    expect(partial.stdout).toContain('removed 3 container(s) (local: 1, rpi-01: 2)');
    expect(partial.stderr).toContain(`otto: node rpi-02: cannot reach SSH at ${rpi2.host}:${rpi2.port}: connection refused`);
    expect(partial.stderr).toContain('hint: make those nodes reachable (SSH)');
    expect(await containersPerNode()).toEqual({ 'rpi-02': 1 });
    // Out of reach, its agent and container went on.
    expect(agentPids(work.cluster, 'rpi-02')).toEqual(rpi2Agent);

    await rpi2.restart();
    const rest = await work.run(['cluster', 'stop', '--down']);
    expect(rest.code, `${rest.stdout}\n${rest.stderr}`).toBe(0);
    expect(rest.stdout).toContain('stopped the agents left running on rpi-02');
    expect(rest.stdout).toContain('removed 1 container(s) (local: 0, rpi-01: 0, rpi-02: 1)');
    expect(agentPids(work.cluster, 'rpi-02')).toEqual([]);
    expect(await containersPerNode()).toEqual({});
  });
});
