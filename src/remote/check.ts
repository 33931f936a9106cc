/**
 * `otto cluster check`: Otto's credentials and prerequisites, node by node, before anything is started.
 * For a remote node: SSH reachable, authenticated, host key trusted, architecture, Node.js, Docker
 * reachable, the broker reachable FROM the node, clock skew. For a local node: Docker and the broker.
 *
 * The broker: while the control plane runs, or with an external broker, the probe does a real MQTT
 * CONNECT (with the configured credentials). With an embedded broker and no control plane running, the
 * check listens on the broker's address itself for as long as it runs, and the probe must read back a
 * nonce from it: that proves the route and the firewall without starting anything.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { arch as localArch } from 'node:os';
import { join } from 'node:path';
import { isLocalNode, nodeKind } from '../config/nodes.js';
import type { NodeConfig, OttoConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { Credentials } from '../security/credentials.js';
import { KnownHosts } from './known-hosts.js';
import { sshTarget } from './manager.js';
import { ownClientId } from '../protocol/broker-auth.js';
import { brokerUrl } from '../protocol/broker-url.js';
import { redactUrl, remoteMqttUrl } from './mqtt-address.js';
import { PROBE_MJS, PROBE_NAME, type ProbeRequest, type ProbeResult } from './node-scripts.js';
import { MIN_NODE_MAJOR, RemoteAgent, localAgentBundle, nodeMajor, runtimeProblems, versionOnlyBundle, type AgentBundle } from './remote-agent.js';
import { SshConnection, SshError, shellQuote, type ConnectOptions } from './ssh-connection.js';
import { brokerCaFile, brokerTransport } from '../config/transport.js';

export const CHECKS = ['ssh', 'auth', 'host_key', 'arch', 'node_js', 'docker', 'broker', 'clock_skew'] as const;
export type CheckName = (typeof CHECKS)[number];
export const CHECK_TITLES: Record<CheckName, string> = {
  ssh: 'SSH',
  auth: 'AUTH',
  host_key: 'HOST KEY',
  arch: 'ARCH',
  node_js: 'NODE.JS',
  docker: 'DOCKER',
  broker: 'BROKER',
  clock_skew: 'CLOCK SKEW',
};

export interface CheckResult {
  /** `ok`, `fail`, or `skip` (not applicable, or not tried because an earlier check failed). */
  status: 'ok' | 'fail' | 'skip';
  /** Short text for the table cell. */
  value: string;
  /** What failed, one line. */
  error?: string;
  hint?: string;
}

export interface NodeCheck {
  node: string;
  local: boolean;
  target: string;
  checks: Record<CheckName, CheckResult>;
}

export interface CheckReport {
  ok: boolean;
  broker_mode: 'mqtt' | 'stand-in';
  nodes: NodeCheck[];
}

export const MAX_CLOCK_SKEW_MS = 2_000;

const ok = (value: string): CheckResult => ({ status: 'ok', value });
const skip = (value = '-'): CheckResult => ({ status: 'skip', value });
const fail = (value: string, error: string, hint?: string): CheckResult => ({ status: 'fail', value, error, hint });

function blank(): Record<CheckName, CheckResult> {
  return Object.fromEntries(CHECKS.map((name) => [name, skip()])) as Record<CheckName, CheckResult>;
}

function nodeArch(nodeArchName: string): string {
  return { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l' }[nodeArchName] ?? nodeArchName;
}

export interface CheckOptions {
  config: OttoConfig;
  /** The .otto folder. */
  workspaceDir: string;
  /** Whether the control plane (and so an embedded broker) runs now. */
  controlPlaneRunning: boolean;
  bundle?: AgentBundle;
  connect?: Partial<ConnectOptions>;
  timeoutMs?: number;
}


interface StandIn {
  nonce: string;
  close(): Promise<void>;
}

/** Listens where the embedded broker will, answering `otto-check <nonce>` to whoever connects. */
async function standInBroker(mqtt: OttoConfig['mqtt'], port: number): Promise<StandIn | undefined> {
  const nonce = randomBytes(8).toString('hex');
  const server: Server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end(`otto-check ${nonce}\n`);
  });
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, mqtt.host, () => resolve(true));
  });
  if (!listening) return undefined;
  return { nonce, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function dockerHint(nodeId: string, dockerUrl: string, error: string): string {
  if (/EACCES/.test(error)) return `the SSH user cannot use ${dockerUrl}: add it to the docker group on ${nodeId} (usermod -aG docker USER)`;
  return `start Docker on ${nodeId} (systemctl start docker), or fix nodes[].docker_url (now ${dockerUrl})`;
}

function brokerHint(nodeId: string, url: string, local: boolean): string {
  if (local) return `start the broker, or check mqtt.host / mqtt.port (the agent of ${nodeId} uses ${url})`;
  return `${nodeId} must reach ${url}: set mqtt.advertise to an address ${nodeId} can route to, make the broker listen on it (mqtt.host: 0.0.0.0) and open port in the firewall`;
}

function brokerResult(result: ProbeResult['broker'], nodeId: string, url: string, local: boolean): CheckResult {
  if (!result) return skip();
  const host = new URL(url).host;
  if (result.ok) return ok(`ok ${host}`);
  return fail('FAIL', `${nodeId} cannot reach the broker at ${redactUrl(url)}: ${result.error}`, brokerHint(nodeId, url, local));
}

function dockerResult(result: ProbeResult['docker'], nodeId: string, dockerUrl: string): CheckResult {
  if (!result) return skip();
  if (result.skipped) return ok(result.skipped);
  if (result.ok) return ok(`ok ${result.version ?? ''}`.trim());
  return fail('FAIL', `${nodeId}: Docker is not reachable at ${dockerUrl}: ${result.error}`, dockerHint(nodeId, dockerUrl, result.error ?? ''));
}

/** Runs the probe on this machine (local nodes), with this process's Node.js. */
async function probeLocally(workspaceDir: string, request: ProbeRequest): Promise<ProbeResult> {
  const dir = join(workspaceDir, 'check');
  await mkdir(dir, { recursive: true });
  const file = join(dir, PROBE_NAME);
  await writeFile(file, PROBE_MJS);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(err.trim() || `probe exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ProbeResult);
    });
    child.stdin.end(JSON.stringify(request));
  });
}

async function checkLocal(node: NodeConfig, options: CheckOptions, broker: ProbeRequest['broker']): Promise<NodeCheck> {
  const checks = blank();
  checks.arch = ok(nodeArch(localArch()));
  const major = nodeMajor(process.version);
  checks.node_js = major !== undefined && major >= MIN_NODE_MAJOR ? ok(process.version) : fail(process.version, `Node.js ${process.version} is too old`, `use Node.js >= ${MIN_NODE_MAJOR}`);
  try {
    const result = await probeLocally(options.workspaceDir, { docker: node.docker_url, broker, timeoutMs: options.timeoutMs ?? 5_000 });
    checks.docker = dockerResult(result.docker, node.id, node.docker_url);
    checks.broker = brokerResult(result.broker, node.id, broker!.url, true);
  } catch (err) {
    checks.docker = fail('FAIL', `${node.id}: the local probe failed: ${errorMessage(err)}`);
  }
  return { node: node.id, local: true, target: 'local', checks };
}

function connectFailure(checks: Record<CheckName, CheckResult>, err: unknown): void {
  if (!(err instanceof SshError)) {
    checks.ssh = fail('FAIL', errorMessage(err), (err as { hint?: string }).hint);
    return;
  }
  switch (err.kind) {
    case 'unreachable':
    case 'timeout':
    case 'closed':
      checks.ssh = fail('FAIL', err.message, err.hint);
      return;
    case 'host-key-unknown':
    case 'host-key-changed':
    case 'host-key-revoked':
      checks.ssh = ok('ok');
      checks.host_key = fail(err.kind === 'host-key-unknown' ? 'UNKNOWN' : err.kind === 'host-key-changed' ? 'CHANGED' : 'REVOKED', err.message, err.hint);
      return;
    case 'auth':
    case 'no-key':
      checks.ssh = ok('ok');
      checks.host_key = ok('trusted');
      checks.auth = fail('FAIL', err.message, err.hint);
      return;
    default:
      checks.ssh = fail('FAIL', err.message, err.hint);
  }
}

async function checkRemote(node: NodeConfig, options: CheckOptions, broker: ProbeRequest['broker'], knownHosts: KnownHosts): Promise<NodeCheck> {
  const target = sshTarget(node);
  const checks = blank();
  const report: NodeCheck = { node: node.id, local: false, target: `${target.user}@${target.host}:${target.port}`, checks };
  let conn: SshConnection;
  try {
    conn = await SshConnection.connect(target, { knownHosts, readyTimeoutMs: options.timeoutMs ?? 10_000, keepaliveIntervalMs: 0, ...options.connect });
  } catch (err) {
    connectFailure(checks, err);
    return report;
  }
  try {
    checks.ssh = ok('ok');
    checks.host_key = ok('trusted');
    checks.auth = ok(target.user);
    const agent = new RemoteAgent(conn, node.id, options.config.cluster.name, options.bundle ?? fallbackBundle());
    const facts = await agent.facts();
    const problems = runtimeProblems(node.id, facts);
    const archProblem = problems.find((p) => /architecture|not supported/.test(p.message));
    checks.arch = archProblem ? fail(facts.arch, archProblem.message, archProblem.hint) : ok(facts.arch);
    const nodeProblem = problems.find((p) => /Node\.js/.test(p.message));
    checks.node_js = nodeProblem ? fail(facts.nodeVersion ?? 'none', nodeProblem.message, nodeProblem.hint) : ok(facts.nodeVersion!);

    const paths = await agent.installHelpers();
    // Clock: the node's time in ms, against the middle of the round trip.
    const before = Date.now();
    const now = await conn.exec(['/bin/sh', paths.helper, 'now'].map(shellQuote).join(' '), { timeoutMs: 10_000 });
    const after = Date.now();
    const remoteMs = Number(now.stdout.trim());
    if (now.code === 0 && Number.isFinite(remoteMs) && remoteMs > 0) {
      const skew = remoteMs - (before + after) / 2;
      const text = `${skew >= 0 ? '+' : '-'}${(Math.abs(skew) / 1000).toFixed(2)}s`;
      checks.clock_skew =
        Math.abs(skew) > MAX_CLOCK_SKEW_MS
          ? fail(text, `${node.id}: clock is ${text} off this machine's (more than ${MAX_CLOCK_SKEW_MS / 1000}s)`, `run NTP on ${node.id} (timedatectl set-ntp true) and on this machine`)
          : ok(text);
    } else {
      checks.clock_skew = fail('FAIL', `${node.id}: cannot read the clock: ${now.stderr.trim() || now.stdout.trim()}`);
    }

    if (facts.node) {
      const result = await agent.probe({ docker: node.docker_url, broker, timeoutMs: options.timeoutMs ?? 5_000 });
      checks.docker = dockerResult(result.docker, node.id, node.docker_url);
      checks.broker = brokerResult(result.broker, node.id, broker!.url, false);
    } else {
      const why = `needs Node.js on ${node.id}`;
      checks.docker = skip('-');
      checks.broker = skip('-');
      checks.node_js.hint = `${checks.node_js.hint ?? ''}${checks.node_js.hint ? '; ' : ''}Docker and broker checks ${why}`;
    }
  } catch (err) {
    const failed = CHECKS.find((name) => checks[name].status === 'skip' && name !== 'auth') ?? 'ssh';
    checks[failed] = fail('FAIL', errorMessage(err), (err as { hint?: string }).hint);
  } finally {
    conn.close();
  }
  return report;
}

let cachedBundle: AgentBundle | undefined;
function fallbackBundle(): AgentBundle {
  // The check uploads no bundle; it needs a version for the paths only.
  if (cachedBundle) return cachedBundle;
  try {
    cachedBundle = localAgentBundle();
  } catch {
    cachedBundle = versionOnlyBundle('check');
  }
  return cachedBundle;
}

export async function runClusterCheck(options: CheckOptions): Promise<CheckReport> {
  const { config } = options;
  const useStandIn = config.mqtt.embedded && !options.controlPlaneRunning;
  const standIn = useStandIn ? await standInBroker(config.mqtt, brokerTransport(config).port) : undefined;
  const knownHosts = KnownHosts.forWorkspace(options.workspaceDir);
  // Each node checks the broker with its own credential, as its agent will connect.
  const store = await new Credentials(join(options.workspaceDir, 'credentials.json')).load().catch(() => undefined);
  const credentialsOf = (nodeId: string) => {
    const password = store?.password(nodeId);
    // The node's own client id (a session under its agent's), as the broker accepts from no one else.
    return password ? { username: nodeId, password, clientId: `${ownClientId('agent', config.cluster.name, nodeId, password)}-check` } : {};
  };
  const caFile = brokerCaFile(config, join(options.workspaceDir, 'tls'));
  const ca = caFile ? await readFile(caFile, 'utf8').catch(() => undefined) : undefined;
  try {
    const nodes = await Promise.all(
      config.nodes.map((node) => {
        // A node that dials in is not reached from here: its agent says how it is when it joins.
        if (nodeKind(node) === 'joined') return { node: node.id, local: false, target: 'joins by itself', checks: { ...blank(), ssh: skip('joins') } } as NodeCheck;
        const local = isLocalNode(node);
        const transport = brokerTransport(config);
        const localUrl = brokerUrl(config.mqtt.host, transport.port, transport.tls);
        const url = local ? localUrl : (remoteMqttUrl(config) ?? localUrl);
        const broker = standIn ? { url, nonce: standIn.nonce } : { url, ...credentialsOf(node.id), ...(ca ? { ca } : {}) };
        return local ? checkLocal(node, options, broker) : checkRemote(node, options, broker, knownHosts);
      }),
    );
    return { ok: nodes.every((n) => CHECKS.every((c) => n.checks[c].status !== 'fail')), broker_mode: standIn ? 'stand-in' : 'mqtt', nodes };
  } finally {
    await standIn?.close();
  }
}

