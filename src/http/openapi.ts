/**
 * GET /openapi.json: an OpenAPI 3.1 document generated from the route table (routes.ts) and the zod
 * schemas the server validates with. OpenAPI 3.1's schema dialect is JSON Schema 2020-12, which is what
 * zod 4's own `z.toJSONSchema` emits, so no converter library sits in between: named schemas go to
 * `components.schemas` through a zod registry, and every route points at them with `$ref`.
 */
import { z } from 'zod';
import { containerMetricsSchema, nodeMetricsSchema } from '../protocol/messages.js';
import { OTTO_VERSION } from '../version.js';
import { allRoutes, type RouteSpec } from './routes.js';
import {
  clusterEventListSchema,
  clusterEventSchema,
  clusterStatusSchema,
  errorSchema,
  healthSchema,
  migrationPlanSchema,
  moveRequestSchema,
  moveSchema,
  nodeListSchema,
  nodeMetricsListSchema,
  nodeViewSchema,
  operationListSchema,
  operationSchema,
  rebalanceRequestSchema,
  rebalanceResultSchema,
  replicaViewSchema,
  restartRequestSchema,
  removalSchema,
  rotationSchema,
  scaleRequestSchema,
  serviceListSchema,
  serviceViewSchema,
  violationViewSchema,
} from './schemas.js';

type JsonSchema = Record<string, unknown>;

/** Schemas of answers (zod's output side) and of request bodies (its input side: defaults are optional). */
const responseComponents: Array<[z.ZodType, string]> = [
  [clusterStatusSchema, 'ClusterStatus'],
  [nodeViewSchema, 'NodeView'],
  [nodeMetricsSchema, 'NodeMetrics'],
  [containerMetricsSchema, 'ContainerMetrics'],
  [serviceViewSchema, 'ServiceView'],
  [replicaViewSchema, 'ReplicaView'],
  [operationSchema, 'Operation'],
  [moveSchema, 'Move'],
  [violationViewSchema, 'Violation'],
  [migrationPlanSchema, 'MigrationPlan'],
  [rebalanceResultSchema, 'RebalanceResult'],
  [clusterEventSchema, 'ClusterEvent'],
  [errorSchema, 'Error'],
  [healthSchema, 'Health'],
  [rotationSchema, 'CredentialRotation'],
  [removalSchema, 'NodeRemoval'],
  [nodeListSchema, 'NodeList'],
  [nodeMetricsListSchema, 'NodeMetricsList'],
  [serviceListSchema, 'ServiceList'],
  [operationListSchema, 'OperationList'],
  [clusterEventListSchema, 'ClusterEventList'],
];
const requestComponents: Array<[z.ZodType, string]> = [
  [scaleRequestSchema, 'ScaleRequest'],
  [restartRequestSchema, 'RestartRequest'],
  [moveRequestSchema, 'MoveRequest'],
  [rebalanceRequestSchema, 'RebalanceRequest'],
];

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });

function componentSchemas(entries: Array<[z.ZodType, string]>, io: 'input' | 'output'): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of entries) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { target: 'draft-2020-12', io, uri: (id) => `#/components/schemas/${id}` });
  // Inside an OpenAPI document the dialect is implied and components are addressed by their path.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _dialect, $id: _id, ...schema }]) => [id, schema as JsonSchema]));
}

function componentId(schema: z.ZodType, entries: Array<[z.ZodType, string]>): string {
  const found = entries.find(([s]) => s === schema);
  if (!found) throw new Error(`schema used by a route has no component name in openapi.ts`);
  return found[1];
}

function parameters(route: RouteSpec): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const [where, schema] of [
    ['path', route.params],
    ['query', route.query],
  ] as const) {
    if (!schema) continue;
    const json = z.toJSONSchema(schema, { io: 'input' }) as { properties?: Record<string, JsonSchema>; required?: string[] };
    for (const [name, { description, ...property }] of Object.entries(json.properties ?? {})) {
      out.push({ name, in: where, required: where === 'path' || (json.required ?? []).includes(name), description, schema: property });
    }
  }
  return out;
}

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ref('Error') } } });

function operation(route: RouteSpec & { name: string }, metricsPublic: boolean): JsonSchema {
  const responses: Record<string, unknown> = {
    [route.success.status]: {
      description: route.success.description,
      content: { [route.success.contentType ?? 'application/json']: { schema: route.success.schema ? ref(componentId(route.success.schema, responseComponents)) : { type: 'string' } } },
    },
  };
  if (route.params || route.query || route.body) responses[400] = errorResponse('a bad parameter or body; `error` names the field');
  if (route.body) responses[415] = errorResponse('a body sent as another Content-Type than application/json');
  const needsToken = route.auth === 'token' || (route.auth === 'metrics' && !metricsPublic);
  if (needsToken) responses[401] = errorResponse('no bearer token, or the wrong one (it is in .otto/token)');
  if (route.notFound) responses[404] = errorResponse('no such node or service');
  responses.default = errorResponse('an unexpected error');
  const security = !needsToken ? [] : route.query?.shape.access_token ? [{ bearer: [] }, { accessToken: [] }] : [{ bearer: [] }];
  return {
    operationId: route.name,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.tag],
    security,
    ...(parameters(route).length ? { parameters: parameters(route) } : {}),
    ...(route.body
      ? { requestBody: { required: !route.body.safeParse({}).success, content: { 'application/json': { schema: ref(componentId(route.body, requestComponents)) } } } }
      : {}),
    responses,
  };
}

let components: Record<string, JsonSchema> | undefined;

export function openApiDocument(options: { metricsPublic?: boolean } = {}): Record<string, unknown> {
  components ??= { ...componentSchemas(responseComponents, 'output'), ...componentSchemas(requestComponents, 'input') };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of allRoutes) {
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation(route, options.metricsPublic ?? false);
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Otto control plane API',
      version: OTTO_VERSION,
      description: 'The API the otto CLI and the dashboard use. Every /api route needs the bearer token from .otto/token.',
    },
    servers: [{ url: '/' }],
    tags: ['cluster', 'nodes', 'services', 'operations', 'events', 'meta'].map((name) => ({ name })),
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'the token in .otto/token' },
        accessToken: { type: 'apiKey', in: 'query', name: 'access_token', description: 'the same token, for EventSource (GET /api/v1/stream only)' },
      },
    },
  };
}
