/**
 * The API's route table: one entry per route, naming the zod schemas of its parameters, body and answer.
 * The server validates with these same schemas (api.ts), and GET /openapi.json is generated from them
 * (openapi.ts), so the document cannot drift from what the server does.
 */
import type { z } from 'zod';
import {
  clusterEventListSchema,
  clusterStatusSchema,
  eventsQuerySchema,
  healthSchema,
  migrationPlanSchema,
  moveRequestSchema,
  nodeListSchema,
  nodeMetricsListSchema,
  nodeMetricsQuerySchema,
  nodeParamsSchema,
  operationListSchema,
  operationSchema,
  rebalanceRequestSchema,
  rebalanceResultSchema,
  restartRequestSchema,
  removalSchema,
  rotationSchema,
  scaleRequestSchema,
  serviceListSchema,
  serviceParamsSchema,
  serviceViewSchema,
  streamQuerySchema,
} from './schemas.js';

/** token: bearer token required; metrics: token unless http.metrics_public; open: no token. */
export type RouteAuth = 'token' | 'metrics' | 'open';

export interface RouteSpec {
  method: 'GET' | 'POST';
  /** OpenAPI path template: `{name}` for a path parameter. */
  path: string;
  summary: string;
  description?: string;
  tag: 'cluster' | 'nodes' | 'services' | 'operations' | 'events' | 'meta';
  auth: RouteAuth;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The answer when all goes well; `schema` absent for a body that is not JSON. */
  success: { status: 200 | 202; description: string; schema?: z.ZodType; contentType?: string };
  /** The route answers 404 for an unknown node or service. */
  notFound?: boolean;
}

/** JSON routes: api.ts implements each with a function of the validated input. */
export const jsonRoutes = {
  health: {
    method: 'GET',
    path: '/healthz',
    summary: 'Liveness probe',
    tag: 'meta',
    auth: 'open',
    success: { status: 200, description: 'the control plane serves requests', schema: healthSchema },
  },
  status: {
    method: 'GET',
    path: '/api/v1/status',
    summary: 'The whole cluster: nodes, services, drift, the operation under way and the queue',
    tag: 'cluster',
    auth: 'token',
    success: { status: 200, description: 'cluster status', schema: clusterStatusSchema },
  },
  nodes: {
    method: 'GET',
    path: '/api/v1/nodes',
    summary: 'Every node with its latest metrics and containers',
    tag: 'nodes',
    auth: 'token',
    success: { status: 200, description: 'nodes in otto.yaml order', schema: nodeListSchema },
  },
  nodeMetrics: {
    method: 'GET',
    path: '/api/v1/nodes/{id}/metrics',
    summary: "A node's recent metrics samples, oldest first",
    tag: 'nodes',
    auth: 'token',
    params: nodeParamsSchema,
    query: nodeMetricsQuerySchema,
    notFound: true,
    success: { status: 200, description: 'samples kept by the control plane', schema: nodeMetricsListSchema },
  },
  rotateCredentials: {
    method: 'POST',
    path: '/api/v1/nodes/{id}/rotate-credentials',
    summary: "Give a node a new broker credential; its agent reconnects with it, no other node is touched",
    tag: 'nodes',
    auth: 'token',
    params: nodeParamsSchema,
    notFound: true,
    success: { status: 200, description: 'the node and when its credential was rotated', schema: rotationSchema },
  },
  removeNode: {
    method: 'POST',
    path: '/api/v1/nodes/{id}/remove',
    summary: 'Forget a node that joined through a pool: its credential is revoked and it is refused from then on',
    description: 'A node declared in otto.yaml is removed there (400 says so).',
    tag: 'nodes',
    auth: 'token',
    params: nodeParamsSchema,
    notFound: true,
    success: { status: 200, description: 'the node and when it was removed', schema: removalSchema },
  },
  services: {
    method: 'GET',
    path: '/api/v1/services',
    summary: 'Every service: desired and running replicas, nodes, health, ports',
    tag: 'services',
    auth: 'token',
    success: { status: 200, description: 'services in otto.yaml order', schema: serviceListSchema },
  },
  service: {
    method: 'GET',
    path: '/api/v1/services/{name}',
    summary: 'One service',
    tag: 'services',
    auth: 'token',
    params: serviceParamsSchema,
    notFound: true,
    success: { status: 200, description: 'the service', schema: serviceViewSchema },
  },
  scale: {
    method: 'POST',
    path: '/api/v1/services/{name}/scale',
    summary: 'Queue a scale of a service to N replicas',
    description: 'Answers at once with the queued operation; operations run one at a time in FIFO order (GET /api/v1/operations).',
    tag: 'services',
    auth: 'token',
    params: serviceParamsSchema,
    body: scaleRequestSchema,
    notFound: true,
    success: { status: 202, description: 'the operation, queued', schema: operationSchema },
  },
  restart: {
    method: 'POST',
    path: '/api/v1/services/{name}/restart',
    summary: "Queue a restart of a service's replicas, one at a time when rolling",
    tag: 'services',
    auth: 'token',
    params: serviceParamsSchema,
    body: restartRequestSchema,
    notFound: true,
    success: { status: 202, description: 'the operation, queued', schema: operationSchema },
  },
  rollback: {
    method: 'POST',
    path: '/api/v1/services/{name}/rollback',
    summary: "Queue a rollback of a service to its previous spec, rolled like an update",
    description: 'The spec in otto.yaml is then held (not rolled out again) until otto.yaml changes it.',
    tag: 'services',
    auth: 'token',
    params: serviceParamsSchema,
    notFound: true,
    success: { status: 202, description: 'the operation, queued', schema: operationSchema },
  },
  move: {
    method: 'POST',
    path: '/api/v1/services/{name}/move',
    summary: 'Queue a move of one replica to another node, start-first: its copy stops only once the new one is ready',
    description: 'Refused (400) when the node cannot take it: not online, not matching the placement constraints, a host port taken, or a rule it would break.',
    tag: 'services',
    auth: 'token',
    params: serviceParamsSchema,
    body: moveRequestSchema,
    notFound: true,
    success: { status: 202, description: 'the migrate operation, queued', schema: operationSchema },
  },
  plan: {
    method: 'GET',
    path: '/api/v1/plan',
    summary: 'What the control plane would do now about NFR violations and balance, and why, without doing it',
    tag: 'cluster',
    auth: 'token',
    success: { status: 200, description: 'violations, the NFR decisions and the rebalance moves', schema: migrationPlanSchema },
  },
  rebalance: {
    method: 'POST',
    path: '/api/v1/rebalance',
    summary: "Spread each service's replicas evenly over the nodes that may run them (a migrate operation)",
    description: 'With dry_run, or when nothing needs to move, only says what would move (operation null).',
    tag: 'cluster',
    auth: 'token',
    body: rebalanceRequestSchema,
    success: { status: 200, description: 'the operation queued (or null) and its moves', schema: rebalanceResultSchema },
  },
  operations: {
    method: 'GET',
    path: '/api/v1/operations',
    summary: 'The operations ledger: finished, running and queued operations, oldest first',
    tag: 'operations',
    auth: 'token',
    success: { status: 200, description: 'operations', schema: operationListSchema },
  },
  events: {
    method: 'GET',
    path: '/api/v1/events',
    summary: 'Event history, oldest first',
    tag: 'events',
    auth: 'token',
    query: eventsQuerySchema,
    success: { status: 200, description: 'events kept by the control plane', schema: clusterEventListSchema },
  },
} as const satisfies Record<string, RouteSpec>;

export type JsonRouteName = keyof typeof jsonRoutes;

/** Routes whose answer is not one JSON document; api.ts implements them one by one. */
export const rawRoutes = {
  stream: {
    method: 'GET',
    path: '/api/v1/stream',
    summary: 'Live updates as server-sent events',
    description: [
      'A text/event-stream. Events (the SSE event name, then the schema of its JSON data):',
      '`status` (ClusterStatus: node online/offline, service state, drift, operation under way, scale queue; sent on connect, after every event or operation change, and every few seconds),',
      '`node-metrics` (NodeMetrics, as each node reports),',
      '`event` (ClusterEvent, with the SSE id set to the event id: a reconnect with Last-Event-ID gets the events it missed),',
      '`operation` (Operation, on every change of state or progress).',
      'Comment lines keep the connection alive; `retry: 2000` makes a browser reconnect after 2 s.',
      'EventSource cannot send headers, so this route also takes the token as `?access_token=`.',
    ].join(' '),
    tag: 'events',
    auth: 'token',
    query: streamQuerySchema,
    success: { status: 200, description: 'the event stream, until the client leaves', contentType: 'text/event-stream' },
  },
  metrics: {
    method: 'GET',
    path: '/metrics',
    summary: 'Prometheus metrics: node and container gauges, control-plane counters',
    description: 'Open without the token when otto.yaml sets http.metrics_public: true.',
    tag: 'meta',
    auth: 'metrics',
    success: { status: 200, description: 'Prometheus text exposition format 0.0.4', contentType: 'text/plain; version=0.0.4' },
  },
  openapi: {
    method: 'GET',
    path: '/openapi.json',
    summary: 'This document',
    tag: 'meta',
    auth: 'open',
    success: { status: 200, description: 'OpenAPI 3.1 document', contentType: 'application/json' },
  },
  dashboard: {
    method: 'GET',
    path: '/',
    summary: 'The dashboard (static files built by Vite; it asks for the token once)',
    tag: 'meta',
    auth: 'open',
    success: { status: 200, description: 'the dashboard page', contentType: 'text/html' },
  },
} as const satisfies Record<string, RouteSpec>;

/** Every route, with its name in the tables above (the OpenAPI operationId). */
export const allRoutes: Array<RouteSpec & { name: string }> = Object.entries({ ...jsonRoutes, ...rawRoutes }).map(([name, route]) => ({ name, ...route }));

/** `/api/v1/nodes/{id}/metrics` -> `/api/v1/nodes/:id/metrics` */
export function fastifyPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

