/**
 * `otto agent`: runs one node's agent. With a config (local nodes) every setting comes from it; a remote
 * node's agent gets them as flags, since it has no otto.yaml. The broker credentials are never flags (a
 * command line is visible to every user of the machine): `--mqtt-credentials-file` names a JSON file
 * {"username": ..., "password": ...} (Otto writes it with mode 0600: the node's own credential), or the
 * environment has OTTO_MQTT_USERNAME / OTTO_MQTT_PASSWORD; without either, the agent reads mqtt.json in its
 * state folder, where `otto cluster start` puts a local node's credential.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDuration } from '../../config/units.js';
import { UsageError, errorMessage } from '../../errors.js';
import type { GlobalOptions } from '../options.js';

interface AgentFlags extends GlobalOptions {
  node?: string;
  join?: string | boolean;
  token?: string;
  nodeId?: string;
  cluster?: string;
  mqttUrl?: string;
  dockerUrl?: string;
  stateDir?: string;
  interval?: string;
  mqttCredentialsFile?: string;
  mqttCaFile?: string;
}

interface Credentials {
  username?: string;
  password?: string;
  /** Set when the file can be read by other users than its owner. */
  warning?: string;
}

/** The broker credentials from --mqtt-credentials-file, else OTTO_MQTT_USERNAME/PASSWORD, else none. */
export function agentCredentials(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  if (file) {
    let parsed: unknown;
    let mode: number;
    try {
      mode = statSync(file).mode;
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof SyntaxError ? 'not JSON' : String(err));
      throw new UsageError(`--mqtt-credentials-file: cannot read ${file}: ${reason}`, 'it holds {"username": "...", "password": "..."}; `otto cluster start` writes it on remote nodes');
    }
    const { username, password } = (parsed ?? {}) as { username?: unknown; password?: unknown };
    if (typeof username !== 'string' || (password !== undefined && typeof password !== 'string')) {
      throw new UsageError(`--mqtt-credentials-file: ${file} has no string "username" (and optional string "password")`, 'it holds {"username": "...", "password": "..."}');
    }
    const warning = mode & 0o077 ? `${file} can be read by other users (mode ${(mode & 0o777).toString(8)}): chmod 600 it` : undefined;
    return { username, password, warning };
  }
  if (env.OTTO_MQTT_USERNAME) return { username: env.OTTO_MQTT_USERNAME, password: env.OTTO_MQTT_PASSWORD };
  return undefined;
}

export async function agent(options: AgentFlags): Promise<void> {
  const [{ Agent }, { createLogger }, { collectGarbageEvery }] = await Promise.all([
    import('../../agent/agent.js'),
    import('../../log.js'),
    import('../../agent/garbage-collection.js'),
  ]);
  if (options.join !== undefined) {
    // A device that dials in: everything comes from its join (the token the first time, its state after).
    const { joinCluster } = await import('../../agent/join.js');
    const joined = await joinCluster({
      url: typeof options.join === 'string' ? options.join : undefined,
      token: options.token,
      nodeId: options.nodeId,
      stateDir: options.stateDir,
      log: createLogger({ component: 'join', pretty: process.env.OTTO_LOG_PRETTY !== '0' }),
    });
    Object.assign(options, {
      node: joined.node,
      cluster: joined.cluster,
      mqttUrl: joined.url,
      mqttCredentialsFile: joined.credentialsFile,
      mqttCaFile: joined.caFile,
      stateDir: joined.stateDir,
      config: '',
    });
  } else if (options.token || options.nodeId) {
    throw new UsageError(`${options.token ? '--token' : '--node-id'} goes with --join`, 'run the line `otto node join-command NODE|POOL` printed');
  }
  if (!options.node) throw new UsageError('--node is required (or --join, for a node that dials in)', 'otto cluster start runs the agents of its nodes for you');
  const nodeId = options.node;
  // Only a local agent started by hand reads the config: the control plane passes every setting as a flag
  // (agent-settings.ts), and its agents, started where otto.yaml is, must not load it (the config's
  // schemas and YAML parser are several MB of an agent's memory).
  const flagsSayAll = [options.cluster, options.mqttUrl, options.stateDir, options.interval].every((flag) => flag !== undefined);
  const readConfig = !flagsSayAll && options.config && existsSync(options.config);
  const fromConfig = readConfig ? await (await import('./agent-settings.js')).agentSettingsFromConfig(options.config, nodeId) : undefined;
  const cluster = options.cluster ?? fromConfig?.cluster;
  const mqttUrl = options.mqttUrl ?? fromConfig?.mqttUrl;
  if (!cluster || !mqttUrl) throw new UsageError('without a config file, --cluster and --mqtt-url are required', `or pass -c otto.yaml`);
  const stateDir = options.stateDir ?? fromConfig?.stateDir ?? `${process.env.HOME}/.otto/state/${cluster}-${nodeId}`;
  const interval = options.interval ?? fromConfig?.interval ?? '5s';
  let intervalMs: number;
  try {
    intervalMs = parseDuration(interval);
  } catch {
    throw new UsageError(`--interval: invalid duration "${interval}"`, 'use e.g. 5s, 500ms, 1m');
  }
  // The node's own credential: the file named, else the one Otto keeps in the node's state folder.
  const defaultFile = join(stateDir, 'mqtt.json');
  const credentials = agentCredentials(options.mqttCredentialsFile ?? (existsSync(defaultFile) ? defaultFile : undefined)) ?? {};
  const caFile = options.mqttCaFile ?? fromConfig?.caFile;
  let mqttCa: string | undefined;
  if (caFile) {
    try {
      mqttCa = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new UsageError(`--mqtt-ca-file: cannot read ${caFile}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, 'it is the PEM of the CA that signed the broker certificate (.otto/tls/ca.pem)');
    }
  }
  const logger = createLogger({ component: `agent[${nodeId}]`, pretty: process.env.OTTO_LOG_PRETTY !== '0' });
  if (credentials.warning) logger.warn(credentials.warning);
  const agentInstance = new Agent({
    nodeId,
    cluster,
    mqttUrl,
    mqttUsername: credentials.username,
    mqttPassword: credentials.password,
    mqttCa,
    dockerUrl: options.dockerUrl ?? fromConfig?.dockerUrl ?? 'unix:///var/run/docker.sock',
    stateDir,
    metricsIntervalMs: intervalMs,
    logger,
  });
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await agentInstance.stop().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  await agentInstance.start();
  collectGarbageEvery();
}
