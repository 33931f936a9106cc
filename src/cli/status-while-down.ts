/**
 * `otto cluster status` with no control plane answering: says whether it was stopped or is down (killed,
 * crashed), and shows what is known without it: the last status the control plane saved, with the
 * replicas of this machine's nodes as their agents, which keep running, report them now.
 */
import { readFileSync } from 'node:fs';
import { runningAgentPid } from '../agent/pid-file.js';
import { lastReportFile } from '../agent/desired-store.js';
import { parseConfig } from '../config/load.js';
import { InfrastructureError } from '../errors.js';
import type { OttoConfig } from '../config/schema.js';
import { clusterStatusSchema, type ClusterStatus } from '../http/schemas.js';
import { nodeStateSchema, type NodeState } from '../protocol/messages.js';
import { Workspace, isProcessAlive } from '../workspace.js';
import { ago, printJson, replicaStateLabel, table } from './format.js';
import { runningEnv } from './running-config.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

interface AgentReport {
  node: string;
  pid?: number;
  report?: NodeState;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function lastSnapshot(workspace: Workspace): { savedAt: string; status: ClusterStatus } | undefined {
  const raw = readJson(workspace.statusPath) as { saved_at?: string; status?: unknown } | undefined;
  const parsed = clusterStatusSchema.safeParse(raw?.status);
  return parsed.success && raw?.saved_at ? { savedAt: raw.saved_at, status: parsed.data } : undefined;
}

async function localAgents(workspace: Workspace, nodes: string[]): Promise<AgentReport[]> {
  return Promise.all(
    nodes.map(async (node) => {
      const dir = workspace.agentStateDir(node);
      const parsed = nodeStateSchema.safeParse(readJson(lastReportFile(dir)));
      return { node, pid: await runningAgentPid(dir), report: parsed.success ? parsed.data : undefined };
    }),
  );
}

export async function statusWhileDown(workspace: Workspace, json: boolean): Promise<void> {
  const info = await workspace.readControlPlane();
  const down = info !== undefined && !isProcessAlive(info.pid);
  const config = parseConfig(readFileSync(workspace.snapshotPath, 'utf8'), workspace.snapshotPath, await runningEnv(workspace));
  const snapshot = lastSnapshot(workspace);
  const agents = await localAgents(workspace, snapshot?.status.nodes.filter((n) => n.local).map((n) => n.id) ?? []);
  if (json) {
    printJson({
      running: false,
      control_plane: down ? 'down' : 'stopped',
      control_plane_pid: info?.pid ?? null,
      cluster: { name: config.cluster.name },
      nodes: config.nodes,
      services: config.services,
      last_status: snapshot ?? null,
      agents,
    });
    if (down) throw downError(info!.pid);
    return;
  }
  if (down) {
    say(`control plane of cluster "${config.cluster.name}" is down: pid ${info!.pid} is not running (started ${ago(info!.started_at)}; killed or crashed)`);
    say('containers keep running and agents keep their last desired state; start it again with `otto cluster start`');
  } else {
    say(`cluster "${config.cluster.name}" is stopped (initialized config ${workspace.snapshotPath})`);
  }
  if (snapshot) printLastKnown(snapshot, agents);
  else printConfig(config);
  say();
  say('start it with `otto cluster start`');
  // A control plane that died is an infrastructure failure, whatever the agents still do: scripts must see it.
  if (down) throw downError(info!.pid);
}

function downError(pid: number): InfrastructureError {
  return new InfrastructureError(`control plane is down (pid ${pid} is not running)`, 'start it again: `otto cluster start`; containers kept running meanwhile');
}

function printConfig(config: OttoConfig): void {
  say();
  say(table(['NODE', 'HOST', 'STATE'], config.nodes.map((n) => [n.id, n.host ?? '-', 'stopped'])));
  say();
  say(
    table(
      ['SERVICE', 'IMAGE', 'REPLICAS', 'NODE', 'PORTS'],
      config.services.map((s) => [s.name, s.image, s.replicas, s.node ?? '-', s.ports.join(',') || '-']),
    ),
  );
}

function printLastKnown(snapshot: { savedAt: string; status: ClusterStatus }, agents: AgentReport[]): void {
  say();
  say(`last known status, saved by the control plane ${ago(snapshot.savedAt)}; agents still running on this machine report now:`);
  say();
  say(
    table(
      ['NODE', 'AGENT', 'LAST REPORT', 'DOCKER'],
      snapshot.status.nodes.map((n) => {
        const agent = agents.find((a) => a.node === n.id);
        const report = agent?.pid ? agent.report : undefined;
        const docker = report?.docker ?? n.docker;
        return [
          n.id,
          n.local ? (agent?.pid ? `running (pid ${agent.pid})` : 'not running') : 'remote (unknown)',
          report ? ago(report.timestamp) : ago(n.last_seen),
          docker ? (docker.reachable ? 'yes' : 'unreachable') : '-',
        ];
      }),
    ),
  );
  say();
  const rows = snapshot.status.services.flatMap((service) =>
    service.replicas.map((replica) => {
      const agent = agents.find((a) => a.node === replica.node && a.pid);
      const now = agent?.report?.replicas.find((r) => r.name === replica.name);
      const source = now ? { ...now, stale: false } : { ...replica, stale: true, reported_at: replica.reported_at ?? snapshot.savedAt };
      return [service.name, replica.name, replica.node, replicaStateLabel(source), source.health, source.error ?? ''];
    }),
  );
  say(table(['SERVICE', 'REPLICA', 'NODE', 'STATE', 'HEALTH', 'ERROR'], rows));
}
