/**
 * The agent of one remote node, driven over one SSH connection. Nothing is installed on the node by hand
 * but Docker, SSH and Node.js >= 18: Otto uploads its agent as one bundled file (and zod, beside it) to
 * ~/.otto/agent/<version>/otto-agent.cjs and starts it detached (nohup setsid), so that it outlives the
 * SSH connection, from a start script file; the pid and the agent's version are recorded beside it.
 *
 * Layout on the node (~ is the SSH user's home):
 *   ~/.otto/agent/<version>/otto-agent.cjs (+ .sha256)   the bundle
 *   ~/.otto/agent/<version>/otto-agent.zod.cjs            zod, which the bundle loads only when it needs it
 *   ~/.otto/agent/<cluster>-<node>.start.sh              how to start this node's agent (systemd runs it too)
 *   ~/.otto/agent/<cluster>-<node>.pid / .version / .log
 *   ~/.otto/agent/otto-node-<hash>.sh, otto-probe-<hash>.mjs   helpers
 *   ~/.otto/state/<cluster>-<node>/                       the agent's state (last desired state)
 *   ~/.otto/state/<cluster>-<node>/mqtt.json              the broker credentials (mode 0600), when mqtt.username is set
 *
 * The broker credentials never appear on the agent's command line (which `ps` shows every user of the
 * node): the agent gets `--mqtt-url` without them and `--mqtt-credentials-file` naming mqtt.json.
 */
import { createHash } from 'node:crypto';
import { InfrastructureError } from '../errors.js';
import { LABEL } from '../protocol/labels.js';
import { splitMqttCredentials, type MqttCredentials } from './mqtt-address.js';
import { NODE_HELPER_NAME, NODE_HELPER_SH, PROBE_MJS, PROBE_NAME, type ProbeRequest, type ProbeResult } from './node-scripts.js';
import { SshError, shellQuote, type SshConnection } from './ssh-connection.js';
import { AGENT_ENV, AGENT_NODE_FLAGS, loadAgentBundle, localAgentBundle, versionOnlyBundle, type AgentBundle } from '../agent/bundle.js';
import { zodFileOf } from '../agent/zod-beside.js';

export { loadAgentBundle, localAgentBundle, versionOnlyBundle, type AgentBundle };

export const SUPPORTED_ARCHES = ['x86_64', 'aarch64', 'armv7l'] as const;
export const MIN_NODE_MAJOR = 18;

export interface NodeFacts {
  arch: string;
  os: string;
  user: string;
  uid: number;
  home: string;
  /** Path of the Node.js runtime found, if any. */
  node?: string;
  nodeVersion?: string;
  dockerCli?: string;
  systemctl?: string;
  systemd: boolean;
  setsid?: string;
}

export function parseFacts(text: string): NodeFacts {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  const get = (key: string) => values.get(key) || undefined;
  return {
    arch: get('arch') ?? 'unknown',
    os: get('os') ?? 'unknown',
    user: get('user') ?? '?',
    uid: Number(get('uid') ?? -1),
    home: get('home') ?? '',
    node: get('node'),
    nodeVersion: get('node_version'),
    dockerCli: get('docker_cli'),
    systemctl: get('systemctl'),
    systemd: get('systemd') === 'running',
    setsid: get('setsid'),
  };
}

export function nodeMajor(version: string | undefined): number | undefined {
  const match = /^v?(\d+)\./.exec(version ?? '');
  return match ? Number(match[1]) : undefined;
}

/** Problems with the node as a place to run the agent: unsupported arch, no or too old Node.js. */
export function runtimeProblems(nodeId: string, facts: NodeFacts): { message: string; hint: string }[] {
  const problems: { message: string; hint: string }[] = [];
  if (facts.os !== 'Linux') problems.push({ message: `${nodeId}: ${facts.os} is not supported (Otto agents run on Linux)`, hint: 'use a Linux node' });
  if (!(SUPPORTED_ARCHES as readonly string[]).includes(facts.arch)) {
    problems.push({ message: `${nodeId}: architecture ${facts.arch} is not supported`, hint: `supported: ${SUPPORTED_ARCHES.join(', ')}` });
  }
  const major = nodeMajor(facts.nodeVersion);
  if (!facts.node) {
    problems.push({
      message: `${nodeId}: no Node.js runtime found (Otto's agent needs Node.js >= ${MIN_NODE_MAJOR})`,
      hint: `install it on ${nodeId}, e.g. apt-get install nodejs (Debian 12+, Raspberry Pi OS bookworm+)`,
    });
  } else if (major === undefined || major < MIN_NODE_MAJOR) {
    problems.push({
      message: `${nodeId}: Node.js ${facts.nodeVersion ?? '(unknown version)'} at ${facts.node} is too old (Otto's agent needs >= ${MIN_NODE_MAJOR})`,
      hint: `upgrade Node.js on ${nodeId} to ${MIN_NODE_MAJOR} or later`,
    });
  }
  return problems;
}

export interface RemoteAgentSettings {
  cluster: string;
  /**
   * Broker URL as the node reaches it. Credentials in it (the node's own, put there by the manager) are
   * taken out: the agent reads them from paths.mqttCredentials.
   */
  mqttUrl: string;
  /** PEM of the CA the agent verifies the broker with (mqtts), uploaded to paths.mqttCa. */
  ca?: string;
  /** metrics.interval */
  interval: string;
  dockerUrl: string;
}

export interface AgentPaths {
  home: string;
  base: string;
  name: string;
  bundleDir: string;
  bundle: string;
  /** zod, beside the bundle, which loads it from there (agent/zod-beside.ts). */
  bundleZod: string;
  startScript: string;
  pidFile: string;
  versionFile: string;
  logFile: string;
  stateDir: string;
  /** The broker credentials, JSON, mode 0600. */
  mqttCredentials: string;
  /** The CA of the broker's certificate, PEM. */
  mqttCa: string;
  helper: string;
  probe: string;
  unit: string;
}

export function agentPaths(home: string, cluster: string, nodeId: string, version: string): AgentPaths {
  const base = `${home.replace(/\/$/, '')}/.otto/agent`;
  const name = `${cluster}-${nodeId}`;
  const bundle = `${base}/${version}/otto-agent.cjs`;
  return {
    home,
    base,
    name,
    bundleDir: `${base}/${version}`,
    bundle,
    bundleZod: zodFileOf(bundle),
    startScript: `${base}/${name}.start.sh`,
    pidFile: `${base}/${name}.pid`,
    versionFile: `${base}/${name}.pid.version`,
    logFile: `${base}/${name}.log`,
    stateDir: `${home.replace(/\/$/, '')}/.otto/state/${name}`,
    mqttCredentials: `${home.replace(/\/$/, '')}/.otto/state/${name}/mqtt.json`,
    mqttCa: `${home.replace(/\/$/, '')}/.otto/state/${name}/ca.pem`,
    helper: `${base}/${NODE_HELPER_NAME}`,
    probe: `${base}/${PROBE_NAME}`,
    unit: `otto-agent-${name}.service`,
  };
}

/** The broker credentials of these settings (from the user info of mqttUrl), if any. */
export function agentCredentials(settings: RemoteAgentSettings): MqttCredentials | undefined {
  return splitMqttCredentials(settings.mqttUrl).credentials;
}

/**
 * The agent's command line (also what the systemd unit and `ps` show): no secret on it, the broker URL
 * without its user info, and the file with the credentials when there are some.
 */
export function agentArgs(nodeId: string, paths: AgentPaths, settings: RemoteAgentSettings): string[] {
  const { url, credentials } = splitMqttCredentials(settings.mqttUrl);
  return [
    ...AGENT_NODE_FLAGS,
    paths.bundle,
    'agent',
    '--node',
    nodeId,
    '--cluster',
    settings.cluster,
    '--mqtt-url',
    url,
    ...(credentials ? ['--mqtt-credentials-file', paths.mqttCredentials] : []),
    ...(settings.ca ? ['--mqtt-ca-file', paths.mqttCa] : []),
    '--docker-url',
    settings.dockerUrl,
    '--state-dir',
    paths.stateDir,
    '--interval',
    settings.interval,
  ];
}

/**
 * A hash of everything the agent is started with: a change (new URL, credentials, interval) restarts it.
 * It lands in a file under ~/.otto/agent (mode 0700), 8 hex digits of a SHA-256.
 */
export function settingsHash(nodeId: string, settings: RemoteAgentSettings): string {
  return createHash('sha256').update(JSON.stringify([nodeId, settings])).digest('hex').slice(0, 8);
}

/**
 * The start script: starts the agent detached from the SSH session (setsid + nohup, standard streams on
 * the log file), writes its pid and version beside it, and exits. systemd (Type=forking) runs it too.
 * It holds no secret: the broker credentials are in paths.mqttCredentials (see writeStartFiles).
 */
export function startScript(nodeId: string, paths: AgentPaths, bundle: AgentBundle, settings: RemoteAgentSettings, nodeBin: string): string {
  const q = shellQuote;
  const command = agentArgs(nodeId, paths, settings).map(q).join(' ');
  const environment = Object.entries(AGENT_ENV).map(([name, value]) => `${name}=${q(value)}`).join(' ');
  return `#!/bin/sh
# Otto agent of node ${nodeId} in cluster ${settings.cluster}: ${bundle.id}.
# Written by Otto (otto cluster start); run by it, or by systemd when \`otto node install --systemd\` was run.
set -eu
NODE=${q(nodeBin)}
if [ ! -x "$NODE" ]; then NODE=$(command -v node || true); fi
if [ -z "$NODE" ]; then echo "otto: no Node.js runtime on this node" >&2; exit 1; fi
SETSID=$(command -v setsid || true)
mkdir -p ${q(paths.stateDir)}
# Keep the log from growing without bound: one old copy.
if [ -f ${q(paths.logFile)} ] && [ "$(wc -c < ${q(paths.logFile)})" -gt 10485760 ]; then mv -f ${q(paths.logFile)} ${q(`${paths.logFile}.1`)}; fi
cd ${q(paths.bundleDir)}
unset OTTO_CONFIG
OTTO_LOG_PRETTY=1 ${environment} nohup $SETSID "$NODE" ${command} </dev/null >>${q(paths.logFile)} 2>&1 &
pid=$!
echo "$pid" > ${q(`${paths.pidFile}.tmp`)}
mv -f ${q(`${paths.pidFile}.tmp`)} ${q(paths.pidFile)}
echo ${q(`${bundle.id} ${settingsHash(nodeId, settings)}`)} > ${q(paths.versionFile)}
`;
}

export interface AgentStatus {
  running: boolean;
  pid?: number;
  /** `<version>+<hash>` of the running agent. */
  version?: string;
  settings?: string;
}

export type StartAction = 'started' | 'kept' | 'replaced' | 'restarted';

export interface StartResult {
  pid: number;
  action: StartAction;
  /** The version replaced, for `replaced`. */
  previous?: string;
}

export class RemoteAgent {
  private pathsCache?: AgentPaths;
  private helpersReady = false;
  private factsCache?: NodeFacts;

  constructor(
    readonly conn: SshConnection,
    readonly nodeId: string,
    readonly cluster: string,
    readonly bundle: AgentBundle,
  ) {}

  async paths(): Promise<AgentPaths> {
    this.pathsCache ??= agentPaths(await this.conn.home(), this.cluster, this.nodeId, this.bundle.version);
    return this.pathsCache;
  }

  /** Uploads the helper scripts if this version of them is not on the node yet. */
  async installHelpers(): Promise<AgentPaths> {
    const paths = await this.paths();
    if (this.helpersReady) return paths;
    await this.conn.mkdirp(paths.base, 0o700);
    if (!(await this.conn.stat(paths.helper))) await this.conn.writeFile(paths.helper, NODE_HELPER_SH, 0o700);
    if (!(await this.conn.stat(paths.probe))) await this.conn.writeFile(paths.probe, PROBE_MJS, 0o600);
    this.helpersReady = true;
    return paths;
  }

  private async helper(args: string[], what: string, timeoutMs = 30_000): Promise<string> {
    const paths = await this.installHelpers();
    return this.conn.run(['/bin/sh', paths.helper, ...args].map(shellQuote).join(' '), what, { timeoutMs });
  }

  async facts(refresh = false): Promise<NodeFacts> {
    if (this.factsCache && !refresh) return this.factsCache;
    this.factsCache = parseFacts(await this.helper(['facts'], 'reading the node facts (uname, node --version)'));
    return this.factsCache;
  }

  /** Facts, or an error when the node cannot run the agent (unsupported arch, no or old Node.js). */
  async preflight(): Promise<NodeFacts> {
    const facts = await this.facts(true);
    const problems = runtimeProblems(this.nodeId, facts);
    if (problems.length) throw new InfrastructureError(problems.map((p) => p.message).join('; '), problems.map((p) => p.hint).join('; '));
    return facts;
  }

  /** Runs the probe on the node with its Node.js runtime. */
  async probe(request: ProbeRequest): Promise<ProbeResult> {
    const paths = await this.installHelpers();
    const facts = await this.facts();
    if (!facts.node) throw new InfrastructureError(`${this.nodeId}: no Node.js runtime to run the probe`);
    const output = await this.conn.run([facts.node, paths.probe].map(shellQuote).join(' '), 'the probe', {
      stdin: JSON.stringify(request),
      timeoutMs: (request.timeoutMs ?? 5_000) + 15_000,
    });
    return JSON.parse(output.trim().split('\n').at(-1)!) as ProbeResult;
  }

  /** The piece of the agent's command line that tells it from any other process (and other agents). */
  get match(): string {
    return ` agent --node ${this.nodeId} --cluster ${this.cluster} `;
  }

  async status(): Promise<AgentStatus> {
    const paths = await this.paths();
    const line = (await this.helper(['status', paths.pidFile, this.match], 'checking the agent')).trim();
    const [state, pid, version, settings] = line.split(/\s+/);
    if (state !== 'running') return { running: false };
    return { running: true, pid: Number(pid), version, settings };
  }

  /**
   * Writes what starting the agent needs besides the bundle: the broker credentials file (mode 0600, in
   * the state folder, created mode 0700), or no such file when the broker wants none, and the start script.
   */
  async writeStartFiles(settings: RemoteAgentSettings, nodeBin: string): Promise<AgentPaths> {
    const paths = await this.installHelpers();
    const credentials = agentCredentials(settings);
    if (credentials) {
      await this.conn.mkdirp(paths.stateDir, 0o700);
      await this.conn.writeFile(paths.mqttCredentials, `${JSON.stringify(credentials)}\n`, 0o600);
    } else if (await this.conn.stat(paths.mqttCredentials)) {
      await this.conn.remove(paths.mqttCredentials);
    }
    if (settings.ca) {
      await this.conn.mkdirp(paths.stateDir, 0o700);
      await this.conn.writeFile(paths.mqttCa, settings.ca, 0o644);
    }
    await this.conn.writeFile(paths.startScript, startScript(this.nodeId, paths, this.bundle, settings, nodeBin), 0o700);
    return paths;
  }

  /**
   * Removes (force: running ones too) every container of this node of this cluster, as its labels say,
   * through the node's Docker engine at `dockerUrl`; talks to the engine from the probe, so the node
   * needs no docker CLI. Stop the agent first, or it creates them again. `removed` counts the containers
   * removed, also when some could not be (`error`).
   */
  async removeContainers(dockerUrl: string, timeoutMs = 300_000): Promise<{ removed: number; error?: string }> {
    const labels = [`${LABEL.cluster}=${this.cluster}`, `${LABEL.node}=${this.nodeId}`];
    const result = (await this.probe({ remove: { docker: dockerUrl, labels }, timeoutMs })).remove;
    if (!result) return { removed: 0, error: 'the probe on the node gave no answer about the removal' };
    const removed = result.removed ?? 0;
    return result.ok ? { removed } : { removed, error: `Docker at ${dockerUrl}: ${result.error ?? 'unknown error'}` };
  }

  /**
   * Uploads the bundle and its zod file unless the node has this very build already. The digest goes last,
   * so an upload cut half-way is done again.
   */
  async ensureBundle(): Promise<boolean> {
    const paths = await this.paths();
    const remoteHash = (await this.conn.readFile(`${paths.bundle}.sha256`))?.trim();
    const present = (await Promise.all([this.conn.stat(paths.bundle), this.conn.stat(paths.bundleZod)])).every((stat) => stat !== undefined);
    if (remoteHash === this.bundle.sha256 && present) return false;
    await this.conn.mkdirp(paths.bundleDir, 0o755);
    await this.conn.upload(this.bundle.zodPath, paths.bundleZod, 0o644);
    await this.conn.upload(this.bundle.path, paths.bundle, 0o644);
    await this.conn.writeFile(`${paths.bundle}.sha256`, `${this.bundle.sha256}\n`);
    return true;
  }

  /**
   * Starts this node's agent unless the same build with the same settings already runs. An agent of
   * another version (an older Otto's) or other settings is stopped first and replaced.
   */
  async start(settings: RemoteAgentSettings): Promise<StartResult> {
    const facts = await this.preflight();
    const paths = await this.installHelpers();
    const current = await this.status();
    const wanted = settingsHash(this.nodeId, settings);
    if (current.running && current.version === this.bundle.id && current.settings === wanted) {
      return { pid: current.pid!, action: 'kept' };
    }
    await this.ensureBundle();
    await this.writeStartFiles(settings, facts.node!);
    let action: StartAction = 'started';
    if (current.running) {
      await this.stop();
      action = current.version === this.bundle.id ? 'restarted' : 'replaced';
    }
    const result = await this.conn.exec(['/bin/sh', paths.helper, 'start', paths.startScript, paths.pidFile, paths.unit, this.match].map(shellQuote).join(' '), { timeoutMs: 60_000 });
    const out = result.stdout.trim();
    const pid = /^started (\d+)/m.exec(out)?.[1];
    if (result.code !== 0 || !pid) {
      const tail = await this.logTail(5);
      const last = tail.trim().split('\n').filter(Boolean).at(-1) ?? (result.stderr.trim() || out || 'no output');
      throw new InfrastructureError(`${this.nodeId}: the agent exited right after it started: ${last}`, `see ${paths.logFile} on ${this.nodeId}`);
    }
    return { pid: Number(pid), action, previous: action === 'replaced' ? current.version : undefined };
  }

  /** Stops the agent (SIGTERM, then SIGKILL after `timeoutSeconds`) and checks it is gone. */
  async stop(timeoutSeconds = 10): Promise<{ pid?: number; wasRunning: boolean }> {
    const paths = await this.paths();
    const out = (await this.helper(['stop', paths.pidFile, paths.unit, String(timeoutSeconds), this.match], 'stopping the agent', (timeoutSeconds + 20) * 1000)).trim();
    const stopped = /^stopped (\d+)/.exec(out);
    if (stopped) return { pid: Number(stopped[1]), wasRunning: true };
    if (out.startsWith('not-running')) return { wasRunning: false };
    throw new SshError(`${this.nodeId}: the agent did not stop: ${out}`, `kill it by hand on ${this.nodeId}`, 'command');
  }

  async logTail(lines = 20): Promise<string> {
    const paths = await this.paths();
    const result = await this.conn.exec(['tail', '-n', String(lines), paths.logFile].map(shellQuote).join(' '), { timeoutMs: 10_000 });
    return result.code === 0 ? result.stdout : '';
  }
}
