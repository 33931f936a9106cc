/** The ledger under .otto/ survives a kill -9 of the control plane in the middle of an operation. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operationSchema } from '../src/http/schemas.js';
import { containersOf, docker, isAlive, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

describe('the ledger and a kill -9 of the control plane', () => {
  let c: TestCluster;
  let oldAgentPid = 0;

  beforeAll(async () => {
    c = await createCluster(
      'ledger',
      `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - { id: local, host: localhost }
services:
  - name: slow
    image: otto-test/busybox
    command: sleep 3600
    init: true
    replicas: 3
    update: { monitor: 3s }
`,
    );
    expect((await c.run('cluster', 'start', '--detach')).code).toBe(0);
    await waitFor('slow running', async () => (await c.status()).services[0]!.running === 3);
  });

  afterAll(async () => {
    await c.destroy();
  });

  it('keeps the last good state and reports the interrupted operation after a restart', async () => {
    expect((await c.run('service', 'scale', 'slow=4')).code).toBe(0);
    const queued = await c.run('service', 'restart', 'slow', '--rolling', '--detach');
    expect(queued.code, queued.stderr).toBe(0);
    const running = await waitFor('the rolling restart under way', async () => {
      const s = await c.status();
      return s.operation?.kind === 'rolling-restart' && (s.operation.progress?.done ?? 0) >= 1 && s;
    });
    // `cluster status` shows the operation under way with its progress.
    expect((await c.run('cluster', 'status')).stdout).toMatch(/operation: rolling-restart slow [1-3]\/4 \(running\)/);
    oldAgentPid = running.nodes[0]!.agent_pid!;
    process.kill(running.cluster.pid, 'SIGKILL');
    await waitFor('the control plane gone', async () => !isAlive(running.cluster.pid));

    // Whatever the moment of the kill, the ledger on disk is a whole snapshot.
    const ledger = JSON.parse(readFileSync(join(c.dir, '.otto', 'ledger.json'), 'utf8'));
    expect(ledger.scales.slow).toEqual({ replicas: 4, config_replicas: 3 });
    const interrupted = ledger.operations.find((op: { id: string }) => op.id === running.operation!.id);
    expect(interrupted.state).toBe('running');
    expect(ledger.replicas.filter((r: { removed?: string }) => !r.removed).length).toBeGreaterThanOrEqual(4);

    // Edge autonomy: with no control plane and no broker, the agent keeps reconciling its last desired
    // state. A container removed by hand comes back.
    expect(isAlive(oldAgentPid)).toBe(true);
    const victim = (await containersOf(c.name)).find((x) => x.Labels['otto.service'] === 'slow')!;
    await docker.getContainer(victim.Id).remove({ force: true });
    await waitFor('the agent alone to recreate the removed replica', async () =>
      (await containersOf(c.name)).some((x) => x.Names[0] === victim.Names[0] && x.Id !== victim.Id && x.State === 'running'),
    );

    const restarted = await c.run('cluster', 'start', '--detach');
    expect(restarted.code, restarted.stderr).toBe(0);
    const after = await waitFor('slow back at 4 replicas', async () => {
      const s = await c.status();
      return s.services[0]!.running === 4 && s;
    });
    expect(after.services[0]!.desired).toBe(4);
    const ops = JSON.parse(readFileSync(join(c.dir, '.otto', 'ledger.json'), 'utf8')).operations.map((op: unknown) => operationSchema.parse(op));
    expect(ops.find((op: { id: string }) => op.id === running.operation!.id)).toMatchObject({
      state: 'failed',
      message: 'interrupted: the control plane stopped during the operation',
    });
    const events = await c.run('cluster', 'events');
    expect(events.code).toBe(0);
    expect(events.stdout.match(/control-plane-started/g)).toHaveLength(2);
  });

  it('a restarted control plane stopped the agent its killed predecessor left behind', async () => {
    const s = await waitFor('the new agent online', async () => {
      const status = await c.status();
      return status.nodes[0]!.online && status.nodes[0]!.agent_pid !== oldAgentPid && status;
    });
    expect(isAlive(oldAgentPid)).toBe(false);
    // One agent per node: the state folder's pid file names the live one.
    const pidFile = readFileSync(join(c.dir, '.otto', 'agents', 'local', 'agent.pid'), 'utf8').trim();
    expect(Number(pidFile)).toBe(s.nodes[0]!.agent_pid);
  });
});
