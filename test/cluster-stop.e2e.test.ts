/**
 * `otto cluster stop` on one machine, through the built CLI against the real Docker engine:
 * - after the control plane was killed (SIGKILL), it stops the local agent left running, so that
 *   `--down` removes the containers for good (the orphan agent would create them again);
 * - commands for a running cluster need only what `.otto/` holds: a `${VAR}` set in the shell that
 *   started the cluster, missing in the shell that runs them, comes from `.otto/env.json` (0600).
 */
import { readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TEST_IMAGE, containersOf, otto, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

const worker = `  - name: worker
    image: ${TEST_IMAGE}
    command: sh -c 'while true; do sleep 1; done'
    init: true
`;

/** Runs, and is not an exited process its parent has yet to reap. */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.charAt(0) !== 'Z';
  } catch {
    return false;
  }
}

/** Pids of the agent processes of this cluster: `agent` processes started in its folder. */
function agentProcesses(cluster: TestCluster): number[] {
  const dir = realpathSync(cluster.dir);
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        return readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes('agent') && readlinkSync(`/proc/${entry}/cwd`) === dir;
      } catch {
        return false;
      }
    })
    .map(Number)
    .filter(running);
}

function controlPlanePid(cluster: TestCluster): number | undefined {
  try {
    return (JSON.parse(readFileSync(join(cluster.dir, '.otto', 'control-plane.json'), 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

async function startAndWait(cluster: TestCluster, env: NodeJS.ProcessEnv = {}) {
  const start = await otto(['cluster', 'start', '--detach'], { cwd: cluster.dir, env });
  expect(start.code, `${start.stdout}\n${start.stderr}`).toBe(0);
  return waitFor('the node online and the service running', async () => {
    const s = await cluster.status();
    return s.nodes.every((n) => n.online && n.agent_pid) && s.services.every((svc) => svc.running === svc.desired) && s;
  });
}

describe('otto cluster stop', () => {
  let cluster: TestCluster | undefined;

  afterEach(async () => {
    if (!cluster) return;
    // Whatever a failed test left: its control plane and agents (by pid), then its containers.
    const controlPlane = controlPlanePid(cluster);
    for (const pid of [...(controlPlane && running(controlPlane) ? [controlPlane] : []), ...agentProcesses(cluster)]) process.kill(pid, 'SIGKILL');
    await cluster.destroy();
    cluster = undefined;
  });

  it('after the control plane was killed, stops the local agent it left, so --down removes the containers for good', async () => {
    cluster = await createCluster('stopkill', `metrics:\n  interval: 1s\nnodes:\n  - id: local\n    host: localhost\nservices:\n${worker}`);
    const live = await startAndWait(cluster);
    const agentPid = live.nodes[0]!.agent_pid!;
    const controlPlane = controlPlanePid(cluster)!;
    process.kill(controlPlane, 'SIGKILL');
    await waitFor('the control plane gone', async () => !running(controlPlane), 10_000, 100);
    expect(agentProcesses(cluster)).toEqual([agentPid]);

    const result = await cluster.run('cluster', 'stop', '--down');
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain('control plane is not running');
    expect(result.stdout).toContain(`stopped the agent left running on node local (pid ${agentPid})`);
    expect(result.stdout).toContain('removed 1 container(s)');
    expect(result.stdout.indexOf('stopped the agent left running')).toBeLessThan(result.stdout.indexOf('removed 1 container(s)'));

    // Long enough for an agent still running to notice its container is gone and create it again.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(await containersOf(cluster.name, true)).toEqual([]);
    expect(running(agentPid)).toBe(false);
    expect(agentProcesses(cluster)).toEqual([]);
  });

  it('commands for a running cluster take a ${VAR} missing in this shell from .otto/env.json', async () => {
    const variable = `OTTO_STOP_TEST_${Math.random().toString(36).slice(2, 8).toUpperCase()}`;
    cluster = await createCluster(
      'stopenv',
      `metrics:\n  interval: 1s\nnodes:\n  - id: local\n    host: localhost\n    labels: { zone: "\${${variable}}" }\nservices:\n${worker}    environment: { SECRET: "\${${variable}}" }\n`,
    );
    expect(process.env[variable]).toBeUndefined();
    await startAndWait(cluster, { [variable]: 's3cr3t' });

    const envFile = join(cluster.dir, '.otto', 'env.json');
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(envFile, 'utf8'))).toEqual({ [variable]: 's3cr3t' });

    for (const args of [['service', 'ls'], ['node', 'list', '--json'], ['cluster', 'status']]) {
      const result = await cluster.run(...args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      expect(result.stderr, args.join(' ')).toBe('');
    }
    // The value the control plane runs with, not an empty or unresolved one.
    const nodes = JSON.parse((await cluster.run('node', 'list', '--json')).stdout) as { labels: Record<string, string> }[];
    expect(nodes[0]!.labels).toEqual({ zone: 's3cr3t' });

    const stop = await cluster.run('cluster', 'stop');
    expect(stop.code, `${stop.stdout}\n${stop.stderr}`).toBe(0);
    expect(stop.stdout).toContain('stopped the control plane');

    // Neither the shell nor .otto has it: the clear message of today, exit 1.
    rmSync(envFile);
    const missing = await cluster.run('node', 'list');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`variable "${variable}" is not set`);
  });
});
