/** A real Mosquitto broker on a free port, for tests of `mqtt.embedded: false`. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort, waitFor } from './cli.js';

export interface Mosquitto {
  port: number;
  pid: number;
  stop(): Promise<void>;
  /** kill -9: the broker dies without a goodbye, as on a power cut. */
  kill(): Promise<void>;
}

/**
 * On a free port, or on `port` (to bring a killed broker back where its clients expect it): an open broker
 * (anonymous clients welcome, nothing persisted). With `configFile` (one `otto config mosquitto` wrote), that
 * file decides everything and `port` must be the port it listens on.
 */
export async function startMosquitto(options: { port?: number; configFile?: string } = {}): Promise<Mosquitto> {
  const port = options.port ?? (await freePort());
  let configFile = options.configFile;
  if (!configFile) {
    configFile = join(mkdtempSync(join(tmpdir(), 'otto-mosquitto-')), 'mosquitto.conf');
    writeFileSync(configFile, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  }
  const child: ChildProcess = spawn('mosquitto', ['-c', configFile], { stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitFor(
    'mosquitto to listen',
    () =>
      new Promise<boolean>((resolve, reject) => {
        if (exited) return reject(new Error(`mosquitto -c ${configFile} exited`));
        const socket = connect(port, '127.0.0.1', () => {
          socket.end();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      }),
    10_000,
    100,
  );
  const end = (signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  return { port, pid: child.pid!, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };
}
