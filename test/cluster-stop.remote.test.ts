/**
 * `otto cluster stop` tells the truth about remote agents: when the control plane cannot stop the agent of
 * a node it cannot reach over SSH, the command names the node and exits 2 (its agent and containers go on);
 * once the node is back, `otto cluster stop` stops that agent and exits 0. Uses the SSH test bed
 * (test/support/sshd.ts); the node shares this machine's Docker engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_IMAGE, containersOf, freePort, isAlive, removeClusterContainers, waitFor } from './support/cli.js';
import { agentPids, clusterYaml, killAgents, makeWorkdir, startTestBed, type SshdNode, type TestBed, type Workdir } from './support/sshd.js';

describe('otto cluster stop with a remote node out of reach', () => {
  let bed: TestBed;
  let rpi: SshdNode;
  let work: Workdir;

  beforeAll(async () => {
    bed = await startTestBed(1, { firstAddress: 8 });
    [rpi] = bed.nodes as [SshdNode];
    work = makeWorkdir('otto-stop-remote-');
    work.write(
      'otto.yaml',
      clusterYaml({
        cluster: work.cluster,
        mqttPort: await freePort(),
        httpPort: await freePort(),
        local: false,
        nodes: [{ id: 'rpi-01', sshd: rpi }],
        services: `  - name: there\n    image: ${TEST_IMAGE}\n    node: rpi-01\n    command: sh -c 'while true; do sleep 1; done'\n    init: true\n`,
      }),
    );
    const trust = await work.run(['node', 'trust', 'rpi-01', '--yes']);
    expect(trust.code, trust.stderr).toBe(0);
  });

  afterAll(async () => {
    await rpi?.restart().catch(() => undefined);
    if (work) {
      await work.run(['cluster', 'stop', '--down']);
      killAgents(work.cluster, ['rpi-01']);
      await removeClusterContainers(work.cluster);
    }
    await bed?.stop();
  });

  it('names the node whose agent it could not stop and exits 2; stops it once the node is back', async () => {
    const start = await work.run(['cluster', 'start', '--detach']);
    expect(start.code, `${start.stdout}\n${start.stderr}`).toBe(0);
    await waitFor('the remote agent connected and the service running', async () => {
      const s = await work.status();
      return s.nodes.every((n) => n.ssh_state === 'connected' && n.online) && s.services.every((svc) => svc.running === svc.desired);
    });
    const agent = agentPids(work.cluster, 'rpi-01');
    expect(agent).toHaveLength(1);

    await rpi.stop();
    const result = await work.run(['cluster', 'stop']);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(2);
    expect(result.stdout).toMatch(/^stopped the control plane \(pid \d+\)\n/);
    expect(result.stdout).not.toContain('and the agents');
    expect(result.stderr).toContain(`otto: could not stop the agent of node rpi-01: cannot reach SSH at ${rpi.host}:${rpi.port}: connection refused`);
    expect(result.stderr).toContain('hint: make those nodes reachable (SSH) and run `otto cluster stop` again');
    // What the command said: the agent and its container went on.
    expect(agentPids(work.cluster, 'rpi-01')).toEqual(agent);
    expect(isAlive(agent[0]!)).toBe(true);
    expect((await containersOf(work.cluster)).map((c) => c.State)).toEqual(['running']);

    await rpi.restart();
    const again = await work.run(['cluster', 'stop']);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect(again.stdout).toContain('control plane is not running');
    expect(again.stdout).toContain('stopped the agents left running on rpi-01');
    expect(agentPids(work.cluster, 'rpi-01')).toEqual([]);
  });
});
