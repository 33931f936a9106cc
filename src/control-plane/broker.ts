/**
 * The embedded MQTT broker (aedes), so a cluster needs nothing but Otto. Every client must prove an
 * identity (protocol/broker-auth.ts): the control plane, a node, or a reader; anonymous clients are refused.
 * Each publish and subscribe is checked against that identity's rules, a node's last will included; a packet
 * larger than the limit closes its connection before it is buffered; a retained message is accepted only
 * where Otto keeps one (a node's status, a node's desired state). `mqtt.embedded: false` skips all this
 * and everyone uses the external broker (`otto config mosquitto` writes its rules).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { InfrastructureError } from '../errors.js';
import { mayPublish, maySubscribe, type BrokerIdentity } from '../protocol/broker-auth.js';
import { indexedMemoryPersistence } from './broker-persistence.js';
import { PacketSizeGuard } from './packet-guard.js';

export interface EmbeddedBroker {
  /** Closes the connections of clients that authenticated as this identity (a revoked or rotated credential). */
  disconnect(matches: (identity: BrokerIdentity) => boolean): number;
  close(): Promise<void>;
}

export type RefusalKind = 'connect' | 'publish' | 'subscribe' | 'oversize';

export interface BrokerOptions {
  host: string;
  port: number;
  /** The identity these credentials prove with this client id, or undefined (refused). */
  authenticate: (clientId: string, username: string | undefined, password: string | undefined) => BrokerIdentity | undefined;
  /** The largest packet a client may send (MQTT remaining length). */
  maxPacketBytes: number;
  /** TLS: serve mqtts with this certificate. */
  tls?: Pick<TlsOptions, 'cert' | 'key'>;
  onRefused?: (kind: RefusalKind, clientId: string, detail: string) => void;
}

/** Where Otto keeps a retained message; anything else asking to be retained is refused. */
const retainedTopic = /^otto\/nodes\/[^/]+\/(status|desired)$/;
const MAX_IN_FLIGHT = 100_000;
/** Topics a client's verdicts are remembered for: an agent publishes to four, every interval. */
const VERDICTS_PER_CLIENT = 16;

/** Whether this identity may publish there, remembered per client: the rules are checked once per topic, not per message. */
function publishVerdicts(): (client: object, identity: BrokerIdentity, topic: string) => boolean {
  const verdicts = new WeakMap<object, Map<string, boolean>>();
  return (client, identity, topic) => {
    let known = verdicts.get(client);
    const verdict = known?.get(topic);
    if (verdict !== undefined) return verdict;
    const allowed = mayPublish(identity, topic);
    if (!known || known.size >= VERDICTS_PER_CLIENT) verdicts.set(client, (known = new Map()));
    known.set(topic, allowed);
    return allowed;
  };
}

export async function startEmbeddedBroker(options: BrokerOptions): Promise<EmbeddedBroker> {
  const { Aedes } = await import('aedes');
  const identities = new Map<object, BrokerIdentity>();
  const refuse = (kind: RefusalKind, clientId: string, detail: string) => options.onRefused?.(kind, clientId, detail);
  const mayPublishHere = publishVerdicts();
  const broker = await Aedes.createBroker({
    persistence: await indexedMemoryPersistence(),
    // Messages delivered at once before aedes queues them (default 100). Its queue is an array shifted one
    // message at a time, which a fleet's burst turns quadratic; each client has at most one read buffer of
    // packets in flight anyway, so the number of clients bounds this.
    concurrency: MAX_IN_FLIGHT,
    authenticate: (client, username, password, done) => {
      const identity = options.authenticate(client.id, username, password?.toString());
      if (!identity) {
        refuse('connect', client.id, `username ${JSON.stringify(username ?? '')}`);
        const error = Object.assign(new Error('not authorized'), { returnCode: 5 });
        return done(error as never, false);
      }
      identities.set(client, identity);
      done(null, true);
    },
    authorizePublish: (client, packet, done) => {
      // The broker's own messages ($SYS) have no client.
      if (!client) return done(null);
      const identity = identities.get(client);
      if (!identity || !mayPublishHere(client, identity, packet.topic)) {
        refuse('publish', client.id, packet.topic);
        return done(new Error(`${packet.topic}: not allowed for this client`));
      }
      if (packet.retain && !retainedTopic.test(packet.topic)) {
        refuse('publish', client.id, `retained ${packet.topic}`);
        return done(new Error(`${packet.topic}: retained messages are not kept here`));
      }
      done(null);
    },
    authorizeSubscribe: (client, subscription, done) => {
      const identity = client && identities.get(client);
      if (!identity || !maySubscribe(identity, subscription.topic)) {
        refuse('subscribe', client?.id ?? '?', subscription.topic);
        return done(null, null);
      }
      done(null, subscription);
    },
  });
  broker.on('clientDisconnect', (client) => identities.delete(client));
  const handle = (socket: Socket) => {
    const guard = new PacketSizeGuard(options.maxPacketBytes);
    // Watches the bytes before aedes buffers them: an oversize packet closes the connection at its header.
    socket.on('data', (chunk: Buffer) => {
      const size = guard.push(chunk);
      if (size !== undefined) {
        refuse('oversize', socket.remoteAddress ?? '?', `a packet of ${size} bytes (limit ${options.maxPacketBytes})`);
        socket.destroy();
      }
    });
    broker.handle(socket);
  };
  const server: Server = options.tls ? createTlsServer({ ...options.tls }, handle) : createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', () => broker.close());
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new InfrastructureError(
          `cannot start the embedded MQTT broker on ${options.host}:${options.port}: ${err.code ?? err.message}`,
          err.code === 'EADDRINUSE' ? 'another broker listens there: stop it, change mqtt.port, or set mqtt.embedded: false to use it' : undefined,
        ),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    disconnect: (matches) => {
      let closed = 0;
      for (const [client, identity] of identities) {
        if (!matches(identity)) continue;
        (client as { close(): void }).close();
        identities.delete(client);
        closed++;
      }
      return closed;
    },
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
