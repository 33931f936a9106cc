/**
 * Metrics-driven migration end to end: two real agents (two nodes on this machine's Docker) and a real
 * control plane. The nodes share this machine's CPU, so each agent's node.cpu_percent comes from the test
 * seam OTTO_TEST_METRICS_DIR (src/agent/metrics/node-metrics.ts): `<dir>/<node>.json` replaces the measured
 * value, which lets the test overload exactly one node while the machine's real load does not matter.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterEvent, ClusterStatus } from '../src/http/schemas.js';
import { containersOf, isAlive, otto, waitFor, TEST_IMAGE } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

const RULE = 'node.cpu_percent < 85 for 3s';

const config = (flags: string, mode = 'auto', extra = '') => `metrics: { interval: 1s }
migration: { mode: ${mode}, cooldown: 5m }
nodes:
  - { id: a, host: localhost }
  - { id: b, host: localhost }
services:
  - name: web
    image: ${TEST_IMAGE}
    command: ["httpd", "-f", "-p", "8080"]
    init: true
    nfr: { rules: ["${RULE}"], action: migrate }
    update: { monitor: 2s }
    stop_grace_period: 2s
  # Starts once: a second copy finds the marker its first copy left in the shared folder and exits, so a move fails.
  - name: fragile
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "[ -e /flags/started ] && exit 1; touch /flags/started; exec httpd -f -p 8080"]
    init: true
    volumes: ["${flags}:/flags"]
    nfr: { rules: ["${RULE}"], action: migrate }
    update: { monitor: 2s }
    stop_grace_period: 2s
${extra}`;

// Added later: a move that takes long enough (monitor 6s) to kill the control plane in the middle of it.
const CALM = `  - name: calm
    image: ${TEST_IMAGE}
    command: ["httpd", "-f", "-p", "8080"]
    init: true
    nfr: { rules: ["${RULE}"], action: migrate }
    update: { monitor: 6s }
    stop_grace_period: 2s
`;

interface Sample {
  at: number;
  running: number;
  answering: number;
}

/** Every ~150 ms: how many copies of `service` Docker runs and how many answer HTTP on port 8080. */
function watchService(cluster: string, service: string) {
  const samples: Sample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const running = (await containersOf(cluster)).filter((c) => c.Labels['otto.service'] === service);
      const answers = await Promise.all(
        running.map(async (c) => {
          const ip = Object.values(c.NetworkSettings.Networks)[0]?.IPAddress;
          if (!ip) return false;
          return fetch(`http://${ip}:8080/`, { signal: AbortSignal.timeout(1_000) }).then(
            () => true,
            () => false,
          );
        }),
      );
      samples.push({ at: Date.now(), running: running.length, answering: answers.filter(Boolean).length });
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

describe('metrics-driven migration with two real agents', () => {
  let c: TestCluster;
  let metricsDir: string;
  let flags: string;
  const feed = (node: string, cpu: number) => writeFileSync(join(metricsDir, `${node}.json`), JSON.stringify({ cpu_percent: cpu }));
  const token = () => readFileSync(join(c.dir, '.otto', 'token'), 'utf8').trim();
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${c.httpPort}${path}`, { headers: { authorization: `Bearer ${token()}` } });
    expect(response.status, path).toBe(200);
    return response;
  };
  const events = async () => (await (await get('/api/v1/events')).json()) as ClusterEvent[];
  const replicaOf = (status: ClusterStatus, service: string) => status.services.find((s) => s.name === service)!.replicas.find((r) => r.replica === 1);
  const runningOn = async (service: string) =>
    (await containersOf(c.name)).filter((x) => x.Labels['otto.service'] === service).map((x) => ({ id: x.Id, node: x.Labels['otto.node'] }));

  const start = async () => {
    const started = await otto(['cluster', 'start', '--detach'], { cwd: c.dir, env: { OTTO_TEST_METRICS_DIR: metricsDir } });
    expect(started.code, started.stderr).toBe(0);
  };

  beforeAll(async () => {
    c = await createCluster('migr', '');
    metricsDir = join(c.dir, 'metrics');
    flags = join(c.dir, 'flags');
    mkdirSync(metricsDir);
    mkdirSync(flags);
    c.writeConfig(config(flags));
    feed('a', 10);
    feed('b', 10);
    await start();
    await waitFor('web and fragile running', async () => {
      const s = await c.status();
      return s.services.every((v) => v.running === 1 && v.desired === 1) && s.nodes.every((n) => n.state === 'online') && s;
    }, 90_000);
  }, 120_000);

  afterAll(async () => {
    await c?.destroy();
  }, 60_000);

  it('moves the replica off a node that stays over the rule, starting the new copy first: it never stops answering', async () => {
    const [before] = await runningOn('web');
    const from = before!.node;
    const to = from === 'a' ? 'b' : 'a';
    const watch = watchService(c.name, 'web');
    await waitFor('web answering', async () => watch.samples.some((s) => s.answering === 1));

    feed(from, 97);
    // The violation shows in the API and in Prometheus while it lasts (before the move clears it).
    const violation = await waitFor('the violation', async () => {
      const s = await c.status();
      return s.services.find((v) => v.name === 'web')!.violations.find((v) => v.rule === RULE);
    }, 30_000, 200);
    expect(violation).toMatchObject({ replica: 1, node: from, metric: 'node.cpu_percent', threshold: 85, action: 'migrate' });
    const prometheus = await (await get('/metrics')).text();
    expect(prometheus).toContain(`otto_nfr_violation{service="web",replica="1",node="${from}",rule="${RULE}"} 1`);

    const moved = await waitFor('web moved', async () => (await events()).find((e) => e.kind === 'replica-migrated' && e.service === 'web'), 60_000);
    expect(moved.message).toContain(`from ${from} to ${to}`);
    await waitFor('one copy of web, on the target', async () => {
      const copies = await runningOn('web');
      return copies.length === 1 && copies[0]!.node === to;
    }, 30_000);
    const samples = await watch.stop();
    feed(from, 10);

    // Start-first: at every sample at least one copy answered; two ran at once while the new one proved itself.
    const afterFirstAnswer = samples.slice(samples.findIndex((s) => s.answering === 1));
    expect(afterFirstAnswer.length).toBeGreaterThan(20);
    expect(Math.min(...afterFirstAnswer.map((s) => s.answering))).toBeGreaterThanOrEqual(1);
    expect(Math.max(...afterFirstAnswer.map((s) => s.running))).toBe(2);
    expect(replicaOf(await c.status(), 'web')?.node).toBe(to);
    const kinds = (await events()).filter((e) => e.service === 'web').map((e) => e.kind);
    expect(kinds).toContain('nfr-violated');
  }, 150_000);

  it('leaves the original running when the copy on the target fails, and records why', async () => {
    const [original] = await runningOn('fragile');
    const from = original!.node;
    const to = from === 'a' ? 'b' : 'a';
    const webBefore = (await runningOn('web'))[0]!;
    feed(to, 10);
    feed(from, 97);

    const failed = await waitFor('the failed move', async () => (await events()).find((e) => e.kind === 'migration-failed' && e.service === 'fragile'), 90_000);
    expect(failed.message).toContain(`keeps running on ${from}`);
    // The original container never stopped (same container, still running) and the target's broken copy is gone.
    await waitFor('only the original copy of fragile', async () => {
      const copies = await runningOn('fragile');
      return copies.length === 1 && copies[0]!.id === original!.id;
    }, 30_000);
    expect(replicaOf(await c.status(), 'fragile')?.node).toBe(from);
    feed(from, 10);
    // web moved minutes ago at most: within its cooldown it is not moved again, even if it shared the hot node.
    expect((await runningOn('web'))[0]!.id).toBe(webBefore.id);
  }, 150_000);

  it('in advise mode records the move and shows it in the plan, but moves nothing', async () => {
    c.writeConfig(config(flags, 'advise', CALM));
    await waitFor('calm running', async () => (await c.status()).services.find((v) => v.name === 'calm' && v.running === 1), 60_000);
    const [original] = await runningOn('calm');
    const from = original!.node;
    const to = from === 'a' ? 'b' : 'a';
    feed(to, 10);
    feed(from, 97);
    const advised = await waitFor('the advice', async () => (await events()).find((e) => e.kind === 'migration-advised' && e.service === 'calm'), 60_000);
    expect(advised.message).toContain(to);
    const plan = (await (await get('/api/v1/plan')).json()) as { mode: string; nfr: { action: string; service: string; replica: number; to?: string }[] };
    expect(plan.mode).toBe('advise');
    expect(plan.nfr).toContainEqual(expect.objectContaining({ action: 'move', service: 'calm', replica: 1, to }));
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect((await runningOn('calm')).map((x) => x.id)).toEqual([original!.id]);
    expect((await events()).some((e) => e.kind === 'replica-migrated' && e.service === 'calm')).toBe(false);
  }, 150_000);

  it('finishes a move after the control plane is killed in the middle of it, the original serving throughout', async () => {
    const [original] = await runningOn('calm');
    const from = original!.node;
    const to = from === 'a' ? 'b' : 'a';
    const watch = watchService(c.name, 'calm');
    c.writeConfig(config(flags, 'auto', CALM));
    // The new copy runs on the target but has not proved itself yet (monitor 6s): kill the control plane now.
    await waitFor('the copy on the target', async () => (await runningOn('calm')).some((x) => x.node === to), 60_000, 200);
    const pid = (await c.status()).cluster.pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor('the control plane gone', async () => !isAlive(pid), 10_000, 50);
    expect((await runningOn('calm')).map((x) => x.id)).toContain(original!.id);
    await start();
    await waitFor('the move finished', async () => (await events()).find((e) => e.kind === 'replica-migrated' && e.service === 'calm'), 90_000);
    await waitFor('one copy of calm, on the target', async () => {
      const copies = await runningOn('calm');
      return copies.length === 1 && copies[0]!.node === to;
    }, 30_000);
    const samples = await watch.stop();
    feed(from, 10);
    const afterFirstAnswer = samples.slice(samples.findIndex((x) => x.answering >= 1));
    expect(Math.min(...afterFirstAnswer.map((x) => x.answering))).toBeGreaterThanOrEqual(1);
    expect(replicaOf(await c.status(), 'calm')?.node).toBe(to);
  }, 180_000);

  it('with rebalance: auto, spreads replicas onto a node that joins, start-first, never fewer running', async () => {
    const WIDE = `  - name: wide
    image: ${TEST_IMAGE}
    command: ["httpd", "-f", "-p", "8080"]
    init: true
    replicas: 4
    update: { monitor: 1s }
    stop_grace_period: 2s
`;
    const withRebalance = (text: string) => text.replace('cooldown: 5m }', 'cooldown: 5m, rebalance: auto }');
    feed('a', 10);
    feed('b', 10);
    feed('c', 10);
    c.writeConfig(withRebalance(config(flags, 'auto', CALM + WIDE)));
    await waitFor('wide running on a and b', async () => {
      const copies = await runningOn('wide');
      return copies.length === 4 && copies.every((x) => x.node === 'a' || x.node === 'b') && copies;
    }, 60_000);
    const watch = watchService(c.name, 'wide');
    c.writeConfig(withRebalance(config(flags, 'auto', CALM + WIDE)).replace('  - { id: b, host: localhost }\n', '  - { id: b, host: localhost }\n  - { id: c, host: localhost }\n'));
    const moved = await waitFor('a replica of wide moved to c', async () => (await events()).find((e) => e.kind === 'replica-migrated' && e.service === 'wide'), 90_000);
    expect(moved.message).toMatch(/to c: rebalance/);
    await waitFor('wide spread 2/1/1 with one copy each', async () => {
      const copies = await runningOn('wide');
      const on = (node: string) => copies.filter((x) => x.node === node).length;
      return copies.length === 4 && on('c') === 1 && Math.max(on('a'), on('b')) === 2;
    }, 30_000);
    const samples = await watch.stop();
    expect(Math.min(...samples.map((x) => x.running))).toBeGreaterThanOrEqual(4);
    // Spread as far as it goes (no two nodes differ by more than one): nothing else moves.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    expect((await events()).filter((e) => e.kind === 'replica-migrated' && e.service === 'wide')).toHaveLength(1);
  }, 180_000);
});
