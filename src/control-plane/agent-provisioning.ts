/**
 * Starts the agents the control plane is responsible for: those of local nodes (child processes, the
 * agent supervisor) and those of nodes reached over SSH (the remote agent manager). Each gets its node's
 * own broker credential in a 0600 file named by path on its command line, never the secret itself.
 */
import { mkdir } from 'node:fs/promises';
import { isLocalNode, isSshNode } from '../config/nodes.js';
import type { OttoConfig } from '../config/schema.js';
import { InfrastructureError } from '../errors.js';
import type { EnsureOptions, RemoteAgentManager } from '../remote/manager.js';
import { remoteMqttUrl } from '../remote/mqtt-address.js';
import type { Credentials } from '../security/credentials.js';
import { writeAtomic, type Workspace } from '../workspace.js';
import type { AgentSupervisor } from './agent-supervisor.js';

export class AgentProvisioning {
  constructor(
    private readonly workspace: Workspace,
    private readonly credentials: () => Credentials,
    private readonly supervisor: AgentSupervisor,
    private readonly remote: RemoteAgentManager,
    /** The broker's CA, for agents to verify it (mqtts). */
    private readonly brokerCa: () => string | undefined,
  ) {}

  /** Local agents get their node's credential in a 0600 file their command line names by path. */
  async ensureLocal(config: OttoConfig): Promise<void> {
    // The fleet benchmark and test run simulated agents for their (local) nodes: no real agent may start.
    if (process.env.OTTO_SIMULATED_AGENTS === '1') return;
    const local = config.nodes.filter(isLocalNode);
    for (const node of local) {
      await mkdir(this.workspace.agentStateDir(node.id), { recursive: true });
      const credentials = { username: node.id, password: this.credentials().password(node.id) };
      await writeAtomic(this.workspace.agentCredentialsPath(node.id), `${JSON.stringify(credentials)}\n`, 0o600);
    }
    await this.supervisor.ensure(local.map((n) => n.id));
  }

  /** Starts (or keeps, or upgrades) the agents of nodes reached over SSH; stops those of nodes removed. */
  async ensureRemote(config: OttoConfig, options: EnsureOptions): Promise<void> {
    const remoteNodes = config.nodes.filter(isSshNode);
    const mqttUrl = remoteMqttUrl(config);
    if (remoteNodes.length > 0 && !mqttUrl) throw new InfrastructureError('no broker address for remote nodes', 'set mqtt.advertise in otto.yaml');
    const credentials = Object.fromEntries(remoteNodes.map((n) => [n.id, { username: n.id, password: this.credentials().password(n.id)! }]));
    const ca = this.brokerCa();
    await this.remote.ensure(remoteNodes, { cluster: config.cluster.name, mqttUrl: mqttUrl ?? '', interval: config.metrics.interval, credentials, ...(ca ? { ca } : {}) }, options);
  }

  /** A node's credential changed: its agent starts again with the new one. */
  async reprovision(config: OttoConfig, nodeId: string, kind: 'local' | 'ssh'): Promise<void> {
    if (kind === 'local') {
      await this.ensureLocal(config);
      await this.supervisor.restart(nodeId);
    } else {
      await this.ensureRemote(config, { waitFirstAttemptMs: 30_000 });
    }
  }
}
