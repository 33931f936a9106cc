/**
 * The embedded MQTT broker (aedes), so a cluster needs nothing but Otto. `mqtt.embedded: false` skips it
 * and everyone uses the external broker instead.
 */
import { createServer, type Server } from 'node:net';
import { InfrastructureError } from '../errors.js';

export interface EmbeddedBroker {
  close(): Promise<void>;
}

export async function startEmbeddedBroker(options: {
  host: string;
  port: number;
  username?: string;
  password?: string;
}): Promise<EmbeddedBroker> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker({
    authenticate: (_client, username, password, done) => {
      if (!options.username) return done(null, true);
      done(null, username === options.username && password?.toString() === (options.password ?? ''));
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
