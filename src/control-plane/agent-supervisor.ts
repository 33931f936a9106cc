/**
 * Runs the agents of local nodes as child processes (`otto agent`), the same program remote nodes run,
 * and restarts one that dies, with backoff. Stopping the supervisor stops the agents, never their
 * containers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_ENV, AGENT_NODE_FLAGS, localAgentBundle } from '../agent/bundle.js';
import { runningAgentPid, stopAgent } from '../agent/pid-file.js';
import { agentSettingsFlags, agentSettingsFromConfig } from '../cli/commands/agent-settings.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

const cliPath = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** The one-file agent remote nodes run, when it was built; it loads less than the whole CLI. */
function agentProgram(): string {
  try {
    return localAgentBundle().path;
  } catch {
    return cliPath;
  }
}

interface Supervised {
  nodeId: string;
  child?: ChildProcess;
  restarts: number;
  timer?: NodeJS.Timeout;
  /** The start under way (settings being read); a terminate in between cancels it. */
  starting?: object;
}

export class AgentSupervisor {
  private readonly agents = new Map<string, Supervised>();
  private stopping = false;

  constructor(
    private readonly configPath: string,
    private readonly stateDirOf: (nodeId: string) => string,
    private readonly log: Logger,
    private readonly pretty: boolean,
  ) {}

  /** The node's agent is back online: its next failure starts the backoff over. */
  healthy(nodeId: string): void {
    const agent = this.agents.get(nodeId);
    if (agent) agent.restarts = 0;
  }

  pidOf(nodeId: string): number | undefined {
    return this.agents.get(nodeId)?.child?.pid;
  }

  /** Starts agents for new local nodes and stops those of nodes no longer local or configured. */
  async ensure(nodeIds: string[]): Promise<void> {
    for (const [id, agent] of this.agents) {
      if (!nodeIds.includes(id)) {
        this.agents.delete(id);
        await this.terminate(agent);
      }
    }
    for (const id of nodeIds) {
      if (this.agents.has(id)) continue;
      // An agent left behind by a control plane that was killed would fight the new one for the node.
      const leftBehind = await runningAgentPid(this.stateDirOf(id));
      if (leftBehind) {
        this.log.warn({ node: id, agentPid: leftBehind }, 'stopping an agent left behind by a previous control plane');
        await stopAgent(leftBehind);
      }
      const agent: Supervised = { nodeId: id, restarts: 0 };
      this.agents.set(id, agent);
      this.spawn(agent);
    }
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.agents.values()].map((agent) => this.terminate(agent)));
    this.agents.clear();
  }

  /** Restarts a node's agent (after its credential was rotated); its containers keep running. */
  async restart(nodeId: string): Promise<void> {
    const agent = this.agents.get(nodeId);
    if (!agent) return;
    await this.terminate(agent);
    this.spawn(agent);
  }

  /**
   * Settings are read from otto.yaml here and passed as flags, not `-c otto.yaml`: the agent then never
   * loads the YAML parser and the config schema (2 MB of its RSS). Read at every start, as the agent did.
   */
  private spawn(agent: Supervised): void {
    const credentials = join(this.stateDirOf(agent.nodeId), 'mqtt.json');
    const starting = {};
    agent.starting = starting;
    const current = () => agent.starting === starting && !this.stopping && this.agents.get(agent.nodeId) === agent;
    agentSettingsFromConfig(this.configPath, agent.nodeId).then(
      (settings) => {
        if (!current()) return;
        agent.starting = undefined;
        this.start(agent, ['--node', agent.nodeId, ...agentSettingsFlags(settings), '--mqtt-credentials-file', credentials]);
      },
      (err) => {
        if (!current()) return;
        agent.starting = undefined;
        const retryInMs = this.scheduleRestart(agent, Date.now());
        this.log.error({ node: agent.nodeId, err: errorMessage(err), retryInMs }, 'cannot read the agent settings from the config');
      },
    );
  }

  private start(agent: Supervised, agentArgs: string[]): void {
    const args = [...AGENT_NODE_FLAGS, agentProgram(), 'agent', ...agentArgs];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ...AGENT_ENV, OTTO_LOG_PRETTY: this.pretty ? '1' : '0' },
    });
    agent.child = child;
    this.log.info({ node: agent.nodeId, agentPid: child.pid }, 'agent started');
    const startedAt = Date.now();
    child.once('exit', (code, signal) => {
      if (agent.child !== child) return;
      agent.child = undefined;
      if (this.stopping || !this.agents.has(agent.nodeId)) return;
      const retryInMs = this.scheduleRestart(agent, startedAt);
      this.log.warn({ node: agent.nodeId, code, signal, retryInMs }, 'agent exited; restarting');
    });
  }

  /** Returns the delay, in ms. */
  private scheduleRestart(agent: Supervised, startedAt: number): number {
    // An agent that ran for a while (or got back online, see healthy()) starts its backoff over.
    agent.restarts = Date.now() - startedAt > 60_000 ? 1 : agent.restarts + 1;
    const delay = Math.min(30_000, 500 * 2 ** (agent.restarts - 1));
    agent.timer = setTimeout(() => this.spawn(agent), delay);
    return delay;
  }

  private async terminate(agent: Supervised): Promise<void> {
    clearTimeout(agent.timer);
    agent.starting = undefined;
    const child = agent.child;
    agent.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killTimer);
  }
}
