/**
 * Status tells the truth during faults: a node whose agent does not answer is unreachable and its replicas
 * show their last known state, marked stale (not "0 running", not "not placed"); with the control plane
 * down, `cluster status` says so and shows what the agents, still running, report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterStatusSchema } from '../../src/http/schemas.js';
import { isAlive, waitFor } from '../support/cli.js';
import { createCluster, type TestCluster } from '../support/cluster.js';
import { apiStatus } from './api.js';
import { replicaContainers } from './container-watch.js';

describe('status during faults', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await createCluster(
      'truth',
      `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - { id: local, host: localhost }
services:
  - name: three
    image: otto-test/busybox
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.2; done'
    replicas: 3
    stop_grace_period: 2s
`,
    );
    expect((await c.run('cluster', 'start', '--detach')).code).toBe(0);
    await waitFor('3 running', async () => (await apiStatus(c))?.services[0]?.running === 3, 60_000, 200);
  });

  afterAll(async () => {
    await c.destroy();
  });

  it('a node whose agent is frozen is unreachable; its replicas keep their assignment and show as running, stale', async () => {
    const before = await replicaContainers(c.name);
    const agentPid = (await apiStatus(c))!.nodes[0]!.agent_pid!;
    process.kill(agentPid, 'SIGSTOP');
    try {
      const s = await waitFor('the node unreachable', async () => {
        const status = await apiStatus(c);
        return status?.nodes[0]?.state === 'unreachable' && status;
      }, 20_000, 200);
      expect(s.nodes[0]!.online).toBe(false);
      expect(s.nodes[0]!.unreachable_since).not.toBeNull();
      const service = s.services[0]!;
      expect(service).toMatchObject({ desired: 3, running: 3, stale: 3, state: 'running' });
      expect(service.replicas.map((r) => [r.node_state, r.stale, r.state])).toEqual(Array(3).fill(['unreachable', true, 'running']));
      expect(service.errors.join('\n')).not.toContain('not placed');
      const text = await c.run('cluster', 'status');
      expect(text.stdout).toMatch(/local\s+unreachable \d+s/);
      expect(text.stdout).toMatch(/three\s+3\s+3 \(3 stale\)/);
      const ps = await c.run('service', 'ps', 'three');
      expect(ps.stdout).toMatch(/running \(stale \d+s\)/);
    } finally {
      process.kill(agentPid, 'SIGCONT');
    }
    await waitFor('back online, fresh', async () => {
      const status = await apiStatus(c);
      return status?.nodes[0]?.online && status.services[0]!.stale === 0 && status.services[0]!.running === 3;
    }, 20_000, 200);
    expect(await replicaContainers(c.name)).toEqual(before);
  });

  it('with the control plane killed, status says it is down (exit 2) and shows what the agent reports now', async () => {
    const s = (await apiStatus(c))!;
    // Let it save a status snapshot first (every 10 s).
    await new Promise((resolve) => setTimeout(resolve, 10_500));
    process.kill(s.cluster.pid, 'SIGKILL');
    await waitFor('the control plane gone', async () => !isAlive(s.cluster.pid), 10_000, 50);
    const text = await c.run('cluster', 'status');
    expect(text.code).toBe(2);
    expect(text.stdout).toContain(`control plane of cluster "${c.name}" is down: pid ${s.cluster.pid} is not running`);
    expect(text.stdout).toMatch(/local\s+running \(pid \d+\)/);
    expect(text.stdout.match(/three\s+\S+-three-\d\s+local\s+running\s/g)).toHaveLength(3);
    expect(text.stderr).toContain('control plane is down');
    const json = await c.run('cluster', 'status', '--json');
    const parsed = JSON.parse(json.stdout);
    expect(parsed).toMatchObject({ running: false, control_plane: 'down', control_plane_pid: s.cluster.pid });
    expect(clusterStatusSchema.parse(parsed.last_status.status).services[0]!.running).toBe(3);
    expect(parsed.agents[0].report.replicas.filter((r: { state: string }) => r.state === 'running')).toHaveLength(3);
    const restarted = await c.run('cluster', 'start', '--detach');
    expect(restarted.code, restarted.stderr).toBe(0);
  });
});
