/**
 * `otto agent`: runs one node's agent. With a config (local nodes) every setting comes from it; a remote
 * node's agent gets them as flags, since it has no otto.yaml.
 */
import { existsSync } from 'node:fs';
import { loadConfig } from '../../config/load.js';
import { parseDuration } from '../../config/units.js';
import { UsageError } from '../../errors.js';
import { Workspace } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';

interface AgentFlags extends GlobalOptions {
  node: string;
  cluster?: string;
  mqttUrl?: string;
  dockerUrl?: string;
  stateDir?: string;
  interval?: string;
}

export async function agent(options: AgentFlags): Promise<void> {
  const [{ Agent }, { createLogger }, { brokerUrl }] = await Promise.all([
    import('../../agent/agent.js'),
    import('../../log.js'),
    import('../../protocol/broker-url.js'),
  ]);
  const loaded = existsSync(options.config) ? await loadConfig(options.config) : undefined;
  const config = loaded?.config;
  const node = config?.nodes.find((n) => n.id === options.node);
  if (config && !node) {
    throw new UsageError(`unknown node "${options.node}" in ${options.config}`, `nodes: ${config.nodes.map((n) => n.id).join(', ')}`);
  }
  const cluster = options.cluster ?? config?.cluster.name;
  const mqttUrl = options.mqttUrl ?? (config && brokerUrl(config.mqtt.host, config.mqtt.port));
  if (!cluster || !mqttUrl) throw new UsageError('without a config file, --cluster and --mqtt-url are required', `or pass -c otto.yaml`);
  const stateDir = options.stateDir ?? (loaded ? new Workspace(loaded.path).agentStateDir(options.node) : `${process.env.HOME}/.otto/state/${cluster}-${options.node}`);
  const interval = options.interval ?? config?.metrics.interval ?? '5s';
  let intervalMs: number;
  try {
    intervalMs = parseDuration(interval);
  } catch {
    throw new UsageError(`--interval: invalid duration "${interval}"`, 'use e.g. 5s, 500ms, 1m');
  }
  const logger = createLogger({ component: `agent[${options.node}]`, pretty: process.env.OTTO_LOG_PRETTY !== '0' });
  const agentInstance = new Agent({
    nodeId: options.node,
    cluster,
    mqttUrl,
    mqttUsername: config?.mqtt.username,
    mqttPassword: config?.mqtt.password,
    dockerUrl: options.dockerUrl ?? node?.docker_url ?? 'unix:///var/run/docker.sock',
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
}
