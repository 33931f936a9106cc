/**
 * The control plane's HTTP API (fastify). The CLI speaks to it; `/api` routes need the bearer token
 * from `.otto/token`.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { ClusterStatus } from './schemas.js';

export interface ApiHandlers {
  status(): ClusterStatus;
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startApi(options: {
  host: string;
  port: number;
  token: string;
  handlers: ApiHandlers;
}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/api/')) return;
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    if (!sameToken(given, options.token)) {
      await reply.code(401).send({ error: 'missing or wrong bearer token', hint: 'the token is in .otto/token' });
    }
  });
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/api/v1/status', async () => options.handlers.status());
  await app.listen({ host: options.host, port: options.port });
  return app;
}
