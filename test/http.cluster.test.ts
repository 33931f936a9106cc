/**
 * The HTTP API of a real cluster (`otto cluster start --detach`: control plane, embedded broker, agent,
 * Docker): status and node metrics answered and valid against the server's own OpenAPI document, a node's
 * metrics over SSE within two metrics intervals, Prometheus metrics, and the API bound to loopback only.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_IMAGE, waitFor } from './support/cli.js';
import { SseReader, startTestCluster, type RunningTestCluster } from './support/http-fixtures.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const INTERVAL_MS = 1_000;

describe('the HTTP API of a running cluster', () => {
  let c: RunningTestCluster;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const get = async (path: string, token: string | null = c.token) => {
    const response = await fetch(`${c.apiUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : undefined };
  };
  const valid = (component: string, value: unknown) => {
    const ok = ajv.validate({ $ref: `openapi.json#/components/schemas/${component}` }, value);
    return ok || ajv.errorsText();
  };

  beforeAll(async () => {
    c = await startTestCluster({
      prefix: 'http',
      services: `  - name: worker
    image: ${TEST_IMAGE}
    node: local
    command: sh -c 'while true; do sleep 1; done'
    init: true
    memory: 32m
`,
    });
    const document = await (await fetch(`${c.apiUrl}/openapi.json`)).json();
    ajv.addSchema(document, 'openapi.json');
    await waitFor('the node online with metrics and the worker running', async () => {
      const status = await get('/api/v1/status');
      return status.json?.nodes[0]?.online && status.json.nodes[0].metrics && status.json.services[0]?.running === 1;
    });
  });

  afterAll(async () => {
    await c?.destroy();
  });

  it('listens on 127.0.0.1 only', () => {
    expect(new URL(c.apiUrl).hostname).toBe('127.0.0.1');
    // /proc/net/tcp: local address as hex IP:port; state 0A is LISTEN.
    const port = c.httpPort.toString(16).toUpperCase().padStart(4, '0');
    const listening = [readFileSync('/proc/net/tcp', 'utf8'), readFileSync('/proc/net/tcp6', 'utf8')]
      .join('\n')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f[1]?.endsWith(`:${port}`) && f[3] === '0A')
      .map((f) => f[1]);
    expect(listening).toEqual(['0100007F:' + port]);
  });

  it('answers /healthz without the token and /api only with it', async () => {
    expect((await get('/healthz', null)).status).toBe(200);
    expect((await get('/api/v1/status', null)).status).toBe(401);
    expect((await get('/api/v1/status', 'wrong')).status).toBe(401);
  });

  it('GET /api/v1/status answers the live cluster, valid against /openapi.json', async () => {
    // Container metrics come in their own message, a moment after the replica runs.
    const status = await waitFor('the worker container in the node metrics', async () => {
      const answer = await get('/api/v1/status');
      return answer.json?.nodes[0].containers.some((x: { service?: string }) => x.service === 'worker') && answer;
    });
    expect(status.status).toBe(200);
    expect(valid('ClusterStatus', status.json)).toBe(true);
    expect(status.json.cluster.name).toBe(c.cluster);
    const [node] = status.json.nodes;
    expect(node).toMatchObject({ id: 'local', online: true, docker: { reachable: true } });
    expect(node.containers.map((x: { container_name: string }) => x.container_name)).toContain(`${c.cluster}-worker-1`);
    expect(status.json.services[0]).toMatchObject({ name: 'worker', desired: 1, running: 1 });
  });

  it("GET /api/v1/nodes/{id}/metrics answers the node's recent samples, and since= filters them", async () => {
    const samples = await waitFor('two samples', async () => {
      const answer = await get('/api/v1/nodes/local/metrics');
      return answer.status === 200 && answer.json.length >= 2 && answer.json;
    });
    expect(valid('NodeMetricsList', samples)).toBe(true);
    expect(samples.every((m: { node_id: string }) => m.node_id === 'local')).toBe(true);
    const times = samples.map((m: { timestamp: string }) => Date.parse(m.timestamp));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    const last = samples.at(-1).timestamp;
    const newer = await get(`/api/v1/nodes/local/metrics?since=${encodeURIComponent(last)}`);
    expect(newer.status).toBe(200);
    expect(newer.json.every((m: { timestamp: string }) => Date.parse(m.timestamp) > Date.parse(last))).toBe(true);
    expect((await get('/api/v1/nodes/nope/metrics')).status).toBe(404);
    const bad = await get('/api/v1/nodes/local/metrics?since=soon');
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/^since: /);
  });

  it("GET /api/v1/stream delivers the node's metrics within 2 intervals", async () => {
    const opened = Date.now();
    const response = await fetch(`${c.apiUrl}/api/v1/stream?access_token=${c.token}`);
    expect(response.status).toBe(200);
    const reader = new SseReader(response.body!.getReader());
    try {
      const first = await reader.until((f) => f.event === 'node-metrics' && JSON.parse(f.data!).node_id === 'local' && JSON.parse(f.data!), 2 * INTERVAL_MS);
      const firstAfter = Date.now() - opened;
      expect(valid('NodeMetrics', first)).toBe(true);
      // And the next one, one interval later, newer.
      const second = await reader.until(
        (f) => f.event === 'node-metrics' && JSON.parse(f.data!).node_id === 'local' && Date.parse(JSON.parse(f.data!).timestamp) > Date.parse(first.timestamp) && JSON.parse(f.data!),
        2 * INTERVAL_MS,
      );
      expect(second.node_id).toBe('local');
      expect(firstAfter).toBeLessThan(2 * INTERVAL_MS);
      expect(reader.frames[0]!.retry).toBe('2000');
      const status = reader.frames.find((f) => f.event === 'status');
      expect(status && valid('ClusterStatus', JSON.parse(status.data!))).toBe(true);
    } finally {
      await reader.cancel();
    }
  });

  it('GET /metrics speaks Prometheus: node and container gauges, control-plane counters', async () => {
    expect((await get('/metrics', null)).status).toBe(401);
    const answer = await waitFor('the worker container gauges', async () => {
      const metrics = await get('/metrics');
      return metrics.text.includes('otto_container_cpu_percent{node="local",service="worker"') && metrics;
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const value = (prefix: string) => {
      const line = answer.text.split('\n').find((l) => l.startsWith(prefix));
      return line === undefined ? undefined : Number(line.split(' ').at(-1));
    };
    expect(value('otto_node_up{node="local"}')).toBe(1);
    expect(value('otto_node_cpu_percent{node="local"}')).toBeGreaterThanOrEqual(0);
    expect(value('otto_node_memory_total_bytes{node="local"}')).toBeGreaterThan(0);
    expect(value(`otto_container_memory_limit_bytes{node="local",service="worker",container="${c.cluster}-worker-1",replica="1"}`)).toBeCloseTo(32 * 1024 * 1024, -5);
    expect(value('otto_mqtt_messages_received_total')).toBeGreaterThan(0);
    expect(value('otto_mqtt_invalid_messages_total')).toBe(0);
    expect(value('otto_service_replicas_running{service="worker"}')).toBe(1);
    expect(answer.text).toContain('# TYPE otto_reconcile_duration_seconds summary');
  });

  it('answers 400 naming the field for a bad scale body, and 404 for an unknown service', async () => {
    const post = (path: string, body: string) =>
      fetch(`${c.apiUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' }, body });
    const bad = await post('/api/v1/services/worker/scale', '{"replicas":"two"}');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toBe('replicas: expected number, received string');
    expect((await post('/api/v1/services/nope/scale', '{"replicas":1}')).status).toBe(404);
    expect((await get('/healthz', null)).status).toBe(200);
  });
});
