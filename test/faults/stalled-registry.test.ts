/**
 * A registry that stalls: the image of one service never arrives (its manifest request hangs), and
 * nothing else of the node may wait for it. While the pull hangs: the node stays online, node metrics keep
 * flowing at their interval, a container of another service removed by hand comes back within seconds,
 * `otto service ps` shows the replica as pulling, and the agent does not spin while it waits.
 */
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeMetricsSchema } from '../../src/protocol/messages.js';
import { TEST_IMAGE, brokerLogin, containersOf, docker, waitFor } from '../support/cli.js';
import { createCluster, type TestCluster } from '../support/cluster.js';
import { startStallingRegistry, type StallingRegistry } from '../support/stalling-registry.js';
import { replicaContainers, watchContainers, type ContainerWatch } from './container-watch.js';
import { recordFault, seconds } from './fault-report.js';

const METRICS_INTERVAL_MS = 1_000;
const STALL_MS = 20_000;
const HEAL_WITHIN_MS = 5_000;
/** The agent waits for a pull; it must not busy-loop meanwhile (a Pi has little CPU to spare). */
const MAX_AGENT_CPU_PERCENT = 15;
/** Node states the agent publishes while nothing changes: one per pass (events, the periodic pass). */
const MAX_STATE_MESSAGES_PER_S = 5;

/** CPU seconds a process used so far (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat; fields[0] here is field 3 (state).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

describe('a registry that stalls', () => {
  let registry: StallingRegistry;
  let cluster: TestCluster;
  let subscriber: mqtt.MqttClient | undefined;
  let watch: ContainerWatch | undefined;
  let image: string;

  beforeAll(async () => {
    registry = await startStallingRegistry();
    image = `${registry.address}/otto/stall:1`;
    cluster = await createCluster(
      'stall',
      `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - id: local
    host: localhost
services:
  - name: stalled
    image: ${image}
    command: sleep 3600
  - name: other
    image: ${TEST_IMAGE}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 1; done'
`,
    );
  });

  afterAll(async () => {
    await watch?.stop();
    await subscriber?.endAsync();
    await cluster.destroy();
    await registry.close();
  });

  it('holds the pull without holding up the node', async () => {
    const start = await cluster.run('cluster', 'start', '--detach');
    expect(start.code, `${start.stdout}\n${start.stderr}`).toBe(0);
    const live = await waitFor('other running and stalled pulling', async () => {
      const s = await cluster.status();
      const other = s.services.find((x) => x.name === 'other');
      const stalled = s.services.find((x) => x.name === 'stalled');
      return other?.running === 1 && stalled?.replicas[0]?.state === 'pulling' && s;
    });
    expect(registry.manifestRequests).toBeGreaterThanOrEqual(1);
    const agentPid = live.nodes[0]!.agent_pid!;
    const before = await replicaContainers(cluster.name);
    expect([...before.keys()]).toEqual(['other#1']);

    subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${cluster.mqttPort}`, brokerLogin(cluster.dir));
    const metricsAt: number[] = [];
    let stateMessages = 0;
    let invalidMetrics = 0;
    subscriber.on('message', (topic, payload) => {
      if (!topic.endsWith('/metrics/node')) stateMessages++;
      else if (nodeMetricsSchema.safeParse(JSON.parse(payload.toString())).success) metricsAt.push(Date.now());
      else invalidMetrics++;
    });
    await subscriber.subscribeAsync(['otto/nodes/+/metrics/node', 'otto/nodes/+/state']);
    watch = watchContainers(cluster.name);

    const windowStart = Date.now();
    const cpuBefore = cpuSeconds(agentPid);
    const nodeStates: string[] = [];
    let healMs: number | undefined;
    let removedAt = 0;
    while (Date.now() - windowStart < STALL_MS) {
      const s = await cluster.status();
      nodeStates.push(s.nodes[0]!.state);
      expect(s.services.find((x) => x.name === 'stalled')!.replicas[0]!.state).toBe('pulling');
      if (!removedAt && Date.now() - windowStart > 4_000) {
        await docker.getContainer(before.get('other#1')!).remove({ force: true });
        removedAt = Date.now();
        const replaced = await waitFor(
          'other healed',
          async () => (await containersOf(cluster.name)).find((c) => c.Labels['otto.service'] === 'other' && c.State === 'running'),
          HEAL_WITHIN_MS + 5_000,
          100,
        );
        healMs = Date.now() - removedAt;
        expect(replaced.Id).not.toBe(before.get('other#1'));
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    const windowMs = Date.now() - windowStart;
    const agentCpuPercent = ((cpuSeconds(agentPid) - cpuBefore) / (windowMs / 1000)) * 100;

    // The pull still hangs: nothing answered the manifest request.
    const ps = await cluster.run('service', 'ps', 'stalled');
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).toMatch(/stalled-1\s+local\s+pulling/);
    const psJson = await cluster.run('service', 'ps', 'stalled', '--json');
    const replicas = JSON.parse(psJson.stdout) as { state: string; pull?: { image: string } }[];
    expect(replicas).toHaveLength(1);
    expect(replicas[0]).toMatchObject({ state: 'pulling', pull: { image } });

    await watch.stop();
    const gaps = metricsAt.slice(1).map((at, i) => at - metricsAt[i]!);
    const maxGapMs = Math.max(metricsAt[0]! - windowStart, ...gaps);
    const otherIds = watch.ids.get('other#1') ?? new Set();
    const notes = `max metrics gap ${seconds(maxGapMs)}s; agent CPU ${agentCpuPercent.toFixed(1)}%; ${stateMessages} state messages in ${seconds(windowMs)}s`;
    recordFault({
      scenario: 'registry stalls',
      runs: 1,
      // The healed container is the one the test removed; any other new container was not asked for.
      recreated: Math.max(0, otherIds.size - 2),
      duplicates: watch.duplicates,
      recoverMaxS: healMs === undefined ? undefined : seconds(healMs),
      notes,
    });

    expect(invalidMetrics).toBe(0);
    expect(nodeStates.length).toBeGreaterThanOrEqual(10);
    expect(new Set(nodeStates)).toEqual(new Set(['online']));
    expect(metricsAt.length, notes).toBeGreaterThanOrEqual(Math.floor(STALL_MS / METRICS_INTERVAL_MS / 2));
    expect(maxGapMs, notes).toBeLessThanOrEqual(2 * METRICS_INTERVAL_MS + 500);
    expect(healMs, notes).toBeLessThanOrEqual(HEAL_WITHIN_MS);
    expect(otherIds.size, notes).toBe(2);
    expect(watch.duplicates, watch.duplicateNotes.join('\n')).toBe(0);
    expect(agentCpuPercent, notes).toBeLessThan(MAX_AGENT_CPU_PERCENT);
    expect(stateMessages, notes).toBeLessThan((windowMs / 1000) * MAX_STATE_MESSAGES_PER_S);
  });
});
