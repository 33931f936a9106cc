/**
 * Every stop Otto makes is graceful: the service's stop signal, time to finish (stop_grace_period), and
 * SIGKILL only after that. The replicas trap their stop signal, keep working for a second, then write a
 * marker named after their container into a host folder and exit 0. For a scale-down, a restart, a spec
 * change rolled by hot reload, a service with `stop_signal: SIGINT` and `otto cluster stop --down`, every
 * container Otto stopped left its marker, and Docker's events show only its stop signal, never signal 9.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operationListSchema } from '../../src/http/schemas.js';
import { ApiClient } from '../../src/http/client.js';
import { Workspace } from '../../src/workspace.js';
import { TEST_IMAGE, containersOf, docker, waitFor } from '../support/cli.js';
import { createCluster, type TestCluster } from '../support/cluster.js';
import { replicaContainers, recreatedReplicas, watchContainers } from './container-watch.js';
import { recordFault } from './fault-report.js';

/** Works on for a second after its stop signal, then leaves `/markers/<its hostname = short container id>`. */
const trapping = (signal: string) =>
  `["sh", "-c", "trap 'sleep 1; echo finished > /markers/$HOSTNAME; exit 0' ${signal}; while true; do sleep 1; done"]`;

function config(markers: string, version: string): string {
  return `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - id: local
    host: localhost
services:
  - name: graceful
    image: ${TEST_IMAGE}
    command: ${trapping('TERM')}
    replicas: 3
    volumes: ["${markers}:/markers"]
    environment: { VERSION: "${version}" }
    stop_grace_period: 5s
    update: { monitor: 1s }
  - name: interrupted
    image: ${TEST_IMAGE}
    command: ${trapping('INT')}
    volumes: ["${markers}:/markers"]
    stop_signal: SIGINT
    stop_grace_period: 5s
    update: { monitor: 1s }
`;
}

interface StopEvent {
  id: string;
  action: 'kill' | 'die';
  signal?: string;
  exitCode?: string;
}

/** Docker's kill and die events of one cluster's containers, as they happen (the engine keeps only a few hundred). */
async function collectStopEvents(cluster: string): Promise<{ events: StopEvent[]; close: () => void }> {
  const stream = (await docker.getEvents({ filters: { type: ['container'], label: [`otto.cluster=${cluster}`], event: ['kill', 'die'] } })) as NodeJS.ReadableStream & {
    destroy: () => void;
  };
  const events: StopEvent[] = [];
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines.filter(Boolean)) {
      const event = JSON.parse(line) as { Action: 'kill' | 'die'; Actor: { ID: string; Attributes: Record<string, string> } };
      events.push({ id: event.Actor.ID, action: event.Action, signal: event.Actor.Attributes.signal, exitCode: event.Actor.Attributes.exitCode });
    }
  });
  stream.on('error', () => undefined);
  return { events, close: () => stream.destroy() };
}

describe('graceful stops', () => {
  let cluster: TestCluster;
  let markers: string;
  let stopEvents: Awaited<ReturnType<typeof collectStopEvents>>;
  let api: ApiClient;
  const checked: string[] = [];

  /** Each container stopped: its marker is there, its kill events carry `signal` only, it exited 0. */
  const expectGraceful = async (ids: string[], signal: string, what: string) => {
    expect(ids.length, what).toBeGreaterThan(0);
    for (const id of ids) {
      await waitFor(`${what}: the die event of ${id.slice(0, 12)}`, async () => stopEvents.events.some((e) => e.id === id && e.action === 'die'), 10_000, 100);
      const events = stopEvents.events.filter((e) => e.id === id);
      const kills = events.filter((e) => e.action === 'kill').map((e) => e.signal);
      expect(kills.length, `${what}: ${id.slice(0, 12)} was never sent a signal`).toBeGreaterThan(0);
      expect(new Set(kills), `${what}: signals sent to ${id.slice(0, 12)}`).toEqual(new Set([signal]));
      expect(events.find((e) => e.action === 'die')?.exitCode, `${what}: exit code of ${id.slice(0, 12)}`).toBe('0');
      const marker = join(markers, id.slice(0, 12));
      expect(existsSync(marker), `${what}: ${id.slice(0, 12)} did not finish its work (no marker)`).toBe(true);
      expect(readFileSync(marker, 'utf8')).toBe('finished\n');
      checked.push(id);
    }
  };
  const idsOf = async (service: string) => (await containersOf(cluster.name, true)).filter((c) => c.Labels['otto.service'] === service).map((c) => c.Id);
  const waitRunning = (service: string, count: number, notIn: string[] = []) =>
    waitFor(`${count} new ${service} running`, async () => {
      const list = (await containersOf(cluster.name, true)).filter((c) => c.Labels['otto.service'] === service);
      return list.length === count && list.every((c) => c.State === 'running' && !notIn.includes(c.Id)) && list;
    });

  beforeAll(async () => {
    markers = mkdtempSync(join(tmpdir(), 'otto-markers-'));
    cluster = await createCluster('grace', config(markers, '1'));
    stopEvents = await collectStopEvents(cluster.name);
    const start = await cluster.run('cluster', 'start', '--detach');
    expect(start.code, `${start.stdout}\n${start.stderr}`).toBe(0);
    await waitRunning('graceful', 3);
    await waitRunning('interrupted', 1);
    api = (await ApiClient.connect(new Workspace(cluster.configPath)))!;
  });

  afterAll(async () => {
    stopEvents?.close();
    await cluster.destroy();
    rmSync(markers, { recursive: true, force: true });
  });

  it('stops gracefully on scale-down, restart, a rolled spec change, SIGINT, and cluster stop --down', async () => {
    const watch = watchContainers(cluster.name);
    const before = await replicaContainers(cluster.name);
    let recreated: string[] = [];

    // Scale 3 -> 2: replica 3 goes, the others stay.
    const scale = await cluster.run('service', 'scale', 'graceful=2');
    expect(scale.code, `${scale.stdout}\n${scale.stderr}`).toBe(0);
    await expectGraceful([before.get('graceful#3')!], '15', 'scale-down');
    recreated.push(...recreatedReplicas(before, watch, (key) => key !== 'graceful#3'));

    // Restart, all at once: both replicas are replaced.
    const restarted = [before.get('graceful#1')!, before.get('graceful#2')!];
    const restart = await cluster.run('service', 'restart', 'graceful');
    expect(restart.code, `${restart.stdout}\n${restart.stderr}`).toBe(0);
    await expectGraceful(restarted, '15', 'restart');
    const afterRestart = (await waitRunning('graceful', 2, restarted)).map((c) => c.Id);

    // A spec change (an environment value) in otto.yaml: hot reload rolls it out.
    cluster.writeConfig(config(markers, '2'));
    const update = await waitFor(
      'the update of graceful to end',
      async () => (await api.get('/api/v1/operations', operationListSchema)).find((op) => op.kind === 'update' && op.service === 'graceful' && !['queued', 'running'].includes(op.state)),
      60_000,
    );
    expect(update.state, update.message).toBe('succeeded');
    await expectGraceful(afterRestart, '15', 'spec change');
    const updated = await waitRunning('graceful', 2, afterRestart);
    for (const c of updated) expect((await docker.getContainer(c.Id).inspect()).Config.Env).toContain('VERSION=2');

    // stop_signal: SIGINT.
    const interruptedBefore = await idsOf('interrupted');
    recreated.push(...recreatedReplicas(before, watch, (key) => key.startsWith('interrupted#')));
    const restartInterrupted = await cluster.run('service', 'restart', 'interrupted');
    expect(restartInterrupted.code, `${restartInterrupted.stdout}\n${restartInterrupted.stderr}`).toBe(0);
    await expectGraceful(interruptedBefore, '2', 'stop_signal SIGINT');

    // otto cluster stop --down: every container still there stops the same way.
    const lastGraceful = await idsOf('graceful');
    const lastInterrupted = await idsOf('interrupted');
    await watch.stop();
    const down = await cluster.run('cluster', 'stop', '--down');
    expect(down.code, `${down.stdout}\n${down.stderr}`).toBe(0);
    expect(await containersOf(cluster.name, true)).toEqual([]);
    await expectGraceful(lastGraceful, '15', 'cluster stop --down');
    await expectGraceful(lastInterrupted, '2', 'cluster stop --down (SIGINT)');

    recreated = [...new Set(recreated)];
    recordFault({ scenario: 'stop grace', runs: checked.length, recreated: recreated.length, duplicates: watch.duplicates, notes: 'scale-down, restart, spec change, SIGINT, stop --down' });
    expect(recreated, 'replicas replaced that no operation asked for').toEqual([]);
    expect(watch.duplicates, watch.duplicateNotes.join('\n')).toBe(0);
    expect(checked).toHaveLength(1 + 2 + 2 + 1 + 3);
  });
});
