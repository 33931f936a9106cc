/**
 * A real control plane (`otto cluster start --detach`, embedded broker) with 200 nodes, each a simulated
 * agent (test/support/sim-fleet: its own credential and client id, node and container metrics and state
 * every second, a last will, desired states obeyed without Docker). The status must say exactly what the
 * agents say: every node online with its metrics and containers, every replica running on the node it was
 * placed on at the spec hash that node runs; a group cut off abruptly shows as unreachable, its replicas
 * stale, the others untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterStatusSchema, type ClusterStatus } from '../src/http/schemas.js';
import { waitFor } from './support/cli.js';
import { createCluster, startSimulated, type TestCluster } from './support/cluster.js';
import { SimFleet } from './support/sim-fleet/sim-fleet.js';

const NODES = 200;
const GROUP = 50;
const ids = Array.from({ length: NODES }, (_, i) => `n${String(i + 1).padStart(3, '0')}`);
const groupOf = (i: number) => `g${Math.floor(i / GROUP)}`;

const config = `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
${ids.map((id, i) => `  - { id: ${id}, host: 127.0.0.1, labels: { group: ${groupOf(i)} } }`).join('\n')}
services:
${Array.from({ length: NODES / GROUP }, (_, g) => `  - { name: s${g}, image: otto-test/busybox, command: sleep 86400, replicas: ${GROUP}, placement: { constraints: ["group == g${g}"] }${g === 0 ? ', healthcheck: { test: "true", interval: 1s }' : ''} }`).join('\n')}
`;

describe(`a simulated fleet of ${NODES} nodes against a real control plane`, () => {
  let c: TestCluster;
  let fleet: SimFleet;
  let token: string;

  const status = async (): Promise<ClusterStatus> => {
    const response = await fetch(`http://127.0.0.1:${c.httpPort}/api/v1/status`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    return clusterStatusSchema.parse(await response.json());
  };

  beforeAll(async () => {
    c = await createCluster('simfleet', config);
    // The simulated agents stand in for the local nodes' agents: the control plane must not start real ones.
    const started = await startSimulated(c);
    token = started.token;
    fleet = new SimFleet({ host: '127.0.0.1', port: c.mqttPort, cluster: c.name, intervalMs: 1_000, nodes: ids.map((id) => ({ id, password: started.passwordOf(id) })) });
    fleet.start();
  });

  afterAll(async () => {
    fleet?.stop();
    // No container was ever created: stopping the control plane is all there is to clean.
    await c?.run('cluster', 'stop');
  });

  it('has every node online, with the metrics and containers its agent reports', async () => {
    const s = await waitFor('every node online', async () => {
      const current = await status();
      return current.nodes.every((n) => n.state === 'online' && n.metrics && n.containers.length === 3) && current;
    }, 45_000, 500);
    expect(s.nodes.map((n) => n.id)).toEqual(ids);
    expect(fleet.snapshot()).toMatchObject({ connected: NODES, refused: 0 });
    for (const node of s.nodes) {
      expect(node).toMatchObject({ online: true, agent_version: '0.1.0-sim', arch: 'arm64', docker: { reachable: true, version: '24.0.7' } });
      expect(node.metrics!.node_id).toBe(node.id);
      expect(Date.now() - Date.parse(node.metrics!.timestamp)).toBeLessThan(10_000);
      // Its replica (from the desired state it was sent) and the two containers Otto does not manage.
      const running = fleet.running(node.id)!;
      expect(node.containers.filter((x) => x.service).map((x) => x.container_name)).toEqual(running.replicas.map((r) => r.name));
      expect(node.containers.filter((x) => !x.service).map((x) => x.container_name)).toEqual(['watchtower', 'node-exporter']);
    }
    expect(s.counters.invalid_messages).toBe(0);
  });

  it('shows every replica running where it was placed, at the spec hash its node runs', async () => {
    const s = await waitFor('every replica running', async () => {
      const current = await status();
      return current.services.every((x) => x.running === GROUP && x.state === 'running') && current;
    }, 30_000, 500);
    expect(s.services.map((x) => [x.name, x.desired, x.running, x.stale])).toEqual(Array.from({ length: NODES / GROUP }, (_, g) => [`s${g}`, GROUP, GROUP, 0]));
    expect(s.services[0]!.health).toBe('healthy');
    const seen = new Set<string>();
    for (const service of s.services) {
      for (const replica of service.replicas) {
        const onNode = fleet.running(replica.node)!;
        // Placed by group label, one replica a node, and reported by that very node at the hash it runs.
        expect(groupOf(ids.indexOf(replica.node))).toBe(service.name.replace('s', 'g'));
        expect(onNode.replicas).toEqual([{ name: replica.name, spec_hash: replica.spec_hash }]);
        expect(replica).toMatchObject({ state: 'running', node_state: 'online', stale: false });
        seen.add(replica.node);
      }
    }
    expect(seen.size).toBe(NODES);
    expect(s.drift).toEqual([]);
    // The CLI reads the same status.
    const cli = await c.run('cluster', 'status', '--json');
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout).nodes.filter((n: { online: boolean }) => n.online)).toHaveLength(NODES);
  });

  it('shows a group cut off abruptly as unreachable, its replicas stale, and nothing else changed', async () => {
    const killed = ids.filter((_, i) => i % 20 === 7);
    const killedAt = Date.now();
    fleet.kill(killed);
    const s = await waitFor('the killed nodes unreachable', async () => {
      const current = await status();
      return current.nodes.filter((n) => killed.includes(n.id)).every((n) => n.state === 'unreachable') && current;
    }, 15_000, 250);
    // Their last wills say so at once; the heartbeat timeout (3 intervals) is the bound without them.
    expect(Date.now() - killedAt).toBeLessThan(6_000);
    expect(s.nodes.filter((n) => n.state !== 'online').map((n) => n.id)).toEqual(killed);
    for (const service of s.services) {
      const lost = service.replicas.filter((r) => killed.includes(r.node));
      expect(service.stale).toBe(lost.length);
      for (const replica of lost) expect(replica).toMatchObject({ state: 'running', node_state: 'unreachable', stale: true });
      // Unreachable is not gone: the replicas stay assigned, counted running (stale), no drift.
      expect(service.running).toBe(GROUP);
    }
    expect(fleet.snapshot().connected).toBe(NODES - killed.length);
  });
});
