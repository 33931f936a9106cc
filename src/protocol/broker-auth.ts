/**
 * Who may say what on Otto's broker. Every client has an identity (its MQTT username): the control plane
 * (and the CLI, for logs) proves it holds the cluster's API token; each node has a credential of its own
 * and may speak only for itself; readers (Grafana, Node-RED, mosquitto_sub) may read metrics and status;
 * anyone else is refused. These rules are written once, here: the embedded broker applies them, and
 * `otto config mosquitto` renders them as a Mosquitto ACL file.
 */
import { createHash } from 'node:crypto';
import { TOPIC_ROOT } from './topics.js';

export const PRIVILEGED_MQTT_USER = 'otto-control-plane';

export type BrokerIdentity =
  | { kind: 'control-plane' }
  | { kind: 'node'; node: string }
  | { kind: 'reader'; name: string }
  /** A device holding a pool's bootstrap token, before it has a credential of its own: it may only ask to join. */
  | { kind: 'pool'; pool: string };

/** The username a pool's bootstrap token logs in with. */
export const poolUsername = (pool: string) => `otto-pool-${pool}`;

/** What a node publishes under its own prefix; `+` stands for one level (a logs request id). */
const NODE_PUBLISHES = ['metrics/node', 'metrics/containers', 'status', 'state', 'logs/stream/+'];
/** What a node receives: only from the control plane. */
const NODE_SUBSCRIBES = ['desired', 'logs/request', 'logs/control', 'secrets'];
/** What the control plane sends to nodes. */
const CONTROL_PLANE_PUBLISHES = [...NODE_SUBSCRIBES.map((suffix) => `${TOPIC_ROOT}/+/${suffix}`), 'otto/join/+/+/reply'];
const READER_SUBSCRIBES = [`${TOPIC_ROOT}/+/metrics/#`, `${TOPIC_ROOT}/+/status`];

/** Topic filters the identity may publish to (MQTT wildcards). */
export function publishFilters(identity: BrokerIdentity): string[] {
  switch (identity.kind) {
    case 'control-plane':
      return CONTROL_PLANE_PUBLISHES;
    case 'node':
      return NODE_PUBLISHES.map((suffix) => `${TOPIC_ROOT}/${identity.node}/${suffix}`);
    case 'reader':
      return [];
    case 'pool':
      return [`otto/join/${identity.pool}/+`];
  }
}

/** Topic filters the identity may subscribe to. */
export function subscribeFilters(identity: BrokerIdentity): string[] {
  switch (identity.kind) {
    case 'control-plane':
      return ['otto/#'];
    case 'node':
      return NODE_SUBSCRIBES.map((suffix) => `${TOPIC_ROOT}/${identity.node}/${suffix}`);
    case 'reader':
      return READER_SUBSCRIBES;
    case 'pool':
      return [`otto/join/${identity.pool}/+/reply`];
  }
}

/** Whether the MQTT filter `pattern` matches every topic `filter` can match (a topic is a filter too). */
export function covers(pattern: string, filter: string): boolean {
  const p = pattern.split('/');
  const f = filter.split('/');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '#') return true;
    if (i >= f.length) return false;
    if (f[i] === '#') return false;
    if (p[i] === '+') continue;
    if (p[i] !== f[i]) return false;
  }
  return p.length === f.length;
}

/** A topic name (no wildcards) the identity may publish to. */
export function mayPublish(identity: BrokerIdentity, topic: string): boolean {
  if (topic.includes('+') || topic.includes('#')) return false;
  return publishFilters(identity).some((pattern) => covers(pattern, topic));
}

/** A subscription the identity may make: every topic it could match must be one the identity may read. */
export function maySubscribe(identity: BrokerIdentity, filter: string): boolean {
  // A pool member reads the answer to its own request only, never a wildcard over everyone's.
  if (identity.kind === 'pool' && (filter.includes('+') || filter.includes('#'))) return false;
  return subscribeFilters(identity).some((pattern) => covers(pattern, filter));
}

/**
 * The MQTT client id an identity connects with. A broker closes the older of two connections with one id,
 * so a guessable id would let any client push a node's agent (or the control plane) off the broker: the id
 * carries a digest of the identity's own secret, which only it knows.
 */
export function ownClientId(kind: 'agent' | 'control-plane', cluster: string, name: string, secret: string): string {
  return `otto-${kind}-${cluster}-${name}-${createHash('sha256').update(`otto-client-id:${secret}`).digest('hex').slice(0, 12)}`;
}

/**
 * Whether a client may use this client id: a node only its own (ownClientId, or one under it for a second
 * session), a reader none of Otto's (`otto-...`), the control plane (and the CLI) any.
 */
export function clientIdAllowed(identity: BrokerIdentity, clientId: string, nodeOwnId?: string): boolean {
  if (identity.kind === 'control-plane') return true;
  if (identity.kind === 'node') return nodeOwnId !== undefined && (clientId === nodeOwnId || clientId.startsWith(`${nodeOwnId}-`));
  return !clientId.startsWith('otto-');
}

/** Usernames the config may not give a node or a reader: they would take another identity. */
export function reservedUsernames(): string[] {
  return [PRIVILEGED_MQTT_USER];
}

/** The control plane's (and the CLI's) credentials: the API token proves it. */
export function controlPlaneCredentials(token: string): { username: string; password: string } {
  return { username: PRIVILEGED_MQTT_USER, password: token };
}

/**
 * The same rules as a Mosquitto ACL file (mosquitto.conf `acl_file`): a `user` section for the control
 * plane and each reader, and `pattern` lines (%u is the username, the node id) for nodes. Mosquitto applies
 * pattern lines to every user, so each `user` section first denies the node prefix of its own name.
 */
export function mosquittoAcl(readers: string[], pools: string[] = []): string {
  const lines = ['# Written by `otto config mosquitto`: the rules of src/protocol/broker-auth.ts.', ''];
  // Mosquitto applies `pattern` lines to every user: a deny line (checked first) keeps the control plane
  // and readers from the node prefix their own name would give them.
  lines.push(`user ${PRIVILEGED_MQTT_USER}`, `topic deny ${TOPIC_ROOT}/${PRIVILEGED_MQTT_USER}/#`);
  for (const filter of subscribeFilters({ kind: 'control-plane' })) lines.push(`topic read ${filter}`);
  for (const filter of publishFilters({ kind: 'control-plane' })) lines.push(`topic write ${filter}`);
  for (const name of readers) {
    lines.push('', `user ${name}`, `topic deny ${TOPIC_ROOT}/${name}/#`);
    for (const filter of subscribeFilters({ kind: 'reader', name })) lines.push(`topic read ${filter}`);
  }
  for (const pool of pools) {
    const name = poolUsername(pool);
    lines.push('', `user ${name}`, `topic deny ${TOPIC_ROOT}/${name}/#`);
    for (const filter of publishFilters({ kind: 'pool', pool })) lines.push(`topic write ${filter}`);
    for (const filter of subscribeFilters({ kind: 'pool', pool })) lines.push(`topic read ${filter}`);
  }
  lines.push('', '# Every node: its own prefix only (%u is its username, the node id).');
  for (const filter of publishFilters({ kind: 'node', node: '%u' })) lines.push(`pattern write ${filter}`);
  for (const filter of subscribeFilters({ kind: 'node', node: '%u' })) lines.push(`pattern read ${filter}`);
  return `${lines.join('\n')}\n`;
}
