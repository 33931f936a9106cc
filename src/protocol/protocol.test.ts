import { describe, expect, it } from 'vitest';
import {
  containerMetricsBatchSchema,
  desiredStateSchema,
  nodeMetricsSchema,
  nodeStateSchema,
  nodeStatusSchema,
  type ContainerSpec,
} from './messages.js';
import { decode, encode } from './codec.js';
import { specHash } from './spec-hash.js';
import { parseTopic, topics } from './topics.js';

const nodeMetrics = {
  node_id: 'rpi-01',
  timestamp: '2026-11-25T14:35:16.385Z',
  cpu_percent: 12.5,
  memory_percent: 40.1,
  memory_used_mb: 1600,
  memory_total_mb: 4000,
  disk_percent: 22.4,
  disk_used_gb: 6.2,
  disk_total_gb: 29.1,
  network_bytes_sent: 628295,
  network_bytes_recv: 389066240,
};

const spec: ContainerSpec = {
  image: 'nginx:alpine',
  command: ['nginx', '-g', 'daemon off;'],
  env: { A: '1', B: '2' },
  ports: [{ host_port: 8080, container_port: 80, protocol: 'tcp' }],
  volumes: [],
  restart: 'unless-stopped',
  labels: {},
};

describe('topics', () => {
  it('builds the seed 004 topics and parses them back', () => {
    expect(topics.nodeMetrics('rpi-01')).toBe('otto/nodes/rpi-01/metrics/node');
    expect(topics.containerMetrics('rpi-01')).toBe('otto/nodes/rpi-01/metrics/containers');
    expect(parseTopic('otto/nodes/rpi-01/metrics/containers')).toEqual({ nodeId: 'rpi-01', kind: 'containerMetrics' });
    expect(parseTopic('otto/nodes/rpi-01/desired')).toEqual({ nodeId: 'rpi-01', kind: 'desired' });
    expect(parseTopic('otto/nodes/rpi-01/unknown')).toBeUndefined();
    expect(parseTopic('elsewhere/rpi-01/status')).toBeUndefined();
    expect(parseTopic('otto/nodes//status')).toBeUndefined();
  });
});

describe('message schemas', () => {
  it('accept the seed field names', () => {
    expect(decode(nodeMetricsSchema, encode(nodeMetrics))).toEqual({ ok: true, value: nodeMetrics });
    const batch = {
      node_id: 'rpi-01',
      timestamp: nodeMetrics.timestamp,
      containers: [
        {
          container_id: 'abc',
          container_name: 'demo-web-1',
          cpu_percent: 0.5,
          memory_percent: 1,
          memory_usage_mb: 3.2,
          memory_limit_mb: 256,
          network_rx_bytes: 1,
          network_tx_bytes: 2,
          block_read_bytes: 3,
          block_write_bytes: 4,
        },
      ],
    };
    expect(decode(containerMetricsBatchSchema, JSON.stringify(batch)).ok).toBe(true);
  });

  it('reject malformed payloads with the field named, without throwing', () => {
    expect(decode(nodeMetricsSchema, 'not json')).toMatchObject({ ok: false, error: expect.stringContaining('not JSON') });
    expect(decode(nodeMetricsSchema, encode({ ...nodeMetrics, cpu_percent: 'lots' }))).toEqual({
      ok: false,
      error: expect.stringMatching(/^cpu_percent: /),
    });
    expect(decode(nodeMetricsSchema, encode({ ...nodeMetrics, timestamp: 'yesterday' })).ok).toBe(false);
    expect(decode(nodeStatusSchema, encode({ node_id: 'a', state: 'sleeping', timestamp: nodeMetrics.timestamp })).ok).toBe(false);
    expect(decode(nodeStateSchema, Buffer.from([0xff, 0xfe])).ok).toBe(false);
    expect(decode(desiredStateSchema, encode({ cluster: 'c', node_id: 'a', revision: 1 })).ok).toBe(false);
  });

  it('carry a desired state round trip', () => {
    const desired = {
      cluster: 'demo',
      node_id: 'local',
      revision: 3,
      generated_at: nodeMetrics.timestamp,
      settings: { metrics_interval_ms: 5000 },
      replicas: [{ service: 'web', replica: 1, name: 'demo-web-1', spec_hash: specHash(spec), container: spec }],
    };
    expect(decode(desiredStateSchema, encode(desired))).toEqual({ ok: true, value: desired });
  });
});

describe('specHash', () => {
  it('is the same whatever the key order, and changes with the spec', () => {
    const reordered: ContainerSpec = { ...spec, env: { B: '2', A: '1' } };
    expect(specHash(reordered)).toBe(specHash(spec));
    expect(specHash({ ...spec, env: { A: '1', B: '3' } })).not.toBe(specHash(spec));
    expect(specHash(spec)).toMatch(/^[0-9a-f]{12}$/);
  });
});
