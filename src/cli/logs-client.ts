/**
 * The CLI's side of logs over MQTT: asks each replica's agent for its container's logs and prints the
 * lines as chunks come, prefixed with the replica when there are several (like `docker compose logs`).
 * Nothing is gathered: a chunk is printed, then the next one is taken once stdout has room (a slow pipe
 * holds the broker, and through it the agent), and printed chunks are confirmed to the agent so it never
 * runs more than WINDOW chunks ahead.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import mqtt from 'mqtt';
import type { OttoConfig } from '../config/schema.js';
import { controlPlaneCredentials } from '../protocol/broker-auth.js';
import { brokerUrl } from '../protocol/broker-url.js';
import { InfrastructureError, errorMessage } from '../errors.js';
import type { ReplicaView } from '../http/schemas.js';
import { logsChunkSchema, type LogsChunk, type LogsControl, type LogsRequest } from '../protocol/messages.js';
import { decode, encode } from '../protocol/codec.js';
import { topics } from '../protocol/topics.js';
import { ChunkOrder } from './log-chunk-order.js';
import { brokerTransport } from '../config/transport.js';

const KEEPALIVE_MS = 10_000;
/** Chunks (<= 64 KB each) an agent may send beyond those printed here. */
const WINDOW = 16;
/** Confirm printed chunks this often; the agent waits for it once WINDOW chunks are unconfirmed. */
const CONFIRM_EVERY = 4;
/** Without a follow, a node that sends nothing for this long (offline, agent gone) fails the command. */
const NO_ANSWER_MS = 15_000;

interface ReplicaStream {
  replica: ReplicaView;
  id: string;
  prefix: string;
  order: ChunkOrder<LogsChunk>;
  confirmed: number;
  lastHeard: number;
  /** The agent sent its last chunk. */
  complete: boolean;
  ended: boolean;
}

export async function streamLogs(
  config: OttoConfig,
  token: string,
  replicas: ReplicaView[],
  options: { follow: boolean; tail?: number; prefix: boolean; ca?: string },
): Promise<void> {
  const transport = brokerTransport(config);
  const url = brokerUrl(config.mqtt.host, transport.port, transport.tls);
  const client = await mqtt
    .connectAsync(url, { ...controlPlaneCredentials(token), ...(options.ca ? { ca: options.ca } : {}), reconnectPeriod: 0, connectTimeout: 5_000 })
    .catch((err) => {
      throw new InfrastructureError(`MQTT broker ${url} unreachable: ${errorMessage(err)}`, 'is the cluster running? `otto cluster status`');
    });
  const width = Math.max(...replicas.map((r) => r.name.length));
  const streams: ReplicaStream[] = replicas.map((replica) => ({
    replica,
    id: randomUUID(),
    prefix: options.prefix ? `${replica.name.padEnd(width)} | ` : '',
    order: new ChunkOrder<LogsChunk>(),
    confirmed: 0,
    lastHeard: Date.now(),
    complete: false,
    ended: false,
  }));
  const byTopic = new Map(streams.map((s) => [topics.logsStream(s.replica.node, s.id), s]));
  let failure: string | undefined;
  let allEnded = () => {};
  const done = new Promise<void>((resolve) => (allEnded = resolve));
  const end = (stream: ReplicaStream, error?: string) => {
    if (stream.ended) return;
    stream.ended = true;
    if (error) failure = `${stream.replica.name} on ${stream.replica.node}: ${error}`;
    if (streams.every((s) => s.ended)) allEnded();
  };

  const control = (stream: ReplicaStream, action: LogsControl['action']) => {
    const message: LogsControl = { request_id: stream.id, action, ...(action === 'keepalive' ? { received: stream.order.received } : {}) };
    stream.confirmed = stream.order.received;
    return client.publishAsync(topics.logsControl(stream.replica.node), encode(message), { qos: 1 });
  };

  // Printing happens in handleMessage: mqtt.js takes the next message only after its callback, so
  // waiting there for stdout to drain keeps a slow reader from piling chunks up in this process.
  let waitingForOutput = false;
  client.handleMessage = (packet, callback) => {
    const stream = byTopic.get(packet.topic);
    const chunk = stream && !stream.ended ? decode(logsChunkSchema, packet.payload) : undefined;
    if (!stream || !chunk?.ok || chunk.value.request_id !== stream.id) return callback();
    stream.lastHeard = Date.now();
    let drained = true;
    for (const ready of stream.order.accept(chunk.value)) {
      drained = print(ready.lines, stream.prefix) && drained;
      if (!ready.end) continue;
      stream.complete = true;
      end(stream, ready.error);
    }
    if (stream.order.waiting > 4 * WINDOW) end(stream, `chunks lost on the way (chunk ${stream.order.received} never came)`);
    const confirm = () => {
      if (!stream.ended && stream.order.received - stream.confirmed >= CONFIRM_EVERY) void control(stream, 'keepalive').catch(() => undefined);
      callback();
    };
    if (drained) return confirm();
    waitingForOutput = true;
    void Promise.all([drain(process.stdout), drain(process.stderr)]).then(() => {
      waitingForOutput = false;
      for (const s of streams) s.lastHeard = Date.now();
      confirm();
    });
  };

  for (const { id, replica } of streams) await client.subscribeAsync(topics.logsStream(replica.node, id), { qos: 1 });
  for (const { replica, id } of streams) {
    const request: LogsRequest = { request_id: id, container: replica.name, follow: options.follow, tail: options.tail, window: WINDOW };
    await client.publishAsync(topics.logsRequest(replica.node), encode(request), { qos: 1 });
  }
  const keepalive = setInterval(() => {
    for (const stream of streams) if (!stream.ended) void control(stream, 'keepalive').catch(() => undefined);
  }, KEEPALIVE_MS);
  const onSignal = async () => {
    clearInterval(keepalive);
    await Promise.all(streams.map((s) => control(s, 'cancel'))).catch(() => undefined);
    await client.endAsync();
    process.exit(0);
  };
  process.once('SIGINT', () => void onSignal());
  process.once('SIGTERM', () => void onSignal());

  // Without a follow, an agent that stops answering (node offline) must not hang the command; time spent
  // waiting for our own stdout does not count.
  const watchdog = options.follow
    ? undefined
    : setInterval(() => {
        if (waitingForOutput) return;
        for (const stream of streams) {
          if (!stream.ended && Date.now() - stream.lastHeard > NO_ANSWER_MS) end(stream, `no answer from node ${stream.replica.node} for ${NO_ANSWER_MS / 1000} s (node offline?)`);
        }
      }, 1_000);
  await done;
  clearInterval(watchdog);
  clearInterval(keepalive);
  // A stream given up on (no answer, lost chunks) must not keep its agent reading.
  await Promise.all(streams.filter((s) => !s.complete).map((s) => control(s, 'cancel'))).catch(() => undefined);
  await client.endAsync();
  if (failure) throw new InfrastructureError(`logs: ${failure}`);
}

/** Writes lines in order, a run of same-stream lines at a time; false if stdout or stderr must drain. */
function print(lines: LogsChunk['lines'], prefix: string): boolean {
  let drained = true;
  let run = '';
  let runStream: 'stdout' | 'stderr' = 'stdout';
  const writeRun = () => {
    if (run) drained = (runStream === 'stderr' ? process.stderr : process.stdout).write(run) && drained;
    run = '';
  };
  for (const line of lines) {
    if (line.stream !== runStream) writeRun();
    runStream = line.stream;
    run += `${prefix}${line.text}\n`;
  }
  writeRun();
  return drained;
}

function drain(out: NodeJS.WriteStream): Promise<unknown> {
  return out.writableNeedDrain ? once(out, 'drain') : Promise.resolve();
}
