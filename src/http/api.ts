/**
 * The control plane's HTTP API (fastify): the JSON routes of routes.ts, validated in and out with their
 * zod schemas; the live event stream; Prometheus metrics; the OpenAPI document; the dashboard's static
 * files. It talks to the control plane only through `ApiHandlers`. A bad request is a 400 that names the
 * field; nothing a client sends can crash it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ConfigError, InfrastructureError, NotFoundError, UsageError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { ApiHandlers } from './handlers.js';
import { openApiDocument } from './openapi.js';
import { prometheusText } from './prometheus.js';
import { fastifyPath, jsonRoutes, rawRoutes, type JsonRouteName, type RouteAuth, type RouteSpec } from './routes.js';
import { sinceToMs, type ApiError } from './schemas.js';
import { LiveStream } from './sse.js';
import { StatusAnswer } from './status-answer.js';
import { StatusJson, type Bytes } from './status-json.js';
import { tokenMatches } from '../workspace.js';

export type { ApiHandlers, ControlPlaneCounters } from './handlers.js';

export interface StartApiOptions {
  host: string;
  port: number;
  /** The bearer token every /api route needs (.otto/token). */
  token: string;
  handlers: ApiHandlers;
  /** Serve /metrics without the token (otto.yaml http.metrics_public). */
  metricsPublic?: boolean;
  /** Where warnings go (a handler that throws, an invalid live event); silent without one. */
  log?: Pick<Logger, 'warn' | 'error'>;
  /** The built dashboard; default: dist/ui of this package. */
  uiDir?: string;
  /** SSE timing; the defaults suit production, tests shorten them. */
  stream?: { heartbeatMs?: number; statusMs?: number; retryMs?: number };
  /** Serve HTTPS with this certificate (http.tls). */
  https?: { cert: string; key: string };
}

/** The dashboard's files, wherever this module runs from (src/http under vitest, dist/http when built). */
export const defaultUiDir = fileURLToPath(new URL('../../dist/ui/', import.meta.url));

/** An error that carries its HTTP status and answer. */
class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: ApiError,
  ) {
    super(body.error);
  }
}


/** `Application/JSON; charset=utf-8` -> `application/json`; '' when absent. */
function mediaTypeOf(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** `replicas: expected number, received string`: the field first, then zod's message without its preamble. */
export function describeIssues(error: z.ZodError, where: 'body' | 'path' | 'query'): ApiError {
  const issues = error.issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const path = issue.path.map(String);
    const field = keys.length ? keys.map((key) => [...path, key].join('.')).join(', ') : path.length ? path.join('.') : where;
    const message = issue.code === 'unrecognized_keys' ? `unknown field${keys.length > 1 ? 's' : ''}` : issue.message.replace(/^Invalid input: /, '');
    return { field, message };
  });
  const first = issues[0] ?? { field: where, message: 'invalid' };
  return { error: `${first.field}: ${first.message}`, issues };
}

function parseInput<T>(schema: z.ZodType<T> | undefined, value: unknown, where: 'body' | 'path' | 'query'): T {
  if (!schema) return undefined as T;
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new HttpError(400, describeIssues(parsed.error, where));
  return parsed.data;
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;
type RouteInput<R extends RouteSpec> = {
  params: Out<R['params']>;
  query: Out<R['query']>;
  body: Out<R['body']>;
};
type RouteImpl<R extends RouteSpec> = (input: RouteInput<R>) => z.input<NonNullable<R['success']['schema']>> | Promise<z.input<NonNullable<R['success']['schema']>>>;
type Implementations = { [K in JsonRouteName]: RouteImpl<(typeof jsonRoutes)[K]> };

function implementations(handlers: ApiHandlers): Implementations {
  const service = (name: string) => {
    const found = handlers.status().services.find((s) => s.name === name);
    if (!found) throw new NotFoundError(`no service "${name}"`, 'GET /api/v1/services lists them');
    return found;
  };
  return {
    health: () => ({ ok: true }),
    status: () => handlers.status(),
    nodes: () => handlers.status().nodes,
    nodeMetrics: ({ params, query }) => {
      const samples = handlers.nodeMetrics(params.id, query.since === undefined ? undefined : sinceToMs(query.since));
      if (!samples) throw new NotFoundError(`no node "${params.id}"`, 'GET /api/v1/nodes lists them');
      return samples;
    },
    rotateCredentials: ({ params }) => handlers.rotateCredentials(params.id),
    removeNode: ({ params }) => handlers.removeNode(params.id),
    services: () => handlers.status().services,
    service: ({ params }) => service(params.name),
    scale: ({ params, body }) => {
      service(params.name);
      return handlers.scale(params.name, body.replicas);
    },
    restart: ({ params, body }) => {
      service(params.name);
      return handlers.restart(params.name, body.rolling);
    },
    rollback: ({ params }) => {
      service(params.name);
      return handlers.rollback(params.name);
    },
    move: ({ params, body }) => {
      service(params.name);
      return handlers.move(params.name, body.replica, body.to);
    },
    plan: () => handlers.migrationPlan(),
    rebalance: ({ body }) => {
      const { operation, moves } = handlers.rebalance(body.dry_run);
      return { operation, moves: moves.map((m) => ({ action: 'move' as const, service: m.service, replica: m.replica, from: m.from, to: m.to, reason: m.reason })) };
    },
    operations: () => handlers.operations(),
    events: ({ query }) => handlers.events(query.after === undefined ? undefined : Number(query.after)),
  };
}

/** The HTTP status and answer of an error thrown while serving a request. */
function errorAnswer(err: unknown): { status: number; body: ApiError; unexpected: boolean } {
  if (err instanceof HttpError) return { status: err.statusCode, body: err.body, unexpected: false };
  if (err instanceof NotFoundError) return { status: 404, body: { error: err.message, hint: err.hint }, unexpected: false };
  if (err instanceof UsageError || err instanceof ConfigError) return { status: 400, body: { error: err.message, hint: err.hint }, unexpected: false };
  if (err instanceof InfrastructureError) return { status: 503, body: { error: err.message, hint: err.hint }, unexpected: false };
  const status = (err as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // fastify's own: a body that is not JSON or too large, a malformed URL...
    return { status, body: { error: errorMessage(err) }, unexpected: false };
  }
  return { status: 500, body: { error: `internal error: ${errorMessage(err)}` }, unexpected: true };
}

export async function startApi(options: StartApiOptions): Promise<FastifyInstance> {
  const app = await buildApi(options);
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  return app;
}

/** The fastify instance with every route, not yet listening. */
export async function buildApi(options: StartApiOptions): Promise<FastifyInstance> {
  const { handlers, token } = options;
  const metricsPublic = options.metricsPublic ?? false;
  const warn = (message: string, details: Record<string, unknown> = {}) => options.log?.warn(details, message);
  const bodyLimit = 64 * 1024;
  const app = Fastify({ logger: false, bodyLimit, return503OnClosing: true, ...(options.https ? { https: options.https } : {}) }) as unknown as FastifyInstance;

  // A body is JSON sent as such: anything else is a 415, never guessed at (curl -d sends form-urlencoded).
  // An empty body is no body, whatever its Content-Type: `curl -X POST .../rollback` needs none.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    const mediaType = mediaTypeOf(request.headers['content-type']);
    if (mediaType !== 'application/json') {
      return done(new HttpError(415, { error: `body: expected Content-Type application/json, got ${mediaType || 'none'}`, hint: 'send Content-Type: application/json' }), undefined);
    }
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new HttpError(400, { error: `body: not JSON (${errorMessage(err)})` }), undefined);
    }
  });

  app.setErrorHandler((err, request, reply) => {
    const answer = errorAnswer(err);
    if (answer.unexpected) options.log?.error({ err: errorMessage(err), url: request.url }, 'API request failed');
    return reply.code(answer.status).send(answer.body);
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}`, hint: 'GET /openapi.json lists the routes' }));

  const authorize = (auth: RouteAuth, queryToken: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    if (auth === 'open' || (auth === 'metrics' && metricsPublic)) return;
    const header = request.headers.authorization;
    let given = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
    if (!given && queryToken) {
      const fromQuery = (request.query as Record<string, unknown> | undefined)?.access_token;
      if (typeof fromQuery === 'string') given = fromQuery;
    }
    if (given !== undefined && tokenMatches(given, token)) return;
    return reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="otto"')
      .send({ error: given === undefined ? 'missing bearer token' : 'wrong bearer token', hint: 'the token is in .otto/token' } satisfies ApiError);
  };

  const impls = implementations(handlers) as Record<JsonRouteName, (input: RouteInput<RouteSpec>) => unknown>;
  // The status and its lists: validated and serialized once per rebuild, not per request (status-json.ts).
  const statusJson = new StatusJson();
  const statusAnswer = new StatusAnswer(() => statusJson.statusBytes(handlers.status()));
  const serialized: Partial<Record<JsonRouteName, () => Bytes>> = {
    status: () => statusAnswer.get(),
    nodes: () => statusJson.nodeBytes(handlers.status().nodes),
    services: () => statusJson.serviceBytes(handlers.status().services),
  };
  for (const [name, spec] of Object.entries(jsonRoutes) as Array<[JsonRouteName, RouteSpec]>) {
    app.route({
      method: spec.method,
      url: fastifyPath(spec.path),
      onRequest: authorize(spec.auth, false),
      handler: async (request, reply) => {
        const input = {
          params: parseInput(spec.params, request.params, 'path'),
          query: parseInput(spec.query, request.query, 'query'),
          // No body at all is an empty object, so the answer names the missing field.
          body: parseInput(spec.body, request.body === undefined && spec.body ? {} : request.body, 'body'),
        };
        const asJson = serialized[name];
        if (asJson) {
          const answer = asJson();
          // A fleet's next status is made once this answer is out (status-answer.ts).
          if (name === 'status') reply.raw.once('close', () => statusAnswer.sent());
          if (answer.ok) return reply.code(spec.success.status).type('application/json; charset=utf-8').send(answer.bytes);
          return schemaMismatch(reply, spec, answer.error);
        }
        const result = await impls[name](input);
        const checked = spec.success.schema!.safeParse(result);
        if (!checked.success) return schemaMismatch(reply, spec, checked.error);
        return reply.code(spec.success.status).send(checked.data);
      },
    });
  }

  function schemaMismatch(reply: FastifyReply, spec: RouteSpec, issues: z.ZodError) {
    const { error } = describeIssues(issues, 'body');
    options.log?.error({ route: spec.path, issue: error }, 'control plane answer does not match the API schema');
    return reply.code(500).send({ error: `internal error: the answer does not match its schema (${error})` } satisfies ApiError);
  }

  const live = new LiveStream(handlers, {
    statusJson,
    heartbeatMs: options.stream?.heartbeatMs ?? 15_000,
    statusMs: options.stream?.statusMs ?? 2_000,
    retryMs: options.stream?.retryMs ?? 2_000,
    warn,
  });
  app.addHook('preClose', async () => live.close());

  app.route({
    method: 'GET',
    url: rawRoutes.stream.path,
    exposeHeadRoute: false,
    onRequest: authorize(rawRoutes.stream.auth, true),
    handler: async (request, reply) => {
      const query = parseInput(rawRoutes.stream.query, request.query, 'query');
      const header = request.headers['last-event-id'];
      const lastEventId = typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
      const nodes = query.nodes === undefined ? undefined : new Set(query.nodes.split(',').filter(Boolean));
      reply.hijack();
      live.attach(request.raw, reply.raw, lastEventId, nodes);
    },
  });

  app.route({
    method: 'GET',
    url: rawRoutes.metrics.path,
    onRequest: authorize(rawRoutes.metrics.auth, false),
    handler: async (_request, reply) =>
      reply.type('text/plain; version=0.0.4; charset=utf-8').send(prometheusText(handlers.status(), handlers.counters())),
  });

  const document = openApiDocument({ metricsPublic });
  app.get(rawRoutes.openapi.path, async () => document);

  const uiDir = options.uiDir ?? defaultUiDir;
  const uiBuilt = existsSync(`${uiDir.replace(/\/$/, '')}/index.html`);
  if (uiBuilt) {
    await app.register(fastifyStatic, {
      root: uiDir,
      prefix: '/',
      index: false,
      wildcard: true,
      setHeaders: (reply, path) => {
        // Vite puts a content hash in every asset name: those never change.
        reply.header('cache-control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  }
  app.get(rawRoutes.dashboard.path, async (_request, reply) => {
    if (!uiBuilt) {
      return reply
        .code(503)
        .type('text/html; charset=utf-8')
        .send('<!doctype html><title>Otto</title><p>The dashboard is not built: run <code>npm run build</code>. The API is at <a href="/openapi.json">/openapi.json</a>.</p>');
    }
    return reply.header('cache-control', 'no-cache').sendFile('index.html');
  });

  return app;
}
