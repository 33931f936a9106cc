/**
 * The CLI's side of logs over MQTT: asks each replica's agent for its container's logs and prints the
 * lines as they come, prefixed with the replica when there are several (like `docker compose logs`).
 */
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import type { OttoConfig } from '../config/schema.js';
import { privilegedCredentials } from '../protocol/broker-auth.js';
import { brokerUrl } from '../protocol/broker-url.js';
import { InfrastructureError, errorMessage } from '../errors.js';
import type { ReplicaView } from '../http/schemas.js';
import { decode, encode, logsChunkSchema, type LogsControl, type LogsRequest } from '../protocol/messages.js';
import { topics } from '../protocol/topics.js';

const KEEPALIVE_MS = 10_000;

export async function streamLogs(
  config: OttoConfig,
  token: string,
  replicas: ReplicaView[],
  options: { follow: boolean; tail?: number; prefix: boolean },
): Promise<void> {
  const url = brokerUrl(config.mqtt.host, config.mqtt.port);
  const client = await mqtt
    .connectAsync(url, { ...privilegedCredentials(config.mqtt, token), reconnectPeriod: 0, connectTimeout: 5_000 })
    .catch((err) => {
      throw new InfrastructureError(`MQTT broker ${url} unreachable: ${errorMessage(err)}`, 'is the cluster running? `otto cluster status`');
    });
  const width = Math.max(...replicas.map((r) => r.name.length));
  const requests = replicas.map((replica) => ({ replica, id: randomUUID() }));
  const open = new Set<string>(requests.map((r) => r.id));
  let failure: string | undefined;
  let allEnded = () => {};
  const done = new Promise<void>((resolve) => (allEnded = resolve));

  client.on('message', (_topic, payload) => {
    const chunk = decode(logsChunkSchema, payload);
    if (!chunk.ok || !open.has(chunk.value.request_id)) return;
    const { request_id: id, lines, end, error } = chunk.value;
    const replica = requests.find((r) => r.id === id)!.replica;
    const prefix = options.prefix ? `${replica.name.padEnd(width)} | ` : '';
    for (const line of lines) (line.stream === 'stderr' ? process.stderr : process.stdout).write(`${prefix}${line.text}\n`);
    if (error) failure = `${replica.name} on ${replica.node}: ${error}`;
    if (end) {
      open.delete(id);
      if (open.size === 0) allEnded();
    }
  });

  for (const { id } of requests) await client.subscribeAsync(topics.logsStream(id), { qos: 1 });
  for (const { replica, id } of requests) {
    const request: LogsRequest = { request_id: id, container: replica.name, follow: options.follow, tail: options.tail };
    await client.publishAsync(topics.logsRequest(replica.node), encode(request), { qos: 1 });
  }
  const control = (action: LogsControl['action']) =>
    Promise.all(requests.map(({ replica, id }) => client.publishAsync(topics.logsControl(replica.node), encode({ request_id: id, action }), { qos: 1 })));
  const keepalive = setInterval(() => void control('keepalive'), KEEPALIVE_MS);
  const onSignal = async () => {
    clearInterval(keepalive);
    await control('cancel').catch(() => undefined);
    await client.endAsync();
    process.exit(0);
  };
  process.once('SIGINT', () => void onSignal());
  process.once('SIGTERM', () => void onSignal());

  // Without a follow, an agent that never answers (node offline) must not hang the command.
  const timeout = options.follow
    ? undefined
    : setTimeout(() => {
        failure ??= `no answer from ${[...open].map((id) => requests.find((r) => r.id === id)!.replica.node).join(', ')} (node offline?)`;
        allEnded();
      }, 15_000);
  await done;
  clearTimeout(timeout);
  clearInterval(keepalive);
  await client.endAsync();
  if (failure) throw new InfrastructureError(`logs: ${failure}`);
}
