/**
 * Metrics-driven migration at fleet scale: a real control plane (embedded broker) and 1,000 simulated agents
 * (test/support/sim-fleet) that obey their desired states and report their load honestly (a node's CPU is
 * its own load plus its replicas'; a replica that moves takes its CPU along). Ten services of 100 replicas,
 * each on its own group of 100 nodes (a placement constraint the moves must keep), one replica a node, each with `node.cpu_percent < 85 for WINDOW` and `action: migrate`. Once every
 * replica runs, 5 % of the nodes become overloaded: every replica on them must move within two windows of
 * its violation, no node may be pushed over the threshold by the moves, and no replica may move twice
 * (the cooldown is longer than the test). Checked in the event log, the operations API and the status.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterStatusSchema, type ClusterEvent, type ClusterStatus, type Operation } from '../src/http/schemas.js';
import { waitFor } from './support/cli.js';
import { createCluster, startSimulated, type TestCluster } from './support/cluster.js';
import { SimFleet } from './support/sim-fleet/sim-fleet.js';

const NODES = 1_000;
const SERVICES = 10;
const WINDOW_S = 10;
const THRESHOLD = 85;
const RULE = `node.cpu_percent < ${THRESHOLD} for ${WINDOW_S}s`;
/** A replica's container uses 20 % of one core: 5 % of a 4-core node. */
const REPLICA_CPU = 20;
const CORES = 4;
const ids = Array.from({ length: NODES }, (_, i) => `n${String(i + 1).padStart(4, '0')}`);
/** Each service runs on its own group of 100 nodes (placement spreads a service, not the services together). */
const groupOf = (i: number) => Math.floor(i / (NODES / SERVICES));
/** Every 20th node is overloaded: 50 nodes, 5 %. */
const overloaded = ids.filter((_, i) => i % 20 === 3);
const OVERLOAD = 93;
/** The others' own load, 10 to 70 % (with their replica's 5 %, and 2 % of jitter, at most 77 %). */
const baseCpu = Object.fromEntries(ids.map((id, i) => [id, 10 + ((i * 37) % 61)]));

const config = `metrics:
  interval: 2s
control:
  interval: 1s
migration: { mode: auto, strategy: least-loaded, cooldown: 10m, max_in_flight: 25 }
nodes:
${ids.map((id, i) => `  - { id: ${id}, host: 127.0.0.1, labels: { group: g${groupOf(i)} } }`).join('\n')}
services:
${Array.from({ length: SERVICES }, (_, s) => `  - name: s${s}
    image: otto-test/busybox
    command: sleep 86400
    replicas: ${NODES / SERVICES}
    placement: { constraints: ["group == g${s}"] }
    healthcheck: { test: "true", interval: 1s }
    nfr: { rules: ["${RULE}"], action: migrate }`).join('\n')}
`;

describe(`metrics-driven migration in a simulated fleet of ${NODES.toLocaleString('en')} nodes, ${overloaded.length} overloaded`, () => {
  let c: TestCluster;
  let fleet: SimFleet;
  let token: string;
  /** Where each replica ran before the overload, and when the overload began. */
  let before: Map<string, string>;
  let overloadAt: number;

  const get = async <T>(path: string): Promise<T> => {
    const response = await fetch(`http://127.0.0.1:${c.httpPort}${path}`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status, path).toBe(200);
    return (await response.json()) as T;
  };
  const status = async () => clusterStatusSchema.parse(await get<ClusterStatus>('/api/v1/status'));
  const placement = (s: ClusterStatus) => new Map<string, string>(s.services.flatMap((v) => v.replicas.map((r) => [`${r.service}#${r.replica}`, r.node] as const)));
  /** The whole event log (the API keeps the last 1,000; a fleet says more than that). */
  const eventLog = (): ClusterEvent[] => {
    const file = join(c.dir, '.otto', 'events.jsonl');
    const text = [`${file}.1`, file].filter(existsSync).map((f) => readFileSync(f, 'utf8')).join('');
    return text
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as ClusterEvent);
  };
  const keyOf = (e: { service?: string; replica?: number }) => `${e.service}#${e.replica}`;

  beforeAll(async () => {
    c = await createCluster('simmigr', config);
    const started = await startSimulated(c);
    token = started.token;
    fleet = new SimFleet({
      host: '127.0.0.1',
      port: c.mqttPort,
      cluster: c.name,
      intervalMs: 2_000,
      nodes: ids.map((id) => ({ id, password: started.passwordOf(id) })),
      cpuCount: CORES,
      baseCpu,
      replicaCpu: REPLICA_CPU,
    });
    fleet.start();
  }, 120_000);

  afterAll(async () => {
    fleet?.stop();
    // Simulated agents create no container: stopping the control plane is all there is to clean.
    await c?.run('cluster', 'stop');
  }, 60_000);

  it('runs one replica on every node, healthy, with no violation', async () => {
    const s = await waitFor(
      'every replica running and healthy',
      async () => {
        const current = await status();
        return current.nodes.every((n) => n.state === 'online' && n.metrics) && current.services.every((v) => v.running === v.desired && v.health === 'healthy') && current;
      },
      90_000,
      1_000,
    );
    before = placement(s);
    expect(before.size).toBe(NODES);
    expect(new Set(before.values()).size).toBe(NODES);
    expect(s.services.flatMap((v) => v.violations)).toEqual([]);
    // Honest load: a node's CPU is its own plus its replica's share.
    for (const node of s.nodes) expect(node.metrics!.cpu_percent).toBeCloseTo(baseCpu[node.id]! + REPLICA_CPU / CORES, -0.7);
    overloadAt = Date.now();
    fleet.setBaseCpu(overloaded, OVERLOAD);
  }, 120_000);

  it('moves every replica of an overloaded node within two windows of its violation, once, and onto nodes that stay under the rule', async () => {
    const victims = new Set<string>([...before].filter(([, node]) => overloaded.includes(node)).map(([key]) => key));
    expect(victims.size).toBe(overloaded.length);
    const moved = await waitFor(
      'every replica off the overloaded nodes',
      async () => {
        const now = placement(await status());
        return [...victims].every((key) => now.get(key) !== before.get(key)) && now;
      },
      (1 + 3) * WINDOW_S * 1_000,
      500,
    );
    const movedAt = Date.now();
    // Only those moved; the targets are nodes of the service's group that were not overloaded.
    const changed = [...moved].filter(([key, node]) => before.get(key) !== node);
    expect(new Set(changed.map(([key]) => key))).toEqual(victims);
    for (const [key, node] of changed) {
      expect(overloaded).not.toContain(node);
      expect(`g${groupOf(ids.indexOf(node))}`).toBe(`g${key.split('#')[0]!.slice(1)}`);
    }

    // A while longer (a window): the moves are over and nothing else moves, nothing else is violated.
    await new Promise((resolve) => setTimeout(resolve, WINDOW_S * 1_000));
    const s = await status();
    expect(placement(s)).toEqual(moved);
    expect(s.operation).toBeNull();
    expect(s.queue).toEqual([]);
    for (const service of s.services) expect(service).toMatchObject({ running: service.desired, violations: [] });

    const events = eventLog().filter((e) => Date.parse(e.time) >= overloadAt);
    const violated = events.filter((e) => e.kind === 'nfr-violated');
    const migrated = events.filter((e) => e.kind === 'replica-migrated');
    // Every violation was on an overloaded node, of a replica that then moved, within two windows.
    expect(new Set(violated.map(keyOf))).toEqual(victims);
    for (const v of violated) expect(overloaded).toContain(v.node);
    for (const key of victims) {
      const violation = violated.find((e) => keyOf(e) === key)!;
      const move = migrated.find((e) => keyOf(e) === key);
      expect(move, `${key} moved`).toBeDefined();
      expect(Date.parse(move!.time) - Date.parse(violation.time), `${key}: from its violation to its move`).toBeLessThanOrEqual(2 * WINDOW_S * 1_000);
    }
    // Once each: in the events and in the operations (the cooldown, 10m, outlasts the test).
    expect(migrated.map(keyOf).sort()).toEqual([...victims].sort());
    const operations = (await get<Operation[]>('/api/v1/operations')).filter((op) => op.kind === 'migrate' && Date.parse(op.requested_at) >= overloadAt);
    const moves = operations.flatMap((op) => op.moves ?? []);
    expect(operations.every((op) => op.state === 'succeeded')).toBe(true);
    expect(moves.map(keyOf).sort()).toEqual([...victims].sort());
    expect(moves.every((m) => m.state === 'done')).toBe(true);
    expect(operations.every((op) => (op.moves ?? []).length <= 25)).toBe(true);
    expect(events.filter((e) => e.kind === 'migration-failed' || e.kind === 'migration-blocked')).toEqual([]);

    // No node pushed over: every node that took a replica reports under the threshold, with the replica's CPU on it.
    const targets = new Set(changed.map(([, node]) => node));
    for (const node of s.nodes.filter((n) => targets.has(n.id))) {
      const replicas = [...moved.values()].filter((n) => n === node.id).length;
      expect(node.metrics!.cpu_percent).toBeLessThan(THRESHOLD);
      expect(node.metrics!.cpu_percent).toBeCloseTo(baseCpu[node.id]! + (replicas * REPLICA_CPU) / CORES, -0.7);
    }
    console.log(
      `${victims.size} replicas moved off ${overloaded.length} overloaded nodes of ${NODES}: all off ${Math.round((movedAt - overloadAt) / 100) / 10}s after the overload began ` +
        `(window ${WINDOW_S}s), in ${operations.length} migrate operation(s), onto ${targets.size} nodes`,
    );
  }, 120_000);
});
