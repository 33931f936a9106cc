/**
 * The whole single-machine path, against the real Docker engine and a real broker (embedded aedes, then
 * an external Mosquitto): init -> start --detach -> status -> containers in Docker -> metrics at a plain
 * subscriber -> agent restart makes no duplicate -> a removed container comes back -> stop -> stop --down.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../src/agent/bundle.js';
import { clusterStatusSchema, type ClusterStatus } from '../src/http/schemas.js';
import { containerMetricsBatchSchema, nodeMetricsSchema } from '../src/protocol/messages.js';
import { TEST_IMAGE, brokerLogin, containersOf, docker, freePort, isAlive, nodeSession, otto, removeClusterContainers, waitFor } from './support/cli.js';
import { startMosquitto, type Mosquitto } from './support/mosquitto.js';

async function writeCluster(options: { embedded: boolean; mqttPort: number }) {
  const dir = mkdtempSync(join(tmpdir(), 'otto-e2e-'));
  const cluster = `e2e${Math.random().toString(36).slice(2, 8)}`;
  const webPort = await freePort();
  const httpPort = await freePort();
  writeFileSync(
    join(dir, 'otto.yaml'),
    `cluster:
  name: ${cluster}
mqtt:
  host: 127.0.0.1
  port: ${options.mqttPort}
  embedded: ${options.embedded}
http:
  port: ${httpPort}
metrics:
  interval: 1s
nodes:
  - id: local
    host: localhost
  - id: nodocker
    host: localhost
    docker_url: unix:///tmp/otto-test-no-docker.sock
services:
  - name: web
    image: ${TEST_IMAGE}
    node: local
    command: httpd -f -p 80 -h /www
    init: true
    ports: ["127.0.0.1:${webPort}:80"]
    labels: { team: edge }
    environment: { GREETING: "\${GREETING:-hi}" }
    healthcheck:
      test: wget -q -O- http://127.0.0.1/ || exit 1
      interval: 1s
      retries: 3
  - name: worker
    image: ${TEST_IMAGE}
    node: local
    command: sh -c 'while true; do sleep 1; done'
    init: true
    memory: 64m
  - name: ghost
    image: otto-test/not-in-any-registry:1
    node: local
`,
  );
  return { dir, cluster, webPort };
}

describe.each([
  { broker: 'embedded aedes', embedded: true },
  { broker: 'external Mosquitto', embedded: false },
])('a one-machine cluster on the $broker broker', ({ embedded }) => {
  let mosquitto: Mosquitto | undefined;
  let dir: string;
  let cluster: string;
  let webPort: number;
  let mqttPort: number;
  const run = (...args: string[]) => otto(args, { cwd: dir });
  const status = async (): Promise<ClusterStatus & { running: boolean }> => {
    const result = await run('cluster', 'status', '--json');
    expect(result.code, result.stderr).toBe(0);
    const parsed = JSON.parse(result.stdout);
    return { ...clusterStatusSchema.parse(parsed), running: parsed.running };
  };

  beforeAll(async () => {
    if (!embedded) mosquitto = await startMosquitto();
    mqttPort = mosquitto?.port ?? (await freePort());
    ({ dir, cluster, webPort } = await writeCluster({ embedded, mqttPort }));
  });

  afterAll(async () => {
    await run('cluster', 'stop', '--down');
    await removeClusterContainers(cluster);
    await mosquitto?.stop();
  });

  it('init validates the config and writes .otto/', async () => {
    const result = await run('cluster', 'init');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`initialized cluster "${cluster}": 2 node(s), 3 service(s)`);
  });

  it('status of an initialized cluster that is not running says it is stopped', async () => {
    const result = await run('cluster', 'status');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`cluster "${cluster}" is stopped`);
    expect(result.stdout).toMatch(/web\s+otto-test\/busybox\s+1/);
  });

  it('start --detach returns once the control plane is ready', async () => {
    const result = await run('cluster', 'start', '--detach');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('services may still be starting');
  });

  it('a second start says the cluster runs and changes nothing', async () => {
    const before = await status();
    const result = await run('cluster', 'start', '--detach');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('already running');
    expect((await status()).cluster.pid).toBe(before.cluster.pid);
  });

  it('status shows the nodes online with live metrics and the services running', async () => {
    const live = await waitFor('web and worker running and healthy', async () => {
      const s = await status();
      const web = s.services.find((x) => x.name === 'web');
      const worker = s.services.find((x) => x.name === 'worker');
      return s.nodes.every((n) => n.online && n.metrics) && web?.running === 1 && web.health === 'healthy' && worker?.running === 1 && s;
    });
    expect(live.running).toBe(true);
    const local = live.nodes.find((n) => n.id === 'local')!;
    expect(local.docker?.reachable).toBe(true);
    expect(local.metrics!.memory_total_mb).toBeGreaterThan(0);

    const text = await run('cluster', 'status');
    expect(text.stdout).toMatch(/local\s+online/);
    expect(text.stdout).toMatch(/web\s+1\s+1\s+local\s+running\s+healthy\s+127\.0\.0\.1:\d+:80/);
  });

  it('runs the containers in Docker with the Compose-style names, labels, env, limits and healthcheck', async () => {
    const containers = await containersOf(cluster);
    const names = containers.map((c) => c.Names[0]).sort();
    expect(names).toEqual([`/${cluster}-web-1`, `/${cluster}-worker-1`]);
    const web = await docker.getContainer(`${cluster}-web-1`).inspect();
    expect(web.Config.Labels).toMatchObject({ 'otto.cluster': cluster, 'otto.node': 'local', 'otto.service': 'web', 'otto.replica': '1', team: 'edge' });
    expect(web.Config.Labels['otto.spec-hash']).toMatch(/^[0-9a-f]{12}$/);
    expect(web.Config.Env).toContain('GREETING=hi');
    expect(web.HostConfig.RestartPolicy?.Name).toBe('unless-stopped');
    expect(web.Config.Healthcheck?.Test).toEqual(['CMD-SHELL', 'wget -q -O- http://127.0.0.1/ || exit 1']);
    // init: true (Compose's init): Docker's init process as PID 1 passes stop signals on.
    expect(web.HostConfig.Init).toBe(true);
    const worker = await docker.getContainer(`${cluster}-worker-1`).inspect();
    expect(worker.HostConfig.Memory).toBe(64 * 1024 * 1024);
    const page = await fetch(`http://127.0.0.1:${webPort}/`);
    expect(await page.text()).toContain('otto test page');
  });

  it('reports a node whose Docker is unreachable, which keeps publishing node metrics', async () => {
    const s = await status();
    const node = s.nodes.find((n) => n.id === 'nodocker')!;
    expect(node.online).toBe(true);
    expect(node.docker?.reachable).toBe(false);
    expect(node.metrics).not.toBeNull();
    const text = await run('cluster', 'status');
    expect(text.stdout).toContain('node nodocker: Docker unreachable');
  });

  it('shows a failed image pull in status and keeps running', async () => {
    const s = await waitFor('the ghost pull error', async () => {
      const current = await status();
      return current.services.find((x) => x.name === 'ghost')?.errors.length && current;
    });
    const ghost = s.services.find((x) => x.name === 'ghost')!;
    expect(ghost.state).toBe('failing');
    expect(ghost.errors[0]).toMatch(/pull otto-test\/not-in-any-registry:1/);
  });

  it('streams metrics with the seed field names (and the cores, for migration predictions) to a plain MQTT subscriber', async () => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, brokerLogin(dir));
    const seen = new Map<string, unknown>();
    client.on('message', (topic, payload) => seen.set(topic, JSON.parse(payload.toString())));
    await client.subscribeAsync('otto/nodes/+/metrics/#');
    await waitFor('node and container metrics', async () => seen.has('otto/nodes/local/metrics/node') && seen.has('otto/nodes/local/metrics/containers'), 10_000, 100);
    await client.endAsync();
    const node = nodeMetricsSchema.strict().parse(seen.get('otto/nodes/local/metrics/node'));
    expect(Object.keys(node).sort()).toEqual(
      ['node_id', 'timestamp', 'cpu_percent', 'memory_percent', 'memory_used_mb', 'memory_total_mb', 'disk_percent', 'disk_used_gb', 'disk_total_gb', 'network_bytes_sent', 'network_bytes_recv', 'cpu_count'].sort(),
    );
    const batch = containerMetricsBatchSchema.parse(seen.get('otto/nodes/local/metrics/containers'));
    const web = batch.containers.find((c) => c.container_name === `${cluster}-web-1`);
    expect(web).toMatchObject({ service: 'web', replica: 1 });
    const worker = batch.containers.find((c) => c.container_name === `${cluster}-worker-1`)!;
    expect(worker.memory_limit_mb).toBeCloseTo(64, 0);
  });

  it('counts an invalid MQTT message and keeps running', async () => {
    const before = (await status()).counters.invalid_messages;
    // The node itself sends garbage (a bug, a broken agent): with its own credential.
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, nodeSession(dir, cluster, 'local', 'garbage'));
    await client.publishAsync('otto/nodes/local/metrics/node', '{"node_id": "local", "cpu_percent": "lots"}');
    await client.publishAsync('otto/nodes/local/state', 'not json at all');
    await client.endAsync();
    const after = await waitFor('the invalid messages counted', async () => {
      const s = await status();
      return s.counters.invalid_messages >= before + 2 && s;
    });
    expect(after.nodes.find((n) => n.id === 'local')!.online).toBe(true);
  });

  it('an agent restart creates no duplicate', async () => {
    const before = await containersOf(cluster);
    const agentPid = (await status()).nodes.find((n) => n.id === 'local')!.agent_pid!;
    // The control plane runs its agents with the flags and environment every agent gets (their memory budget).
    expect(readFileSync(`/proc/${agentPid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(AGENT_NODE_FLAGS));
    expect(readFileSync(`/proc/${agentPid}/environ`, 'utf8').split('\0')).toEqual(expect.arrayContaining(Object.entries(AGENT_ENV).map(([name, value]) => `${name}=${value}`)));
    process.kill(agentPid, 'SIGKILL');
    await waitFor('the agent to come back', async () => {
      const node = (await status()).nodes.find((n) => n.id === 'local')!;
      return node.online && node.agent_pid !== agentPid;
    });
    // Let the new agent finish a few reconciles before judging.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const after = await containersOf(cluster, true);
    expect(after.map((c) => c.Id).sort()).toEqual(before.map((c) => c.Id).sort());
  });

  it('a container removed by hand comes back', async () => {
    const old = await docker.getContainer(`${cluster}-worker-1`).inspect();
    await docker.getContainer(old.Id).remove({ force: true });
    const back = await waitFor('the worker to come back', async () => {
      const info = await docker.getContainer(`${cluster}-worker-1`).inspect().catch(() => undefined);
      return info?.State.Running && info;
    }, 30_000);
    expect(back.Id).not.toBe(old.Id);
    expect((await containersOf(cluster)).filter((c) => c.Labels['otto.service'] === 'worker')).toHaveLength(1);
  });

  it('stop stops agents and control plane and leaves the containers running', async () => {
    const s = await status();
    const pids = [s.cluster.pid, ...s.nodes.map((n) => n.agent_pid!)];
    const result = await run('cluster', 'stop');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('containers keep running');
    for (const pid of pids) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    expect((await containersOf(cluster)).map((c) => c.State)).toEqual(['running', 'running']);
    expect((await run('cluster', 'status')).stdout).toContain('is stopped');
  });

  it('stop --down removes the containers, and says which node it could not reach (exit 2)', async () => {
    const result = await run('cluster', 'stop', '--down');
    expect(result.stdout).toContain('removed 2 container(s)');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^otto: node nodocker: docker: list containers: connect ENOENT/);
    expect(result.stderr).toContain('hint: start Docker on those nodes');
    expect(await containersOf(cluster, true)).toEqual([]);
  });
});
