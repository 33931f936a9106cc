/**
 * StatusJson (src/http/status-json.ts) gives, piece by piece and with caching, the very text that
 * validating the whole status with its zod schema and serializing it gives; a bad node view is refused
 * with the path of the field; a filtered status has the nodes not shown as summaries.
 */
import { describe, expect, it } from 'vitest';
import { clusterStatusSchema, nodeListSchema, type ClusterStatus } from '../src/http/schemas.js';
import { StatusJson } from '../src/http/status-json.js';
import { FakeControlPlane } from './support/http-fixtures.js';

const wholeText = (status: ClusterStatus) => JSON.stringify(clusterStatusSchema.parse(status));

describe('StatusJson', () => {
  it('answers the text of the whole status validated and serialized at once, unknown keys stripped', () => {
    const status = new FakeControlPlane().status();
    // Extra keys the schemas strip, at every level the pieces are cut at.
    const node = status.nodes[0]! as Record<string, unknown>;
    node.secret = 'x';
    (node.metrics as Record<string, unknown>).extra = 1;
    (status.nodes[0]!.containers[0] as Record<string, unknown>).extra = 2;
    (status as Record<string, unknown>).extra = 3;
    const json = new StatusJson();
    const answer = json.status(status);
    expect(answer).toEqual({ ok: true, json: wholeText(status) });
    expect(json.nodes(status.nodes)).toEqual({ ok: true, json: JSON.stringify(nodeListSchema.parse(status.nodes)) });
    // Asked again for the same lists: the same text (from the cache).
    expect(json.status(status)).toEqual(answer);
  });

  it('gives the same text as UTF-8 bytes, the lists encoded once', () => {
    const status = new FakeControlPlane().status();
    status.nodes[0]!.labels = { place: 'Küche ☕' };
    const json = new StatusJson();
    const first = json.statusBytes(status);
    if (!first.ok) throw new Error('expected a valid status');
    expect(first.bytes.toString('utf8')).toBe(wholeText(status));
    const nodes = json.nodeBytes(status.nodes);
    if (!nodes.ok) throw new Error('expected a valid node list');
    expect(nodes.bytes.toString('utf8')).toBe(JSON.stringify(nodeListSchema.parse(status.nodes)));
    expect(json.nodeBytes(status.nodes)).toEqual(nodes);
    expect((json.nodeBytes(status.nodes) as { bytes: Buffer }).bytes).toBe(nodes.bytes);
    const bad = structuredClone(status);
    (bad.nodes[0] as Record<string, unknown>).online = 'yes';
    const refused = json.statusBytes(bad);
    expect(refused.ok).toBe(false);
  });

  it('follows a rebuilt list, and a node whose report changed', () => {
    const fake = new FakeControlPlane();
    const json = new StatusJson();
    const first = fake.status();
    expect(json.status(first)).toEqual({ ok: true, json: wholeText(first) });
    const next = fake.status();
    next.nodes[0]!.metrics = { ...next.nodes[0]!.metrics!, cpu_percent: 99 };
    next.nodes[1]!.state = 'lost';
    expect(json.status(next)).toEqual({ ok: true, json: wholeText(next) });
  });

  it('refuses a view that does not match the schema, naming where', () => {
    const status = new FakeControlPlane().status();
    (status.nodes[1]!.containers as unknown[]).push({ container_id: 'c9' });
    const answer = json(status);
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.error.issues[0]!.path.slice(0, 3)).toEqual(['nodes', 1, 'containers']);
    const bad = new FakeControlPlane().status();
    (bad.nodes[0] as Record<string, unknown>).state = 'sleeping';
    const second = json(bad);
    expect(!second.ok && second.error.issues[0]!.path).toEqual(['nodes', 0, 'state']);
  });

  it('gives the nodes not shown as summaries: metrics null, no containers, the rest as it is', () => {
    const status = new FakeControlPlane().status();
    const answer = new StatusJson().status(status, new Set(['edge-2']));
    expect(answer.ok).toBe(true);
    const parsed = clusterStatusSchema.parse(JSON.parse(answer.ok ? answer.json : '{}'));
    expect(parsed.nodes[0]).toEqual({ ...clusterStatusSchema.parse(status).nodes[0], metrics: null, containers: [] });
    expect(parsed.nodes[1]).toEqual(clusterStatusSchema.parse(status).nodes[1]);
  });
});

function json(status: ClusterStatus) {
  return new StatusJson().status(status);
}
