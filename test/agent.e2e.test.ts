/**
 * The agent on its own against the real Docker engine: a replica that cannot start is retried with
 * exponential backoff and its reason shows in status; an agent with no usable desired state on disk and no
 * control plane touches nothing.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, docker, freePort, isAlive, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';
import { apiStatus, sleep } from './faults/api.js';
import { replicaContainers } from './faults/container-watch.js';

describe('the agent', () => {
  let c: TestCluster;
  let blockedPort: number;
  let blockerId: string | undefined;

  beforeAll(async () => {
    blockedPort = await freePort();
    // A container Otto does not manage holds the host port the `blocked` service wants.
    const blocker = await docker.createContainer({
      Image: 'otto-test/busybox',
      Cmd: ['sleep', '3600'],
      Labels: { 'otto-test': 'blocker' },
      HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(blockedPort) }] } },
      ExposedPorts: { '80/tcp': {} },
    });
    blockerId = blocker.id;
    await blocker.start();
    c = await createCluster(
      'agent',
      `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - { id: local, host: localhost }
services:
  - name: steady
    image: otto-test/busybox
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.2; done'
    replicas: 2
    stop_grace_period: 2s
  - name: blocked
    image: otto-test/busybox
    command: httpd -f -p 80 -h /www
    ports: ["127.0.0.1:${blockedPort}:80"]
    stop_grace_period: 1s
`,
    );
    expect((await c.run('cluster', 'start', '--detach')).code).toBe(0);
    await waitFor('steady running', async () => (await apiStatus(c))?.services[0]?.running === 2, 60_000, 200);
  });

  afterAll(async () => {
    if (blockerId) await docker.getContainer(blockerId).remove({ force: true }).catch(() => undefined);
    await c.destroy();
  });

  it('retries a replica that cannot start with exponential backoff, and says why and when in status', async () => {
    const s = await waitFor('the failure in status', async () => {
      const status = await apiStatus(c);
      const replica = status?.services[1]?.replicas[0];
      return replica?.error && replica.retry_at && status;
    }, 30_000, 200);
    const replica = s.services[1]!.replicas[0]!;
    expect(replica.error).toMatch(/port is already allocated|address already in use/);
    expect(Date.parse(replica.retry_at!)).toBeGreaterThan(Date.now() - 1_000);
    const ps = await c.run('service', 'ps', 'blocked');
    expect(ps.stdout).toMatch(/\(retry in \d+s\)/);

    // Over 15 s, a fixed 3 tries a second would be ~45; backoff (1, 2, 4, 8 s) allows at most 5.
    const log = join(c.dir, '.otto', 'logs', 'control-plane.log');
    const failures = () => readFileSync(log, 'utf8').split('\n').filter((line) => line.includes('reconcile action failed') && line.includes('blocked')).length;
    const startCount = failures();
    await sleep(15_000);
    const tries = failures() - startCount;
    expect(tries).toBeGreaterThanOrEqual(1);
    expect(tries).toBeLessThanOrEqual(5);

    // Freed, the next try succeeds and the error goes away.
    await docker.getContainer(blockerId!).remove({ force: true });
    blockerId = undefined;
    await waitFor('blocked running once the port is free', async () => {
      const replica = (await apiStatus(c))?.services[1]?.replicas[0];
      return replica?.state === 'running' && !replica.error;
    }, 60_000, 500);
  });

  it('with no usable desired state on disk and no control plane, touches nothing', async () => {
    const s = (await apiStatus(c))!;
    const before = await replicaContainers(c.name);
    process.kill(s.cluster.pid, 'SIGKILL');
    await waitFor('the control plane gone', async () => !isAlive(s.cluster.pid), 10_000, 50);
    const agentPid = s.nodes[0]!.agent_pid!;
    process.kill(agentPid, 'SIGKILL');
    await waitFor('the agent gone', async () => !isAlive(agentPid), 10_000, 50);
    const stateDir = join(c.dir, '.otto', 'agents', 'local');
    writeFileSync(join(stateDir, 'desired.json'), '{"cluster": "torn by a power cut');
    const agent = spawn(process.execPath, [cliPath, 'agent', '-c', 'otto.yaml', '--node', 'local'], { cwd: c.dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTTO_LOG_PRETTY: '0' } });
    let output = '';
    agent.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    agent.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await waitFor('the agent to notice the damaged file', async () => output.includes('no usable desired state on disk'), 15_000, 100);
      // It reconciles (Docker events, its timer) with nothing to go by: every container stays.
      await sleep(5_000);
      expect(await replicaContainers(c.name)).toEqual(before);
      const running = await docker.listContainers({ filters: { label: [`otto.cluster=${c.name}`] } });
      expect(running).toHaveLength(before.size);
    } finally {
      agent.kill('SIGTERM');
      await new Promise((resolve) => agent.once('exit', resolve));
    }
    expect((await c.run('cluster', 'start', '--detach')).code).toBe(0);
    await waitFor('all running again under a new control plane', async () => {
      const status = await apiStatus(c);
      return status?.nodes[0]?.online && status.services[0]!.running === 2 && status.services[1]!.running === 1;
    }, 60_000, 200);
    expect(await replicaContainers(c.name)).toEqual(before);
  });
});
