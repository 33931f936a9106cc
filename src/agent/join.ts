/**
 * A device joins a cluster by itself (from behind NAT: it dials out, nobody dials in). With a join token it
 * reads the broker's CA from the TLS handshake and checks its fingerprint against the token before it sends
 * anything; a node token carries the node's own credential, a pool token the pool's bootstrap secret, which
 * buys a credential of the device's own (sealed for it). What it got is kept in its state folder (0600), so
 * later starts need no token. Failures are InfrastructureErrors: exit 2 on the device, with what to do.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { arch, homedir, hostname, platform } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type DetailedPeerCertificate } from 'node:tls';
import mqtt from 'mqtt';
import { mkdir, readFile } from '../fs-async.js';
import { InfrastructureError, UsageError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { ownClientId, poolUsername } from '../protocol/broker-auth.js';
import type { JoinRequest } from '../protocol/messages.js';
import { encode } from '../protocol/codec.js';
import { topics } from '../protocol/topics.js';
import { newSealingKey, open } from '../security/join-seal.js';
import { caFingerprint, parseJoinToken, type JoinToken } from '../security/join-token.js';
import { writeAtomic } from '../workspace.js';
import { checkInput, decodeInput } from './inputs.js';
import type { JoinState } from './state-files.js';
import { isoTime } from '../protocol/iso-time.js';

export interface JoinedIdentity {
  cluster: string;
  node: string;
  /** The broker, as the device reaches it. */
  url: string;
  stateDir: string;
  credentialsFile: string;
  caFile: string;
}

const joinedRoot = () => join(homedir(), '.otto', 'joined');
const files = (stateDir: string) => ({ state: join(stateDir, 'join.json'), credentials: join(stateDir, 'mqtt.json'), ca: join(stateDir, 'ca.pem') });

/** The state folder: the one given, the token's cluster's, or the only cluster this device has joined. */
function stateDirFor(given: string | undefined, token: JoinToken | undefined): string {
  if (given) return given;
  if (token) return join(joinedRoot(), token.cluster);
  const joined = existsSync(joinedRoot()) ? readdirSync(joinedRoot()).filter((name) => existsSync(join(joinedRoot(), name, 'join.json'))) : [];
  if (joined.length === 1) return join(joinedRoot(), joined[0]!);
  throw new UsageError(
    joined.length === 0 ? 'this device has not joined a cluster: pass --token' : `this device joined several clusters (${joined.join(', ')}): pass --state-dir`,
    'the line to run comes from `otto node join-command NODE|POOL` on the control plane',
  );
}

async function savedIdentity(stateDir: string): Promise<JoinedIdentity | undefined> {
  const paths = files(stateDir);
  const text = await readFile(paths.state, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const parsed = await checkInput('joinState', JSON.parse(text));
  if (!parsed.ok || !existsSync(paths.credentials) || !existsSync(paths.ca)) return undefined;
  return { cluster: parsed.value.cluster, node: parsed.value.node, url: parsed.value.url, stateDir, credentialsFile: paths.credentials, caFile: paths.ca };
}

const pem = (der: Buffer) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;

/** The CA at the top of the chain the broker presents (not trusted yet: its fingerprint decides). */
export function fetchBrokerCa(url: string, timeoutMs = 10_000): Promise<string> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'mqtts:') {
    return Promise.reject(new UsageError(`--join ${url}: joining needs TLS (an mqtts:// address)`, 'use the address `otto node join-command` printed'));
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port: Number(parsed.port || 8883), rejectUnauthorized: false, servername: isIP(host) ? undefined : host });
    const timer = setTimeout(() => socket.destroy(new Error('no TLS handshake in time')), timeoutMs);
    socket.once('secureConnect', () => {
      let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      while (cert?.issuerCertificate && cert.issuerCertificate !== cert && cert.issuerCertificate.fingerprint256 !== cert.fingerprint256) cert = cert.issuerCertificate;
      clearTimeout(timer);
      socket.end();
      if (!cert?.raw) return reject(new InfrastructureError(`the broker at ${url} presented no certificate`));
      resolve(pem(cert.raw));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new InfrastructureError(`cannot reach the broker at ${url}: ${errorMessage(err)}`, 'check the address and that this device can reach it (outgoing TCP)'));
    });
  });
}

/** Asks a pool for a node of its own; resolves with its id and password. */
async function joinThroughPool(url: string, ca: string, token: JoinToken, nodeId: string | undefined, log: Logger): Promise<{ node: string; password: string }> {
  const client = await mqtt
    .connectAsync(url, { ca, username: poolUsername(token.name), password: token.secret, clientId: `join-${randomBytes(6).toString('hex')}`, reconnectPeriod: 0, connectTimeout: 10_000 })
    .catch((err) => {
      throw refusal(err, `the cluster refused the token of pool ${token.name}: it is wrong, or the pool was removed`);
    });
  try {
    const key = newSealingKey();
    const requestId = randomBytes(12).toString('hex');
    const request: JoinRequest = { request_id: requestId, hostname: hostname(), arch: arch(), platform: platform(), public_key: key.publicKey, ...(nodeId ? { node_id: nodeId } : {}) };
    const answer = new Promise<Buffer>((resolve) => client.once('message', (_topic, payload) => resolve(payload)));
    await client.subscribeAsync(topics.joinReply(token.name, requestId), { qos: 1 });
    await client.publishAsync(topics.joinRequest(token.name, requestId), encode(request), { qos: 1 });
    log.info({ pool: token.name }, 'asked to join');
    const payload = await Promise.race([answer, new Promise<never>((_, reject) => setTimeout(() => reject(new InfrastructureError('no answer from the control plane within 30s', 'is the cluster running? `otto cluster status` on the control plane')), 30_000))]);
    const reply = await decodeInput('joinReply', payload);
    if (!reply.ok) throw new InfrastructureError(`the control plane gave an answer this agent cannot read: ${reply.error}`);
    if (!reply.value.ok || !reply.value.node_id || !reply.value.credential) throw new InfrastructureError(`the cluster did not let this device join: ${reply.value.error ?? 'no reason given'}`);
    const { password } = JSON.parse(open(reply.value.credential, key, requestId)) as { password: string };
    return { node: reply.value.node_id, password };
  } finally {
    await client.endAsync().catch(() => undefined);
  }
}

function refusal(err: unknown, refused: string): InfrastructureError {
  const message = errorMessage(err);
  if (/not authori[sz]ed|bad user ?name or password/i.test(message)) return new InfrastructureError(refused, 'ask for a new join command: `otto node join-command NODE|POOL` on the control plane');
  return new InfrastructureError(`cannot reach the broker: ${message}`, 'check the address and that this device can reach it (outgoing TCP)');
}

/**
 * A saved credential the cluster now refuses (the node was removed, its credential rotated) is said at
 * once, exit 2; a broker that cannot be reached is not: the agent starts and keeps its containers (edge
 * autonomy), retrying.
 */
async function refuseIfRevoked(identity: JoinedIdentity): Promise<void> {
  const [credentials, ca] = await Promise.all([readFile(identity.credentialsFile, 'utf8'), readFile(identity.caFile, 'utf8')]);
  const { username, password } = JSON.parse(credentials) as { username: string; password: string };
  const probe = await mqtt
    .connectAsync(identity.url, { ca, username, password, clientId: `${ownClientId('agent', identity.cluster, username, password)}-join`, reconnectPeriod: 0, connectTimeout: 5_000 })
    .catch((err: unknown) => {
      const error = refusal(err, `the cluster refuses node ${identity.node}: it was removed, or its credential was replaced`);
      if (error.message.startsWith('the cluster refuses')) throw error;
      return undefined;
    });
  await probe?.endAsync().catch(() => undefined);
}

export interface JoinOptions {
  /** The broker (mqtts://); default: the one of the saved join. */
  url?: string;
  token?: string;
  /** The node id to ask a pool for (default: from the hostname). */
  nodeId?: string;
  stateDir?: string;
  log: Logger;
}

/** Joins (with a token) or returns the saved join (without); the node's credential and CA end up 0600 on disk. */
export async function joinCluster(options: JoinOptions): Promise<JoinedIdentity> {
  const token = options.token ? parseJoinToken(options.token) : undefined;
  const stateDir = stateDirFor(options.stateDir, token);
  const saved = await savedIdentity(stateDir);
  if (!token) {
    if (!saved) throw new UsageError(`no join saved in ${stateDir}: pass --token`, 'the line to run comes from `otto node join-command NODE|POOL` on the control plane');
    const identity = options.url ? { ...saved, url: options.url } : saved;
    await refuseIfRevoked(identity);
    return identity;
  }
  const url = options.url ?? saved?.url;
  if (!url) throw new UsageError('--join needs the broker address the first time', 'run the whole line `otto node join-command` printed');
  const ca = await fetchBrokerCa(url);
  const fingerprint = caFingerprint(ca);
  if (fingerprint !== token.ca) {
    throw new InfrastructureError(
      `the broker at ${url} is not cluster ${token.cluster}'s: its CA fingerprint ${fingerprint.slice(0, 16)}... is not the token's ${token.ca.slice(0, 16)}...`,
      'check the address (a look-alike may be answering), or ask for a new join command if the cluster made a new CA',
    );
  }
  const credential = token.kind === 'node' ? { node: token.name, password: token.secret } : await joinThroughPool(url, ca, token, options.nodeId, options.log);
  // The credential must work before it is kept: a revoked or replaced one is said now, not by an agent that retries.
  const probe = await mqtt
    .connectAsync(url, { ca, username: credential.node, password: credential.password, clientId: `${ownClientId('agent', token.cluster, credential.node, credential.password)}-join`, reconnectPeriod: 0, connectTimeout: 10_000 })
    .catch((err) => {
      throw refusal(err, `the cluster refused node ${credential.node}'s credential: it was revoked or replaced`);
    });
  await probe.endAsync().catch(() => undefined);
  const paths = files(stateDir);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeAtomic(paths.ca, ca, 0o644);
  await writeAtomic(paths.credentials, `${JSON.stringify({ username: credential.node, password: credential.password })}\n`, 0o600);
  const state: JoinState = { cluster: token.cluster, node: credential.node, url, joined_at: isoTime() };
  await writeAtomic(paths.state, `${JSON.stringify(state)}\n`, 0o600);
  options.log.info({ cluster: token.cluster, node: credential.node, stateDir }, 'joined the cluster');
  return { cluster: token.cluster, node: credential.node, url, stateDir, credentialsFile: paths.credentials, caFile: paths.ca };
}

/** For `node install --systemd` on the device: a saved join's identity, if the folder holds one. */
export { savedIdentity, stateDirFor };
