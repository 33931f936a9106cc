/**
 * The HTTP contract of every route, against the real fastify server on a real port, with the control
 * plane replaced by fixed data behind `ApiHandlers`: status codes, 401 without the token, 400 naming the
 * field of a bad body or parameter, and every JSON answer checked against GET /openapi.json by a JSON
 * Schema validator (ajv) that knows nothing of zod.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi } from '../src/http/api.js';
import { allRoutes } from '../src/http/routes.js';
import { FakeControlPlane, SseReader, TOKEN, nodeSample } from './support/http-fixtures.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

async function serve(fake: FakeControlPlane, extra: { metricsPublic?: boolean; uiDir?: string } = {}) {
  const app = await startApi({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    handlers: fake,
    uiDir: extra.uiDir ?? join(tmpdir(), 'otto-no-ui-here'),
    metricsPublic: extra.metricsPublic,
    stream: { heartbeatMs: 300, statusMs: 500, retryMs: 2_000 },
  });
  const { port } = app.server.address() as AddressInfo;
  return { app, base: `http://127.0.0.1:${port}` };
}

function client(base: () => string) {
  return async function call(
    method: string,
    path: string,
    options: { token?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? TOKEN : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined = options.rawBody;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${base()}${path}`, { method, headers, body });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json };
  };
}

describe('the HTTP API contract', () => {
  const fake = new FakeControlPlane();
  let app: FastifyInstance;
  let base = '';
  let document: any;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const call = client(() => base);
  /** A POST whose body goes without any Content-Type header (fetch would add text/plain to a string). */
  const rawPost = (path: string, body: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const url = new URL(path, base);
      const request = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-length': Buffer.byteLength(body) } },
        (response) => {
          let text = '';
          response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        },
      );
      request.on('error', reject).end(body);
    });
  /** Which (method, path template, status) the tests below checked against the document. */
  const checked = new Set<string>();

  /** The answer's body must match the schema the OpenAPI document gives for this route and status. */
  function expectContract(method: string, template: string, answer: Answer, status: number) {
    expect(answer.status, answer.text).toBe(status);
    const response = document.paths[template]?.[method.toLowerCase()]?.responses?.[String(status)];
    expect(response, `${method} ${template} ${status} is documented`).toBeDefined();
    const schema = response.content['application/json'].schema as { $ref: string };
    const validate = ajv.compile({ $ref: `openapi.json${schema.$ref}` });
    const valid = validate(answer.json);
    expect(valid, `${method} ${template} ${status}: ${ajv.errorsText(validate.errors)}\n${answer.text.slice(0, 500)}`).toBe(true);
    checked.add(`${method} ${template} ${status}`);
  }

  beforeAll(async () => {
    ({ app, base } = await serve(fake));
    const answer = await call('GET', '/openapi.json', { token: null });
    document = answer.json;
    ajv.addSchema(document, 'openapi.json');
  });

  afterAll(async () => {
    await app.close();
  });

  describe('GET /openapi.json', () => {
    it('is an OpenAPI 3.1 document served without the token', async () => {
      const answer = await call('GET', '/openapi.json', { token: null });
      expect(answer.status).toBe(200);
      expect(answer.json.openapi).toBe('3.1.0');
      expect(answer.json.jsonSchemaDialect).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(Object.keys(answer.json.components.schemas)).toEqual(expect.arrayContaining(['ClusterStatus', 'NodeView', 'NodeMetrics', 'ServiceView', 'Operation', 'ClusterEvent', 'ScaleRequest', 'RestartRequest', 'Error']));
    });

    it('validates against the official OpenAPI 3.1 schema', async () => {
      const answer = await call('GET', '/openapi.json', { token: null });
      const result = await new Validator().validate(answer.json);
      expect(result.valid, JSON.stringify(result.errors)).toBe(true);
      // The same validator rejects a broken document, so the check above can fail.
      const broken = { ...answer.json, paths: { ...answer.json.paths, '/healthz': { get: { responses: { 200: { content: 'nope' } } } } } };
      expect((await new Validator().validate(broken)).valid).toBe(false);
    });

    it('documents every route of the issue, with the bearer token on /api', () => {
      const expected = [
        'get /healthz',
        'get /api/v1/status',
        'get /api/v1/nodes',
        'get /api/v1/nodes/{id}/metrics',
        'get /api/v1/services',
        'get /api/v1/services/{name}',
        'post /api/v1/services/{name}/scale',
        'post /api/v1/services/{name}/restart',
        'post /api/v1/services/{name}/rollback',
        'post /api/v1/nodes/{id}/rotate-credentials',
        'post /api/v1/nodes/{id}/remove',
        'post /api/v1/services/{name}/move',
        'get /api/v1/plan',
        'post /api/v1/rebalance',
        'get /api/v1/operations',
        'get /api/v1/events',
        'get /api/v1/stream',
        'get /metrics',
        'get /openapi.json',
        'get /',
      ];
      const documented = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item as object).map((method) => `${method} ${path}`));
      expect(documented.sort()).toEqual(expected.sort());
      const apiOperations = Object.entries<any>(document.paths)
        .filter(([path]) => path.startsWith('/api/'))
        .flatMap(([path, item]) => Object.values<any>(item).map((operation) => [path, operation] as const));
      expect(apiOperations).toHaveLength(expected.filter((route) => route.includes(' /api/')).length);
      for (const [path, operation] of apiOperations) {
        expect(operation.security, path).toContainEqual({ bearer: [] });
        expect(operation.responses['401'], path).toBeDefined();
      }
      expect(document.paths['/api/v1/stream'].get.security).toContainEqual({ accessToken: [] });
      expect(document.paths['/api/v1/services/{name}/scale'].post.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ScaleRequest' });
      expect(document.components.schemas.ScaleRequest).toMatchObject({ required: ['replicas'], additionalProperties: false });
      expect(document.components.schemas.RestartRequest.required ?? []).not.toContain('rolling');
      expect(document.paths['/api/v1/services/{name}/scale'].post.requestBody.required).toBe(true);
      expect(document.paths['/api/v1/services/{name}/restart'].post.requestBody.required).toBe(false);
    });

    it('documents the path and query parameters', () => {
      const params = document.paths['/api/v1/nodes/{id}/metrics'].get.parameters;
      expect(params).toEqual([
        expect.objectContaining({ name: 'id', in: 'path', required: true }),
        expect.objectContaining({ name: 'since', in: 'query', required: false }),
      ]);
    });

    it('every route in the route table answers on the running server (none is only on paper)', async () => {
      // The route table is the documented set, so the loop below covers every documented route.
      const documented = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item as object).map((method) => `${method.toUpperCase()} ${path}`));
      expect(allRoutes.map((route) => `${route.method} ${route.path}`).sort()).toEqual(documented.sort());
      for (const route of allRoutes) {
        if (route.path === '/api/v1/stream') continue;
        const path = route.path.replace('{id}', 'edge-1').replace('{name}', 'web');
        const answer = await call(route.method, path, { body: route.method === 'POST' ? {} : undefined });
        expect(answer.status, `${route.method} ${path}`).not.toBe(404);
      }
    });
  });

  describe('GET /healthz', () => {
    it('answers without the token', async () => {
      expectContract('GET', '/healthz', await call('GET', '/healthz', { token: null }), 200);
    });
  });

  describe('authentication', () => {
    it.each([
      ['no token', null, undefined],
      ['a wrong token', 'nope', undefined],
      ['a token one character short', TOKEN.slice(0, -1), undefined],
      ['a Basic header', null, { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }],
      ['the token in the query of a route other than the stream', null, undefined, `?access_token=${TOKEN}`],
    ])('answers 401 to %s on every /api route, and runs nothing', async (_what, token, headers, query = '') => {
      const before = fake.ops.length;
      // The stream takes the token from the query (see below).
      const guarded = allRoutes.filter((r) => r.path.startsWith('/api/') && !(query && r.path === '/api/v1/stream'));
      const documentedApi = Object.entries<any>(document.paths).filter(([path]) => path.startsWith('/api/')).flatMap(([, item]) => Object.keys(item));
      expect(guarded).toHaveLength(documentedApi.length - (query ? 1 : 0));
      for (const route of guarded) {
        const path = route.path.replace('{id}', 'edge-1').replace('{name}', 'web') + query;
        const answer = await call(route.method, path, { token, headers, body: route.method === 'POST' ? { replicas: 3 } : undefined });
        expect(answer.status, `${route.method} ${path}`).toBe(401);
        expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="otto"');
        if (route.path !== '/api/v1/stream') expectContract(route.method, route.path, answer, 401);
      }
      expect(fake.ops.length).toBe(before);
    });

    it.each(['/API/v1/status', '/api/v1/status/', '//api/v1/status', '/api/v1/%73tatus', '/api/v1/./status', '/api/v1/x/../status', '/%61pi/v1/status'])(
      'gives nothing away for the odd spelling %s',
      async (path) => {
        const answer = await call('GET', path, { token: null });
        expect(answer.status, answer.text).not.toBe(200);
        expect(answer.status).toBeLessThan(500);
        expect(answer.text).not.toContain('"cluster"');
      },
    );

    it('accepts a lower-case bearer scheme', async () => {
      expect((await call('GET', '/api/v1/status', { token: null, headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
    });
  });

  describe('GET /api/v1/status, /nodes, /services', () => {
    it('answers the cluster status', async () => {
      const answer = await call('GET', '/api/v1/status');
      expectContract('GET', '/api/v1/status', answer, 200);
      expect(answer.json.cluster.name).toBe('fake');
      expect(answer.json.drift).toEqual([expect.objectContaining({ service: 'web', desired: 2, running: 1 })]);
    });

    it('answers the nodes', async () => {
      const answer = await call('GET', '/api/v1/nodes');
      expectContract('GET', '/api/v1/nodes', answer, 200);
      expect(answer.json.map((n: { id: string }) => n.id)).toEqual(['edge-1', 'edge-2']);
    });

    it('answers the services, and one service by name', async () => {
      const all = await call('GET', '/api/v1/services');
      expectContract('GET', '/api/v1/services', all, 200);
      expect(all.json.map((s: { name: string }) => s.name)).toEqual(['web', 'worker']);
      const one = await call('GET', '/api/v1/services/worker');
      expectContract('GET', '/api/v1/services/{name}', one, 200);
      expect(one.json.name).toBe('worker');
    });

    it('answers 404 for an unknown service', async () => {
      const answer = await call('GET', '/api/v1/services/nope');
      expectContract('GET', '/api/v1/services/{name}', answer, 404);
      expect(answer.json.error).toContain('nope');
    });
  });

  describe('GET /api/v1/nodes/{id}/metrics', () => {
    it("answers a node's samples, oldest first", async () => {
      const answer = await call('GET', '/api/v1/nodes/edge-1/metrics');
      expectContract('GET', '/api/v1/nodes/{id}/metrics', answer, 200);
      expect(answer.json).toHaveLength(5);
      const times = answer.json.map((m: { timestamp: string }) => Date.parse(m.timestamp));
      expect([...times].sort()).toEqual(times);
    });

    it('takes since as an ISO time or as epoch milliseconds', async () => {
      const samples = fake.history.get('edge-1')!;
      const since = samples[2]!.timestamp;
      const iso = await call('GET', `/api/v1/nodes/edge-1/metrics?since=${encodeURIComponent(since)}`);
      expectContract('GET', '/api/v1/nodes/{id}/metrics', iso, 200);
      expect(iso.json).toHaveLength(2);
      const ms = await call('GET', `/api/v1/nodes/edge-1/metrics?since=${Date.parse(since)}`);
      expect(ms.json).toHaveLength(2);
    });

    it.each(['yesterday', '-5', '2024-13-45T99:00:00Z', ''])('answers 400 naming since for since=%s', async (since) => {
      const answer = await call('GET', `/api/v1/nodes/edge-1/metrics?since=${encodeURIComponent(since)}`);
      expectContract('GET', '/api/v1/nodes/{id}/metrics', answer, 400);
      expect(answer.json.error).toMatch(/^since: /);
    });

    it('answers 400 for since given twice', async () => {
      const answer = await call('GET', '/api/v1/nodes/edge-1/metrics?since=1&since=2');
      expect(answer.status).toBe(400);
      expect(answer.json.error).toMatch(/^since: expected string/);
    });

    it('answers 404 for an unknown node', async () => {
      const answer = await call('GET', '/api/v1/nodes/nope/metrics');
      expectContract('GET', '/api/v1/nodes/{id}/metrics', answer, 404);
      expect(answer.json.error).toContain('nope');
    });
  });

  describe('POST /api/v1/services/{name}/scale', () => {
    it('queues the scale and answers 202 with the operation', async () => {
      const answer = await call('POST', '/api/v1/services/web/scale', { body: { replicas: 3 } });
      expectContract('POST', '/api/v1/services/{name}/scale', answer, 202);
      expect(answer.json).toMatchObject({ kind: 'scale', service: 'web', replicas: 3, state: 'queued' });
      expect(fake.ops.at(-1)).toMatchObject({ kind: 'scale', replicas: 3 });
    });

    it('answers 415 with a hint to a body that is not application/json (curl -d sends form-urlencoded), and queues nothing', async () => {
      const before = fake.ops.length;
      for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'text/plain; charset=utf-8', 'multipart/form-data; boundary=x', 'application/jsonx']) {
        const answer = await call('POST', '/api/v1/services/web/scale', { rawBody: '{"replicas":0}', headers: { 'content-type': type } });
        expectContract('POST', '/api/v1/services/{name}/scale', answer, 415);
        expect(answer.json).toEqual({ error: `body: expected Content-Type application/json, got ${type.split(';')[0]}`, hint: 'send Content-Type: application/json' });
      }
      expect(fake.ops.length).toBe(before);
    });

    it('answers 415 to a body without any Content-Type', async () => {
      const answer = await rawPost('/api/v1/services/web/scale', '{"replicas":0}');
      expect(answer.status).toBe(415);
      expect(JSON.parse(answer.text)).toEqual({ error: 'body: expected Content-Type application/json, got none', hint: 'send Content-Type: application/json' });
    });

    it('reads application/json with a charset, in any case', async () => {
      const answer = await call('POST', '/api/v1/services/web/scale', { rawBody: '{"replicas":0}', headers: { 'content-type': 'Application/JSON; charset=utf-8' } });
      expectContract('POST', '/api/v1/services/{name}/scale', answer, 202);
      expect(answer.json.replicas).toBe(0);
    });

    it.each([
      ['a string', { replicas: '3' }, 'replicas: expected number, received string'],
      ['no replicas', {}, 'replicas: expected number, received undefined'],
      ['a negative count', { replicas: -1 }, 'replicas: Too small'],
      ['a fraction', { replicas: 1.5 }, 'replicas: expected int, received number'],
      ['too many', { replicas: 100_000 }, 'replicas: Too big'],
      ['an unknown field', { replicas: 2, force: true }, 'force: unknown field'],
      ['an array', [2], 'body: expected object, received array'],
      ['null', null, 'body: expected object, received null'],
    ])('answers 400 naming the field for %s', async (_what, body, error) => {
      const before = fake.ops.length;
      const answer = await call('POST', '/api/v1/services/web/scale', { body });
      expectContract('POST', '/api/v1/services/{name}/scale', answer, 400);
      expect(answer.json.error).toContain(error);
      expect(answer.json.issues[0].field).toBe(error.split(':')[0]);
      expect(fake.ops.length).toBe(before);
    });

    it('answers 400 for a body that is not JSON, and for no body', async () => {
      const notJson = await call('POST', '/api/v1/services/web/scale', { rawBody: '{"replicas": 3', headers: { 'content-type': 'application/json' } });
      expectContract('POST', '/api/v1/services/{name}/scale', notJson, 400);
      expect(notJson.json.error).toMatch(/^body: not JSON/);
      const empty = await call('POST', '/api/v1/services/web/scale', { rawBody: '', headers: { 'content-type': 'application/json' } });
      expectContract('POST', '/api/v1/services/{name}/scale', empty, 400);
      expect(empty.json.error).toBe('replicas: expected number, received undefined');
    });

    it('answers 404 for an unknown service', async () => {
      const answer = await call('POST', '/api/v1/services/nope/scale', { body: { replicas: 1 } });
      expectContract('POST', '/api/v1/services/{name}/scale', answer, 404);
    });
  });

  describe('POST /api/v1/services/{name}/restart', () => {
    it('queues a rolling restart', async () => {
      const answer = await call('POST', '/api/v1/services/web/restart', { body: { rolling: true } });
      expectContract('POST', '/api/v1/services/{name}/restart', answer, 202);
      expect(answer.json).toMatchObject({ kind: 'rolling-restart', service: 'web', state: 'queued' });
    });

    it('restarts all at once without a body', async () => {
      const answer = await call('POST', '/api/v1/services/worker/restart');
      expectContract('POST', '/api/v1/services/{name}/restart', answer, 202);
      expect(answer.json.kind).toBe('restart');
    });

    it('answers 415 to a body that is not application/json', async () => {
      const answer = await call('POST', '/api/v1/services/web/restart', { rawBody: '{"rolling":true}', headers: { 'content-type': 'text/plain' } });
      expectContract('POST', '/api/v1/services/{name}/restart', answer, 415);
      expect(answer.json.hint).toBe('send Content-Type: application/json');
    });

    it('restarts without a body whatever the Content-Type says (an empty body is no body)', async () => {
      const answer = await call('POST', '/api/v1/services/worker/restart', { rawBody: '', headers: { 'content-type': 'text/plain' } });
      expectContract('POST', '/api/v1/services/{name}/restart', answer, 202);
      expect(answer.json.kind).toBe('restart');
    });

    it('answers 400 naming rolling for a string', async () => {
      const answer = await call('POST', '/api/v1/services/web/restart', { body: { rolling: 'yes' } });
      expectContract('POST', '/api/v1/services/{name}/restart', answer, 400);
      expect(answer.json.error).toBe('rolling: expected boolean, received string');
    });

    it('answers 404 for an unknown service', async () => {
      expectContract('POST', '/api/v1/services/{name}/restart', await call('POST', '/api/v1/services/nope/restart', { body: { rolling: true } }), 404);
    });
  });

  describe('POST /api/v1/nodes/{id}/remove', () => {
    it('answers the node and when it was removed', async () => {
      const answer = await call('POST', '/api/v1/nodes/edge-2/remove');
      expectContract('POST', '/api/v1/nodes/{id}/remove', answer, 200);
      expect(answer.json.node).toBe('edge-2');
    });

    it('answers 400 for a node of otto.yaml, 404 for an unknown one', async () => {
      expectContract('POST', '/api/v1/nodes/{id}/remove', await call('POST', '/api/v1/nodes/edge-1/remove'), 400);
      expectContract('POST', '/api/v1/nodes/{id}/remove', await call('POST', '/api/v1/nodes/nope/remove'), 404);
    });
  });

  describe('POST /api/v1/nodes/{id}/rotate-credentials', () => {
    it('answers the node and when its credential was rotated', async () => {
      const answer = await call('POST', '/api/v1/nodes/edge-2/rotate-credentials');
      expectContract('POST', '/api/v1/nodes/{id}/rotate-credentials', answer, 200);
      expect(answer.json.node).toBe('edge-2');
    });

    it('answers 404 for an unknown node', async () => {
      expectContract('POST', '/api/v1/nodes/{id}/rotate-credentials', await call('POST', '/api/v1/nodes/nope/rotate-credentials'), 404);
    });
  });

  describe('POST /api/v1/services/{name}/rollback', () => {
    it('queues a rollback, with no body', async () => {
      const answer = await call('POST', '/api/v1/services/web/rollback');
      expectContract('POST', '/api/v1/services/{name}/rollback', answer, 202);
      expect(answer.json).toMatchObject({ kind: 'rollback', service: 'web', state: 'queued' });
    });

    it('queues a rollback with an empty body and no Content-Type (curl -X POST)', async () => {
      const answer = await rawPost('/api/v1/services/web/rollback', '');
      expect(answer.status).toBe(202);
      expect(JSON.parse(answer.text)).toMatchObject({ kind: 'rollback', service: 'web' });
    });

    it('answers 404 for an unknown service', async () => {
      expectContract('POST', '/api/v1/services/{name}/rollback', await call('POST', '/api/v1/services/nope/rollback'), 404);
    });
  });

  describe('POST /api/v1/services/{name}/move, GET /api/v1/plan, POST /api/v1/rebalance', () => {
    it('queues a move of one replica as a migrate operation', async () => {
      const answer = await call('POST', '/api/v1/services/web/move', { body: { replica: 1, to: 'edge-1' } });
      expectContract('POST', '/api/v1/services/{name}/move', answer, 202);
      expect(answer.json).toMatchObject({ kind: 'migrate', service: 'web', moves: [{ replica: 1, to: 'edge-1', state: 'pending' }] });
    });

    it('answers 400 naming the field for a bad body, 400 when the node cannot take it, 404 for an unknown service or node', async () => {
      const bad = await call('POST', '/api/v1/services/web/move', { body: { replica: 0, to: 'edge-1' } });
      expectContract('POST', '/api/v1/services/{name}/move', bad, 400);
      expect(bad.json.issues[0].field).toBe('replica');
      const refused = await call('POST', '/api/v1/services/web/move', { body: { replica: 1, to: 'edge-2' } });
      expectContract('POST', '/api/v1/services/{name}/move', refused, 400);
      expect(refused.json.error).toContain('edge-2 is not online');
      expectContract('POST', '/api/v1/services/{name}/move', await call('POST', '/api/v1/services/nope/move', { body: { replica: 1, to: 'edge-1' } }), 404);
      expectContract('POST', '/api/v1/services/{name}/move', await call('POST', '/api/v1/services/web/move', { body: { replica: 1, to: 'nope' } }), 404);
    });

    it('answers the plan with the violations under way', async () => {
      fake.violations.set('web', [
        { replica: 1, node: 'edge-1', rule: 'node.cpu_percent < 85 for 1m', metric: 'node.cpu_percent', threshold: 85, since: new Date(0).toISOString(), value: 97, failing: true, action: 'migrate' },
      ]);
      try {
        const answer = await call('GET', '/api/v1/plan');
        expectContract('GET', '/api/v1/plan', answer, 200);
        expect(answer.json.violations).toEqual([expect.objectContaining({ service: 'web', replica: 1, rule: 'node.cpu_percent < 85 for 1m' })]);
      } finally {
        fake.violations.clear();
      }
    });

    it('a rebalance dry run says what would move and queues nothing; without it, queues the moves', async () => {
      const dry = await call('POST', '/api/v1/rebalance', { body: { dry_run: true } });
      expectContract('POST', '/api/v1/rebalance', dry, 200);
      expect(dry.json).toMatchObject({ operation: null, moves: [{ action: 'move', service: 'web', replica: 2, from: 'edge-1', to: 'edge-2' }] });
      const real = await call('POST', '/api/v1/rebalance', { body: {} });
      expectContract('POST', '/api/v1/rebalance', real, 200);
      expect(real.json.operation).toMatchObject({ kind: 'migrate', state: 'queued' });
    });
  });

  describe('GET /api/v1/operations and /api/v1/events', () => {
    it('answers the operations ledger', async () => {
      const answer = await call('GET', '/api/v1/operations');
      expectContract('GET', '/api/v1/operations', answer, 200);
      expect(answer.json.length).toBeGreaterThanOrEqual(2);
    });

    it('answers the event history, after an id', async () => {
      const all = await call('GET', '/api/v1/events');
      expectContract('GET', '/api/v1/events', all, 200);
      expect(all.json.length).toBeGreaterThanOrEqual(2);
      const after = await call('GET', '/api/v1/events?after=1');
      expectContract('GET', '/api/v1/events', after, 200);
      // The fixture logs two events at construction, so there is at least one after id 1.
      expect(after.json.length).toBeGreaterThan(0);
      expect(after.json.every((e: { id: number }) => e.id > 1)).toBe(true);
      expect(after.json.length).toBe(all.json.length - 1);
    });

    it.each(['-1', 'abc', '1.5'])('answers 400 naming after for after=%s', async (after) => {
      const answer = await call('GET', `/api/v1/events?after=${after}`);
      expectContract('GET', '/api/v1/events', answer, 400);
      expect(answer.json.error).toMatch(/^after: /);
    });
  });

  describe('GET /api/v1/stream', () => {
    async function open(path: string, headers: Record<string, string> = {}) {
      const controller = new AbortController();
      const response = await fetch(`${base}${path}`, { headers, signal: controller.signal });
      return { response, reader: new SseReader(response.body!.getReader()), controller };
    }

    it('takes the token as access_token, sends retry, a status at once, live events and heartbeats', async () => {
      const { response, reader } = await open(`/api/v1/stream?access_token=${TOKEN}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(response.headers.get('cache-control')).toContain('no-cache');
      await reader.until((f) => f.retry === '2000', 2_000);
      const status = await reader.until((f) => f.event === 'status' && JSON.parse(f.data!), 2_000);
      expect(status.cluster.name).toBe('fake');
      expect(ajv.validate({ $ref: 'openapi.json#/components/schemas/ClusterStatus' }, status), ajv.errorsText()).toBe(true);

      const sample = nodeSample('edge-1', new Date(), 77.7);
      fake.emit({ type: 'node-metrics', data: sample });
      const metrics = await reader.until((f) => f.event === 'node-metrics' && JSON.parse(f.data!), 2_000);
      expect(metrics).toEqual(sample);
      expect(ajv.validate({ $ref: 'openapi.json#/components/schemas/NodeMetrics' }, metrics)).toBe(true);

      const event = fake.addEvent({ kind: 'node-offline', node: 'edge-2', message: 'edge-2 offline' });
      const frame = await reader.until((f) => f.event === 'event' && f, 2_000);
      expect(frame.id).toBe(String(event.id));
      expect(JSON.parse(frame.data!)).toEqual(event);
      // A status follows shortly after every event, so badges change without waiting for the next tick.
      const after = reader.frames.length;
      await reader.until((f) => reader.frames.indexOf(f) >= after && f.event === 'status', 1_000);
      await reader.until((f) => f.comment?.startsWith('keep-alive'), 2_000);
      await reader.cancel();
    });

    it('also takes the Authorization header, and answers 401 to a wrong access_token', async () => {
      const withHeader = await open('/api/v1/stream', { authorization: `Bearer ${TOKEN}` });
      expect(withHeader.response.status).toBe(200);
      withHeader.controller.abort();
      const wrong = await fetch(`${base}/api/v1/stream?access_token=nope`);
      expect(wrong.status).toBe(401);
      expect((await wrong.json()).error).toBe('wrong bearer token');
    });

    it('drops an invalid live event from the control plane instead of sending it', async () => {
      const { reader } = await open(`/api/v1/stream?access_token=${TOKEN}`);
      await reader.until((f) => f.event === 'status', 2_000);
      fake.emit({ type: 'node-metrics', data: { node_id: 'edge-1', cpu_percent: 'lots' } as never });
      const good = nodeSample('edge-1', new Date(), 5);
      fake.emit({ type: 'node-metrics', data: good });
      const first = await reader.until((f) => f.event === 'node-metrics' && JSON.parse(f.data!), 2_000);
      expect(first).toEqual(good);
      await reader.cancel();
    });

    it('replays the events a reconnecting client missed (Last-Event-ID)', async () => {
      const last = fake.eventLog.at(-1)!.id;
      fake.addEvent({ kind: 'drift-found', service: 'web', message: 'web: 1 of 2 running' });
      fake.addEvent({ kind: 'drift-cleared', service: 'web', message: 'web: 2 of 2 running' });
      const { reader } = await open(`/api/v1/stream?access_token=${TOKEN}`, { 'last-event-id': String(last) });
      const replayed = await reader.until((f) => (reader.frames.filter((x) => x.event === 'event').length >= 2 ? reader.frames.filter((x) => x.event === 'event') : undefined), 2_000);
      expect(replayed.map((f) => JSON.parse(f.data!).kind)).toEqual(['drift-found', 'drift-cleared']);
      await reader.cancel();
    });

    it('lets go of the control plane when the last client leaves', async () => {
      const { reader } = await open(`/api/v1/stream?access_token=${TOKEN}`);
      await reader.until((f) => f.event === 'status', 2_000);
      expect(fake.listeners.size).toBe(1);
      await reader.cancel();
      await expect.poll(() => fake.listeners.size, { timeout: 2_000 }).toBe(0);
    });

    it('does not keep the server from closing', async () => {
      const other = await serve(new FakeControlPlane());
      const response = await fetch(`${other.base}/api/v1/stream?access_token=${TOKEN}`);
      const reader = new SseReader(response.body!.getReader());
      await reader.until((f) => f.event === 'status', 2_000);
      const started = Date.now();
      await other.app.close();
      expect(Date.now() - started).toBeLessThan(2_000);
      await expect(reader.until(() => false, 2_000)).rejects.toThrow(/ended/);
    });
  });

  describe('GET /metrics', () => {
    it('needs the token unless metrics_public', async () => {
      const answer = await call('GET', '/metrics', { token: null });
      expectContract('GET', '/metrics', answer, 401);
      expect((await call('GET', '/metrics')).status).toBe(200);
    });

    it('speaks the Prometheus text format, with node and container gauges and control-plane counters', async () => {
      const answer = await call('GET', '/metrics');
      expect(answer.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const lines = answer.text.trimEnd().split('\n');
      expect(lines.length).toBeGreaterThan(20);
      // Every line is a comment or `name{labels} value`.
      for (const line of lines) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? (-?[\d.e+-]+|NaN|[+-]Inf))$/);
      const value = (series: string) => lines.find((l) => l.startsWith(`${series} `))?.split(' ').at(-1);
      const cpu = fake.history.get('edge-1')!.at(-1)!.cpu_percent;
      expect(value('otto_node_cpu_percent{node="edge-1"}')).toBe(String(cpu));
      expect(value('otto_node_up{node="edge-1"}')).toBe('1');
      expect(value('otto_node_up{node="edge-2"}')).toBe('0');
      expect(value('otto_node_memory_total_bytes{node="edge-1"}')).toBe(String(8000 * 1024 * 1024));
      expect(value('otto_container_cpu_percent{node="edge-1",service="web",container="fake-web-1",replica="1"}')).toBe('1.5');
      expect(value('otto_container_memory_usage_bytes{node="edge-1",service="web",container="fake-web-1",replica="1"}')).toBe(String(12.5 * 1024 * 1024));
      expect(lines).toContain('otto_container_cpu_percent{node="edge-1",service="",container="odd \\"name\\"\\\\"} 0');
      expect(value('otto_mqtt_messages_received_total')).toBe('42');
      expect(value('otto_mqtt_invalid_messages_total')).toBe('3');
      expect(value('otto_reconcile_duration_seconds_sum')).toBe('1.25');
      expect(value('otto_reconcile_duration_seconds_count')).toBe('10');
      expect(value('otto_operations_total{result="succeeded"}')).toBe('2');
      expect(value('otto_service_replicas_desired{service="web"}')).toBeDefined();
      expect(lines).toContain('# TYPE otto_node_cpu_percent gauge');
      expect(lines).toContain('# TYPE otto_mqtt_messages_received_total counter');
    });

    it('is open when metrics_public is set', async () => {
      const open = await serve(new FakeControlPlane(), { metricsPublic: true });
      try {
        const answer = await fetch(`${open.base}/metrics`);
        expect(answer.status).toBe(200);
        expect(await answer.text()).toContain('otto_node_cpu_percent{node="edge-1"}');
        const doc = await (await fetch(`${open.base}/openapi.json`)).json();
        expect(doc.paths['/metrics'].get.security).toEqual([]);
        // The rest of /api still needs the token.
        expect((await fetch(`${open.base}/api/v1/status`)).status).toBe(401);
      } finally {
        await open.app.close();
      }
    });
  });

  describe('GET / (the dashboard)', () => {
    it('answers 503 with a hint when the dashboard is not built', async () => {
      const answer = await call('GET', '/', { token: null });
      expect(answer.status).toBe(503);
      expect(answer.text).toContain('npm run build');
    });

    it('serves the built files: the page not cached, hashed assets forever', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'otto-ui-'));
      mkdirSync(join(dir, 'assets'));
      writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Otto</title><script type="module" src="/assets/index-abc123.js"></script>');
      writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log("otto")');
      const ui = await serve(new FakeControlPlane(), { uiDir: dir });
      try {
        const page = await fetch(`${ui.base}/`);
        expect(page.status).toBe(200);
        expect(page.headers.get('content-type')).toMatch(/^text\/html/);
        expect(page.headers.get('cache-control')).toBe('no-cache');
        expect(await page.text()).toContain('<title>Otto</title>');
        const asset = await fetch(`${ui.base}/assets/index-abc123.js`);
        expect(asset.status).toBe(200);
        expect(asset.headers.get('content-type')).toMatch(/javascript/);
        expect(asset.headers.get('cache-control')).toContain('immutable');
        expect((await fetch(`${ui.base}/assets/missing.js`)).status).toBe(404);
        expect((await fetch(`${ui.base}/assets/..%2f..%2fpackage.json`)).status).toBe(404);
        // The API routes still win over the static files.
        expect((await fetch(`${ui.base}/healthz`)).status).toBe(200);
        expect((await fetch(`${ui.base}/api/v1/status`)).status).toBe(401);
      } finally {
        await ui.app.close();
      }
    });
  });

  describe('robustness', () => {
    it('answers 500 with JSON when the control plane throws, and keeps serving', async () => {
      fake.failStatus = true;
      try {
        const answer = await call('GET', '/api/v1/status');
        expect(answer.status).toBe(500);
        expect(answer.json.error).toContain('registry exploded');
      } finally {
        fake.failStatus = false;
      }
      expect((await call('GET', '/api/v1/status')).status).toBe(200);
    });

    it('answers 500 naming the field when the control plane answers something off-schema', async () => {
      const original = fake.operations;
      fake.operations = () => [{ id: 1 } as never];
      try {
        const answer = await call('GET', '/api/v1/operations');
        expect(answer.status).toBe(500);
        expect(answer.json.error).toMatch(/does not match its schema \(0\.id: expected string/);
      } finally {
        fake.operations = original;
      }
    });

    it('never answers 500 to bad input, and stays up', async () => {
      // One good request first, so the ledger checked at the end is not empty whichever tests ran before.
      expectContract('POST', '/api/v1/services/{name}/scale', await call('POST', '/api/v1/services/worker/scale', { body: { replicas: 1 } }), 202);
      const before = fake.ops.length;
      const deep = `${'['.repeat(5_000)}${']'.repeat(5_000)}`;
      const attempts: Array<[string, string, Parameters<typeof call>[2]?]> = [
        ['POST', '/api/v1/services/web/scale', { rawBody: deep, headers: { 'content-type': 'application/json' } }],
        ['POST', '/api/v1/services/web/scale', { rawBody: 'x'.repeat(200_000), headers: { 'content-type': 'application/json' } }],
        ['POST', '/api/v1/services/web/scale', { rawBody: '{"__proto__": {"replicas": 1}}', headers: { 'content-type': 'application/json' } }],
        ['POST', '/api/v1/services/web/scale', { rawBody: '{"constructor": {"prototype": {"x": 1}}}', headers: { 'content-type': 'application/json' } }],
        ['POST', '/api/v1/services/web/scale', { rawBody: '\u0000\u0001', headers: { 'content-type': 'application/octet-stream' } }],
        ['POST', '/api/v1/services/web/scale', { body: { replicas: 1e309 } }],
        ['POST', '/api/v1/services/web/scale', { rawBody: '{"replicas": 1e999}' }],
        ['POST', '/api/v1/services/%E0%A4%A/scale', { body: { replicas: 1 } }],
        ['POST', `/api/v1/services/${'a'.repeat(5_000)}/scale`, { body: { replicas: 1 } }],
        ['GET', '/api/v1/nodes/%00/metrics'],
        ['GET', '/api/v1/nodes/edge-1/metrics?since=99999999999999999999'],
        ['GET', '/api/v1/events?after=999999999999999999999'],
        ['GET', '/api/v1/services/..%2f..%2fetc%2fpasswd'],
        ['GET', '/../../etc/passwd'],
        ['DELETE', '/api/v1/services/web'],
        ['PUT', '/api/v1/services/web/scale', { body: { replicas: 1 } }],
        ['GET', '/api/v1/services/web/scale'],
        ['POST', '/api/v1/status', { body: {} }],
        ['GET', '/api/v1/stream?access_token=a&access_token=b', { token: null }],
        ['GET', `/api/v1/stream?access_token=${TOKEN}&access_token=${TOKEN}`, { token: null }],
        ['GET', '/api/v1/status', { token: null, headers: { authorization: 'Bearer' } }],
        ['GET', '/api/v1/status', { token: null, headers: { authorization: `Bearer ${'x'.repeat(10_000)}` } }],
      ];
      for (const [method, path, options] of attempts) {
        const answer = await call(method, path, options);
        expect(answer.status, `${method} ${path} -> ${answer.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
        expect(answer.status, `${method} ${path} -> ${answer.text.slice(0, 200)}`).toBeLessThan(500);
        expect(answer.json?.error, `${method} ${path}`).toEqual(expect.any(String));
      }
      expect((await call('GET', '/healthz')).status).toBe(200);
      // Every attempt was refused: none queued anything, whatever its service name.
      expect(fake.ops.length).toBe(before);
      expect(fake.ops.length).toBeGreaterThan(0);
      expect(fake.ops.every((op) => op.service === 'web' || op.service === 'worker')).toBe(true);
    });

    it('HEAD works on JSON routes', async () => {
      const answer = await fetch(`${base}/api/v1/status`, { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(answer.status).toBe(200);
    });
  });

  it('checked at least one answer of every documented JSON route against the document', () => {
    const jsonRoutes = Object.entries<any>(document.paths).flatMap(([path, item]) =>
      Object.entries<any>(item)
        .filter(([, op]) => op.responses[Object.keys(op.responses)[0]!].content?.['application/json']?.schema?.$ref)
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    expect(jsonRoutes).toEqual(expect.arrayContaining(['GET /api/v1/status', 'POST /api/v1/services/{name}/scale', 'GET /healthz']));
    for (const route of jsonRoutes) {
      expect([...checked].some((c) => c.startsWith(`${route} 2`)), `${route} has a checked 2xx answer`).toBe(true);
    }
  });
});
