/**
 * The raw floor of `npm run bench:fleet`: a bare aedes broker that lets every client in, and one mqtt.js
 * client subscribed to what the control plane subscribes to, counting messages and doing nothing else.
 * The same simulated fleet against it shows what the broker and one subscriber cost without Otto.
 * Run as a child process: argv[2] is the port; IPC `stats` answers the count of messages received.
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { controlPlaneSubscriptions } from '../../../src/protocol/topics.js';

const port = Number(process.argv[2]);
const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
let received = 0;
const subscriber = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: 'floor-subscriber', reconnectPeriod: 1_000 });
subscriber.on('message', () => received++);
await new Promise<void>((resolve) => subscriber.once('connect', () => resolve()));
await subscriber.subscribeAsync(controlPlaneSubscriptions, { qos: 0 });

process.on('message', (command: { type: string }) => {
  if (command.type === 'stats') process.send!({ type: 'stats', received, connections: broker.connectedClients });
  if (command.type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
