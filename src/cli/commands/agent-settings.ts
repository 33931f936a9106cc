/**
 * What a local node's agent takes from otto.yaml: its cluster, broker, Docker engine, state folder and
 * metrics interval. Loaded only when there is a config: parsing and validating otto.yaml costs the agent
 * process about 2 MB of heap for good (YAML parser, config schema), so the control plane resolves these
 * for the agents it supervises and passes them as flags (agentSettingsFlags), like a remote node gets them.
 */
import { loadConfig } from '../../config/load.js';
import { brokerCaFile, brokerTransport } from '../../config/transport.js';
import { UsageError } from '../../errors.js';
import { brokerUrl } from '../../protocol/broker-url.js';
import { Workspace } from '../../workspace.js';

export interface AgentSettings {
  cluster: string;
  mqttUrl: string;
  stateDir: string;
  /** The metrics interval until the control plane sends one, as written in otto.yaml (e.g. `5s`). */
  interval: string;
  /** Set only when the node names one; the agent's default is the local socket. */
  dockerUrl?: string;
  /** PEM of the broker's CA, when the broker speaks TLS. */
  caFile?: string;
}

export async function agentSettingsFromConfig(configPath: string, nodeId: string): Promise<AgentSettings> {
  const loaded = await loadConfig(configPath);
  const { config } = loaded;
  const node = config.nodes.find((n) => n.id === nodeId);
  if (!node) throw new UsageError(`unknown node "${nodeId}" in ${configPath}`, `nodes: ${config.nodes.map((n) => n.id).join(', ')}`);
  const workspace = new Workspace(loaded.path);
  const transport = brokerTransport(config);
  return {
    cluster: config.cluster.name,
    mqttUrl: brokerUrl(config.mqtt.host, transport.port, transport.tls),
    stateDir: workspace.agentStateDir(nodeId),
    interval: config.metrics.interval,
    dockerUrl: node.docker_url,
    caFile: brokerCaFile(config, workspace.tlsDir),
  };
}

/** The same settings as `otto agent` flags: the agent then never reads otto.yaml. */
export function agentSettingsFlags(settings: AgentSettings): string[] {
  return [
    '--cluster', settings.cluster,
    '--mqtt-url', settings.mqttUrl,
    '--state-dir', settings.stateDir,
    '--interval', settings.interval,
    ...(settings.dockerUrl ? ['--docker-url', settings.dockerUrl] : []),
    ...(settings.caFile ? ['--mqtt-ca-file', settings.caFile] : []),
  ];
}
