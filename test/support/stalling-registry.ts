/**
 * A Docker registry that hangs: `GET /v2/` answers (so the engine believes the registry is there) and
 * every manifest request is held open, never answered, the way a registry behind a dying link behaves.
 * It listens on 127.0.0.1, which Docker treats as an insecure registry, so plain HTTP works.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface StallingRegistry {
  /** `127.0.0.1:PORT`, to prefix image names with. */
  readonly address: string;
  /** Manifest requests received (and held) so far. */
  readonly manifestRequests: number;
  /** Ends every held request and stops listening. */
  close(): Promise<void>;
}

const MANIFEST_PATH = /^\/v2\/.+\/manifests\/[^/]+$/;

export async function startStallingRegistry(): Promise<StallingRegistry> {
  const sockets = new Set<Socket>();
  const held = new Set<ServerResponse>();
  let manifestRequests = 0;
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]!;
    if (path === '/v2/' || path === '/v2') {
      response.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' });
      response.end('{}');
      return;
    }
    if (MANIFEST_PATH.test(path)) {
      manifestRequests++;
      held.add(response);
      return; // never answered
    }
    response.writeHead(404, { 'content-type': 'application/json' });
    response.end('{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}');
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    get manifestRequests() {
      return manifestRequests;
    },
    async close() {
      held.clear();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
