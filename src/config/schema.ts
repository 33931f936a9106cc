/**
 * The shape of otto.yaml. This zod schema is the one source of truth: it gives the TypeScript type, the
 * JSON Schema (`otto config schema`, schema/otto.schema.json) and the validation of every file.
 * Values such as durations and sizes stay strings here; `units.ts` turns them into numbers.
 */
import { z } from 'zod';
import { cpus, dnsLabel, duration, memory, volume } from './fields.js';
import { LOST_AFTER_BOUNDS, MAX_HEALTHCHECK_RETRIES, MAX_REPLICAS, TICK_BOUNDS } from './limits.js';
import { migrationSchema, nfrDefaultsSchema, serviceNfrSchema } from './migration-schema.js';
import { registriesSchema, secretsSchema, serviceSecretsSchema } from './secrets-schema.js';

const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** A key a former version accepted: present, it is an error that says what replaced it. */
const removedKey = (replacement: string) =>
  z
    .unknown()
    .optional()
    .refine((value) => value === undefined, `no longer used: ${replacement}`)
    .meta({ deprecated: true });

export const clusterSchema = z.strictObject({
  name: dnsLabel().default('default').describe('Cluster name; prefixes every container name. A DNS label: lowercase letters, digits and "-", at most 63 characters'),
});

export const mqttSchema = z.strictObject({
  host: z.string().min(1).default('localhost').describe('Broker address (the embedded broker listens here)'),
  port: z.number().int().min(1).max(65535).optional().describe('Default 8883 with TLS, 1883 without'),
  tls: z
    .union([
      z.enum(['auto', 'off']),
      z.strictObject({
        ca: z.string().min(1).describe('CA certificate (PEM file) clients verify the broker with'),
        cert: z.string().min(1).optional().describe("The embedded broker's certificate (PEM file)"),
        key: z.string().min(1).optional().describe("The embedded broker's private key (PEM file)"),
      }),
    ])
    .default('auto')
    .describe('auto: TLS (mqtts, a CA Otto makes in .otto/tls) whenever a node is not local or the broker listens beyond this machine; off: plain MQTT; or your own files'),
  embedded: z.boolean().default(true).describe('Run the broker inside the control plane; false uses an external broker'),
  advertise: z.string().min(1).optional().describe('Broker address handed to remote nodes; must be routable from them'),
  readers: z
    .array(z.strictObject({ username: z.string().min(1).max(64), password: z.string().min(8, 'expected a password of at least 8 characters') }))
    .default([])
    .describe('Clients that may read metrics and status only (Grafana, Node-RED, mosquitto_sub)'),
  // Replaced by a credential per node: a clear message instead of "unknown key".
  username: removedKey('every node has its own credential now (.otto/credentials.json); readers go in mqtt.readers, and `otto config mosquitto` sets up an external broker'),
  password: removedKey('every node has its own credential now (.otto/credentials.json); readers go in mqtt.readers, and `otto config mosquitto` sets up an external broker'),
});

export const httpSchema = z.strictObject({
  listen: z.string().min(1).default('127.0.0.1').describe('Address the control plane API binds to'),
  port: z.number().int().min(1).max(65535).default(7480),
  tls: z
    .union([z.enum(['auto', 'off']), z.strictObject({ cert: z.string().min(1), key: z.string().min(1) })])
    .default('auto')
    .describe('auto: HTTPS (with the CA in .otto/tls) whenever the API listens beyond this machine; off: plain HTTP; or your own files'),
  metrics_public: z.boolean().default(false).describe('Serve /metrics without the token'),
});

export const metricsSchema = z.strictObject({
  interval: duration(TICK_BOUNDS).default('5s').describe('How often agents publish metrics (100ms to 1h)'),
});

export const controlSchema = z.strictObject({
  interval: duration(TICK_BOUNDS).default('5s').describe('Control loop tick (100ms to 1h)'),
  lost_after: duration(LOST_AFTER_BOUNDS)
    .default('5m')
    .describe('How long a node may stay unreachable before it is lost and its replicas start on other nodes (nodes[].lost_after overrides it; 1s to 168h)'),
});

export const nodeSchema = z.strictObject({
  id: dnsLabel().describe('Unique node id; also its broker username. A DNS label: lowercase letters, digits and "-", at most 63 characters'),
  host: z.string().min(1).optional().describe('Address of the node: localhost/127.0.0.1 for the control plane machine; not needed with join: true'),
  user: z.string().min(1).nullable().optional().describe('SSH user; a node with a non-local host and a user is reached over SSH'),
  join: z.boolean().optional().describe('The node dials in by itself (from behind NAT, no SSH): `otto node join-command ID` prints the line to run on it'),
  docker_url: z.string().min(1).default('unix:///var/run/docker.sock'),
  labels: z.record(z.string(), scalar).default({}).describe('Node labels for placement constraints'),
  ssh: z
    .strictObject({
      port: z.number().int().min(1).max(65535).default(22),
      identity: z.string().min(1).optional().describe('Private key file'),
    })
    .optional(),
  lost_after: duration(LOST_AFTER_BOUNDS).optional().describe('This node is lost after being unreachable this long (default: control.lost_after; 1s to 168h)'),
});

export const healthcheckSchema = z.strictObject({
  test: z.union([z.string().min(1), z.array(z.string()).min(1)]).describe('Command; a string runs in a shell (CMD-SHELL)'),
  interval: duration().default('30s'),
  timeout: duration().default('30s'),
  retries: z.number().int().min(0).max(MAX_HEALTHCHECK_RETRIES).default(3),
  start_period: duration().default('0s'),
});

export const updateSchema = z.strictObject({
  parallelism: z.number().int().min(1).max(MAX_REPLICAS).default(1),
  delay: duration().default('0s'),
  monitor: duration().default('5s'),
  failure_action: z.enum(['pause', 'rollback']).default('pause'),
  order: z
    .enum(['stop-first', 'start-first'])
    .default('stop-first')
    .describe('start-first runs the new container before stopping the old one (only where no host port would collide)'),
});

/** Signal names Docker accepts for StopSignal, as Compose writes them. */
const stopSignal = z
  .string()
  .regex(/^(SIG)?[A-Z][A-Z0-9+-]*$|^\d{1,2}$/, 'expected a signal name such as "SIGTERM", "SIGINT", "SIGQUIT" or a number');

export const serviceSchema = z.strictObject({
  name: dnsLabel().describe('Unique service name. A DNS label: lowercase letters, digits and "-", at most 63 characters'),
  image: z.string().min(1),
  node: z.string().min(1).optional().describe('Pin the service to this node'),
  command: z.union([z.string(), z.array(z.string())]).optional(),
  ports: z.array(z.union([z.string(), z.number().int()])).default([]).describe('"8080:80", "127.0.0.1:8080:80", "53:53/udp"'),
  environment: z.union([z.record(z.string(), scalar.nullable()), z.array(z.string())]).default({}),
  volumes: z.array(volume()).default([]).describe('"SRC:DST[:MODE]": SRC an absolute path on the node or a volume name, MODE a comma list of ro, rw, z, Z, nocopy, consistent, cached, delegated, shared, slave, private, rshared, rslave, rprivate'),
  restart: z.enum(['no', 'always', 'on-failure', 'unless-stopped']).default('unless-stopped'),
  labels: z.record(z.string(), scalar).default({}),
  healthcheck: healthcheckSchema.optional(),
  init: z.boolean().optional().describe('Run an init process as PID 1 that forwards signals and reaps zombies (Compose init; docker run --init)'),
  stop_signal: stopSignal.optional().describe('Signal that asks a replica to stop (default SIGTERM)'),
  stop_grace_period: duration().optional().describe('How long a replica may take to stop before it is killed (default 10s)'),
  cpus: cpus().optional().describe('CPU limit, e.g. 0.5 (0.01 to 256; a node refuses more than its own cores)'),
  memory: memory().optional().describe('Memory limit, e.g. "256m" (6m, Docker\'s minimum, to 1t)'),
  replicas: z
    .number()
    .int()
    .min(0)
    .max(MAX_REPLICAS, { error: (issue) => `expected at most ${MAX_REPLICAS} replicas per service (Otto's limit, see "Limits" in the README), got ${String(issue.input)}` })
    .default(1)
    .describe(`Number of containers of the service, at most ${MAX_REPLICAS} (see "Limits" in the README)`),
  placement: z
    .strictObject({
      constraints: z.array(z.string()).default([]).describe('e.g. "arch == arm64", "zone != garage"'),
    })
    .optional(),
  update: updateSchema.optional(),
  secrets: serviceSecretsSchema,
  nfr: serviceNfrSchema,
});

export const ottoConfigSchema = z.strictObject({
  cluster: clusterSchema.default({ name: 'default' }),
  mqtt: mqttSchema.default({ host: 'localhost', embedded: true, readers: [], tls: 'auto' }),
  http: httpSchema.default({ listen: '127.0.0.1', port: 7480, metrics_public: false, tls: 'auto' }),
  metrics: metricsSchema.default({ interval: '5s' }),
  control: controlSchema.default({ interval: '5s', lost_after: '5m' }),
  nodes: z.array(nodeSchema).min(1, 'expected at least one node'),
  node_pools: z
    .array(
      z.strictObject({
        name: dnsLabel().describe('Pool name: `otto node join-command NAME` prints its bootstrap line'),
        labels: z.record(z.string(), scalar).default({}).describe('Labels every node that joins through the pool gets'),
      }),
    )
    .default([])
    .describe('Nodes that join by themselves with a shared bootstrap token (K3s-style), each getting its own credential'),
  services: z.array(serviceSchema).default([]),
  nfr: nfrDefaultsSchema,
  migration: migrationSchema,
  secrets: secretsSchema,
  registries: registriesSchema,
});

export type OttoConfig = z.infer<typeof ottoConfigSchema>;
export type NodeConfig = OttoConfig['nodes'][number];
export type ServiceConfig = OttoConfig['services'][number];

/** The JSON Schema of otto.yaml, generated from the zod schema (what `otto config schema` prints). */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ottoConfigSchema, { io: 'input', target: 'draft-2020-12' }),
    $id: 'https://otto.dev/schema/otto.schema.json',
    title: 'otto.yaml',
  };
}
