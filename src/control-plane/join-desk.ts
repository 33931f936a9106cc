/**
 * Where devices that hold a pool's bootstrap token are admitted: each gets a node id and a credential of its
 * own (sealed so only it can read it), and from then on speaks only as that node. The broker has already
 * checked the pool's token (only the pool's identity may publish to its join topic).
 */
import type { OttoConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { joinRequestSchema, type JoinReply, type JoinRequest } from '../protocol/messages.js';
import { decode, encode } from '../protocol/codec.js';
import type { Credentials } from '../security/credentials.js';
import { seal } from '../security/join-seal.js';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The node id a device gets: the one it asks for, else one made from its hostname; never one taken. Pure. */
export function chooseNodeId(request: Pick<JoinRequest, 'node_id' | 'hostname'>, taken: (id: string) => string | undefined): { id: string } | { error: string } {
  const asked = request.node_id;
  const id = asked ?? request.hostname.toLowerCase().split('.')[0]!.replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  if (!LABEL.test(id)) {
    return { error: asked ? `node id "${asked}" is not a DNS label (lowercase letters, digits, "-", at most 63)` : `the hostname "${request.hostname}" makes no node id: pass one with --node-id` };
  }
  if (id.startsWith('otto-')) return { error: `node id "${id}" starts with "otto-", which Otto keeps for its own identities: pass another with --node-id` };
  const holder = taken(id);
  if (holder) return { error: `node id "${id}" is taken (${holder}): pass another with --node-id, or free it with \`otto node remove ${id}\`` };
  return { id };
}

export interface JoinDeskHost {
  /** The config as in otto.yaml (its nodes and pools). */
  config(): OttoConfig;
  credentials: Credentials;
  reply(pool: string, requestId: string, reply: JoinReply): Promise<void>;
  /** A node joined: it takes part in placement from now on. */
  admitted(nodeId: string, pool: string): void;
  log: Logger;
}

export class JoinDesk {
  /** Answers already given, so a device that asks again (a lost reply) gets the same one. */
  private readonly answered = new Map<string, JoinReply>();

  constructor(private readonly host: JoinDeskHost) {}

  async handle(pool: string, payload: Buffer): Promise<void> {
    const decoded = decode(joinRequestSchema, payload);
    if (!decoded.ok) {
      this.host.log.warn({ pool, error: decoded.error }, 'ignored an invalid join request');
      return;
    }
    const request = decoded.value;
    const config = this.host.config();
    const earlier = this.answered.get(request.request_id);
    if (earlier) return this.host.reply(pool, request.request_id, earlier);
    const base = { request_id: request.request_id, cluster: config.cluster.name };
    let reply: JoinReply;
    if (!config.node_pools.some((p) => p.name === pool)) {
      reply = { ...base, ok: false, error: `no node pool "${pool}" in this cluster any more` };
    } else {
      const joined = this.host.credentials.joinedNodes();
      const choice = chooseNodeId(request, (id) =>
        config.nodes.some((n) => n.id === id) ? 'a node of otto.yaml' : joined[id] ? `joined through pool ${joined[id]!.pool} on ${joined[id]!.joined_at.slice(0, 10)}` : undefined,
      );
      if ('error' in choice) {
        reply = { ...base, ok: false, error: choice.error };
      } else {
        try {
          const password = await this.host.credentials.admit(choice.id, { pool, hostname: request.hostname, arch: request.arch });
          reply = { ...base, ok: true, node_id: choice.id, credential: seal(encode({ password }), request.public_key, request.request_id) };
          this.host.log.info({ pool, node: choice.id, hostname: request.hostname }, 'a node joined');
          this.host.admitted(choice.id, pool);
        } catch (err) {
          reply = { ...base, ok: false, error: `the control plane could not admit the node: ${errorMessage(err)}` };
        }
      }
    }
    this.answered.set(request.request_id, reply);
    if (this.answered.size > 1_000) this.answered.delete(this.answered.keys().next().value!);
    await this.host.reply(pool, request.request_id, reply);
  }
}
