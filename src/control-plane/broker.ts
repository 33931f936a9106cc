/**
 * The embedded MQTT broker (aedes), so a cluster needs nothing but Otto. `mqtt.embedded: false` skips it
 * and everyone uses the external broker instead.
 */
import { createServer, type Server } from 'node:net';
import { InfrastructureError } from '../errors.js';
import { PRIVILEGED_MQTT_USER, isPrivilegedTopic } from '../protocol/broker-auth.js';
import { tokenMatches } from '../workspace.js';

export interface EmbeddedBroker {
  close(): Promise<void>;
}

export async function startEmbeddedBroker(options: {
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** The API token: the password of the privileged client (see protocol/broker-auth.ts). */
  token: string;
  onRefused?: (clientId: string, topic: string) => void;
}): Promise<EmbeddedBroker> {
  const { Aedes } = await import('aedes');
  const privileged = new WeakSet<object>();
  const broker = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      if (username === PRIVILEGED_MQTT_USER) {
        const ok = password !== undefined && tokenMatches(password.toString(), options.token);
        if (ok) privileged.add(client);
        return done(null, ok);
      }
      if (!options.username) return done(null, true);
      done(null, username === options.username && password?.toString() === (options.password ?? ''));
    },
    authorizePublish: (client, packet, done) => {
      if (!client || privileged.has(client) || !isPrivilegedTopic(packet.topic)) return done(null);
      options.onRefused?.(client.id, packet.topic);
      done(new Error(`${packet.topic} is for the control plane only`));
    },
  });
  const server: Server = createServer(broker.handle);
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
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
