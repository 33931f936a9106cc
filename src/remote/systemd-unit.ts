/**
 * `otto node install NODE --systemd`: a systemd unit so a remote node's agent survives a reboot. The unit
 * runs the same start script `otto cluster start` writes (Type=forking, PIDFile = the agent's pid file),
 * so Otto and systemd agree on which process is the agent; once the unit is enabled, the node helper
 * starts and stops the agent through systemctl.
 */
import { AGENT_ENV } from '../agent/bundle.js';
import { InfrastructureError } from '../errors.js';
import type { AgentPaths, NodeFacts, RemoteAgent, RemoteAgentSettings } from './remote-agent.js';
import { SshError, shellQuote } from './ssh-connection.js';

export const SYSTEM_UNIT_DIR = '/etc/systemd/system';

export function systemdUnit(options: { nodeId: string; cluster: string; user: string; paths: AgentPaths; bundleId: string }): string {
  const { paths } = options;
  return agentUnit({
    ...options,
    home: paths.home,
    comment: `written by \`otto node install ${options.nodeId} --systemd\`.\n# The agent was ${options.bundleId} when installed; \`otto cluster start\` updates the start script it runs.`,
    service: ['Type=forking', `PIDFile=${paths.pidFile}`, `ExecStart=/bin/sh ${paths.startScript}`, 'Restart=on-failure'],
  });
}

/** One agent unit; `service` is what differs between an SSH node's agent and one that joined by itself. */
function agentUnit(options: { nodeId: string; cluster: string; user: string; home: string; comment: string; service: string[] }): string {
  const { nodeId, cluster } = options;
  const [type, ...rest] = options.service;
  return `# Otto agent of node ${nodeId} in cluster ${cluster}; ${options.comment}
[Unit]
Description=Otto agent of node ${nodeId} (cluster ${cluster})
Wants=network-online.target
After=network-online.target docker.service

[Service]
${type}
User=${options.user}
Environment=HOME=${options.home}
${rest.join('\n')}
RestartSec=5
TimeoutStopSec=20

[Install]
WantedBy=multi-user.target
`;
}

export interface InstallResult {
  unitPath: string;
  unit: string;
  /** `enabled` when systemctl enabled and started it. */
  outcome: 'enabled';
}

/**
 * Writes the start script and the unit, then `systemctl daemon-reload` and `enable --now` it. A node
 * without a running systemd keeps the unit file and gets an error saying so.
 */
export async function installSystemdUnit(
  agent: RemoteAgent,
  settings: RemoteAgentSettings,
  options: { unitDir?: string } = {},
): Promise<InstallResult> {
  const facts: NodeFacts = await agent.preflight();
  await agent.ensureBundle();
  // The start script, and the broker credentials file it points the agent to.
  const paths = await agent.writeStartFiles(settings, facts.node!);
  const { conn, nodeId } = agent;
  const unit = systemdUnit({ nodeId, cluster: settings.cluster, user: facts.user, paths, bundleId: agent.bundle.id });
  const unitDir = options.unitDir ?? SYSTEM_UNIT_DIR;
  const unitPath = `${unitDir}/${paths.unit}`;
  const q = shellQuote;

  if (facts.uid === 0) {
    await conn.mkdirp(unitDir, 0o755);
    await conn.writeFile(unitPath, unit, 0o644);
  } else {
    // Not root: stage it in ~/.otto and let sudo (without a password prompt) put it in place.
    const staged = `${paths.base}/${paths.unit}`;
    await conn.writeFile(staged, unit, 0o644);
    const result = await conn.exec(`sudo -n install -m 644 ${q(staged)} ${q(unitPath)}`, { timeoutMs: 30_000 });
    if (result.code !== 0) {
      throw new InfrastructureError(
        `${nodeId}: cannot write ${unitPath} as ${facts.user} (sudo -n: ${result.stderr.trim().split('\n').at(-1) || `exit ${result.code}`})`,
        `on ${nodeId} run: sudo install -m 644 ${staged} ${unitPath} && sudo systemctl daemon-reload && sudo systemctl enable --now ${paths.unit}`,
      );
    }
  }

  if (!facts.systemctl || !facts.systemd) {
    const why = facts.systemctl ? 'systemd is not running there (no /run/systemd/system)' : 'it has no systemctl';
    throw new InfrastructureError(
      `${nodeId}: wrote ${unitPath}, but ${why}: the agent will not be started at boot`,
      `on a node booted with systemd, run: systemctl daemon-reload && systemctl enable --now ${paths.unit}; elsewhere, start the agent with \`otto cluster start\``,
    );
  }

  const sudo = facts.uid === 0 ? '' : 'sudo -n ';
  // An agent started by `otto cluster start` is handed over to systemd: stop it, then enable --now.
  await agent.stop();
  for (const command of [`${sudo}systemctl daemon-reload`, `${sudo}systemctl enable --now ${q(paths.unit)}`]) {
    const result = await conn.exec(command, { timeoutMs: 60_000 });
    if (result.code !== 0) {
      throw new SshError(
        `${nodeId}: \`${command}\` failed: ${result.stderr.trim().split('\n').at(-1) || `exit ${result.code}`}`,
        `see: journalctl -u ${paths.unit} on ${nodeId}`,
        'command',
      );
    }
  }
  return { unitPath, unit, outcome: 'enabled' };
}

/** The unit of an agent that joined by itself, written on the device: it rejoins as saved, no token. */
export function joinedAgentUnit(options: { nodeId: string; cluster: string; user: string; home: string; execStart: string[] }): string {
  return agentUnit({
    ...options,
    comment: `joined by itself; written by \`otto node install ${options.nodeId} --systemd\`.`,
    service: [
      'Type=simple',
      ...Object.entries(AGENT_ENV).map(([name, value]) => `Environment=${name}=${value}`),
      `ExecStart=${options.execStart.map(shellQuote).join(' ')}`,
      'Restart=always',
    ],
  });
}
