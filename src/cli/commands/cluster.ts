/** `otto cluster init|start|stop` (status is status.ts), and the hidden `otto control-plane` that `start --detach` runs. */
import { spawn } from 'node:child_process';
import { fchmodSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../config/load.js';
import { isLocalNode, isSshNode } from '../../config/nodes.js';
import type { OttoConfig } from '../../config/schema.js';
import { InfrastructureError, errorMessage } from '../../errors.js';
import { ApiClient } from '../../http/client.js';
import { Workspace, isProcessAlive, isProcessRunning } from '../../workspace.js';
import type { GlobalOptions } from '../options.js';
import { loadConfigNotingEnv, loadRunningConfig, saveEnvUnlessRunning } from '../running-config.js';

const say = (line = '') => process.stdout.write(`${line}\n`);

/**
 * V8 flags of the detached control plane. With thousands of nodes each report replaces the node's previous
 * one after an interval: a larger young generation lets more of that garbage die there instead of being
 * promoted and waiting for a full GC. Measured with `npm run bench:fleet -- --nodes 10000 --interval 5s`:
 * RSS 1,123 mean / 1,406 max MB by default; with the status made off the request path, 887 / 985 MB with
 * 64 MB semi-spaces and 807 / 874 MB with 32 MB (the semi-spaces are RSS too), status latency alike.
 */
const CONTROL_PLANE_V8_FLAGS = ['--max-semi-space-size=32'];

export async function init(options: GlobalOptions): Promise<void> {
  const { loaded, referenced } = await loadConfigNotingEnv(options.config);
  const workspace = new Workspace(loaded.path);
  const { tokenCreated } = await workspace.initialize(loaded.text, loaded.hash);
  await saveEnvUnlessRunning(workspace, referenced);
  const { config } = loaded;
  const newCredentials = await ensureNodeCredentials(workspace, config);
  say(`initialized cluster "${config.cluster.name}": ${config.nodes.length} node(s), ${config.services.length} service(s)`);
  const made = [tokenCreated ? 'new API token' : '', newCredentials.length ? `broker credentials for ${newCredentials.join(', ')}` : ''].filter(Boolean);
  say(`wrote ${workspace.dir} (config snapshot ${loaded.hash.slice(0, 12)}${made.length ? `, ${made.join(', ')}` : ''})`);
  say('next: otto cluster start');
}

/** Every node of the config gets its own broker credential (.otto/credentials.json, 0600). */
async function ensureNodeCredentials(workspace: Workspace, config: OttoConfig): Promise<string[]> {
  const { Credentials } = await import('../../security/credentials.js');
  return (await new Credentials(workspace.credentialsPath).load()).ensure(config.nodes.map((n) => n.id));
}

async function runningClient(workspace: Workspace): Promise<ApiClient | undefined> {
  const client = await ApiClient.connect(workspace);
  return client && (await client.healthy()) ? client : undefined;
}

/**
 * Initializes the workspace if needed. `saveEnv`: the caller is the control plane about to start; the
 * values of the variables otto.yaml references are saved for the commands run from other shells.
 */
async function ensureInitialized(options: GlobalOptions, { saveEnv = false } = {}): Promise<Workspace> {
  const { loaded, referenced } = await loadConfigNotingEnv(options.config);
  const workspace = new Workspace(loaded.path);
  if (!workspace.isInitialized()) {
    await workspace.initialize(loaded.text, loaded.hash);
    say(`initialized ${workspace.dir}`);
  }
  await ensureNodeCredentials(workspace, loaded.config);
  if (saveEnv) await saveEnvUnlessRunning(workspace, referenced);
  return workspace;
}

export async function start(options: GlobalOptions & { detach?: boolean }): Promise<void> {
  const workspace = await ensureInitialized(options);
  const running = await workspace.readControlPlane();
  if (running && isProcessAlive(running.pid)) {
    say(`cluster is already running (control plane pid ${running.pid}, API ${running.api_url}); nothing changed`);
    return;
  }
  const { transportWarnings } = await import('../../config/transport.js');
  for (const warning of transportWarnings((await loadRunningConfig(options.config)).config)) process.stderr.write(`warning: ${warning}\n`);
  if (options.detach) {
    // In the background, an unreadable secret would only say "exited during start-up": say which, here (exit 1).
    const { checkSecretSources } = await import('../../control-plane/secret-sources.js');
    await checkSecretSources(await loadConfig(options.config), options.config);
    return startDetached(options, workspace);
  }
  await runControlPlane(options, { pretty: true, announce: true });
}

/** Runs the control plane in this process until SIGINT/SIGTERM. */
export async function runControlPlane(options: GlobalOptions, display = { pretty: true, announce: false }): Promise<void> {
  const { createLogger } = await import('../../log.js');
  const { ControlPlane } = await import('../../control-plane/control-plane.js');
  const workspace = await ensureInitialized(options, { saveEnv: true });
  const log = createLogger({ component: 'control-plane', pretty: process.env.OTTO_LOG_PRETTY !== '0' && display.pretty });
  const controlPlane = new ControlPlane(options.config, workspace, log, display.pretty);
  let stopping: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    stopping ??= (async () => {
      log.info({ signal }, 'stopping agents and control plane; containers keep running');
      await controlPlane.stop().catch((err) => log.error({ err: errorMessage(err) }, 'error while stopping'));
      log.info('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  try {
    await controlPlane.start();
  } catch (err) {
    await controlPlane.stop().catch(() => undefined);
    throw err;
  }
  if (display.announce) {
    log.info(
      { dashboard: `${controlPlane.apiUrl}/#token=${await workspace.token()}`, mqtt: controlPlane.mqttUrl },
      `cluster "${controlPlane.config.cluster.name}" running; Ctrl-C stops Otto (containers keep running)`,
    );
  }
}

async function startDetached(options: GlobalOptions, workspace: Workspace): Promise<void> {
  const logPath = join(workspace.logDir, 'control-plane.log');
  // The log may quote environment values (a rejected config): 0600, also when an older one was wider.
  const log = openSync(logPath, 'a', 0o600);
  fchmodSync(log, 0o600);
  const cli = fileURLToPath(new URL('../main.js', import.meta.url));
  const child = spawn(process.execPath, [...CONTROL_PLANE_V8_FLAGS, cli, 'control-plane', '-c', options.config], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, OTTO_LOG_PRETTY: '1' },
  });
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? 1));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited !== null) {
      throw new InfrastructureError(`control plane exited during start-up: ${lastErrorLine(logPath)}`, `see ${logPath}`);
    }
    const info = await workspace.readControlPlane();
    if (info && info.pid === child.pid) {
      const client = await runningClient(workspace);
      if (client) {
        say(`control plane running in the background (pid ${info.pid})`);
        say(`dashboard ${info.api_url}/#token=${await workspace.token()}`);
        say(`log ${logPath}`);
        say('services may still be starting: watch them with `otto cluster status`');
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new InfrastructureError('control plane did not become ready within 30s', `see ${logPath}`);
}

function lastErrorLine(logPath: string): string {
  const lines = readFileSync(logPath, 'utf8').trim().split('\n');
  return (lines.findLast((line) => /ERROR|FATAL|otto:/.test(line)) ?? lines.at(-1) ?? 'no output').replace(/^\S+ (ERROR|FATAL) /, '').replace(/^otto: /, '');
}

export async function stop(options: GlobalOptions & { down?: boolean }): Promise<void> {
  const loaded = await loadRunningConfig(options.config);
  const workspace = new Workspace(loaded.path);
  const { config } = loaded;
  const { stopControlPlane, stopLocalAgentsLeftRunning, describeAgentFailures } = await import('../stop-agents.js');
  const running = await workspace.readControlPlane();
  const stoppedPid = running && isProcessRunning(running.pid) ? running.pid : undefined;
  // The control plane stops its agents and reports how it went with the remote ones.
  let remote = stoppedPid ? (await stopControlPlane(workspace, stoppedPid))?.remote : undefined;
  if (running && !stoppedPid) await workspace.clearControlPlane();
  // What a killed control plane left running: its local agents (they would recreate what --down removes)...
  const local = await stopLocalAgentsLeftRunning(workspace);
  // ...and its remote agents, also checked when the control plane did not report on them.
  const leftBehind = !remote && config.nodes.some(isSshNode);
  if (leftBehind) {
    const [{ stopRemoteAgents }, { createLogger }] = await Promise.all([import('../../remote/manager.js'), import('../../log.js')]);
    remote = await stopRemoteAgents(config, workspace.dir, createLogger({ component: 'remote', level: 'silent' }));
  }
  const agentFailures = [...local.failed, ...(remote?.failed ?? [])];
  say(stoppedPid ? `stopped the control plane (pid ${stoppedPid})${agentFailures.length ? '' : ' and the agents'}` : 'control plane is not running');
  for (const { node, pid } of local.stopped) say(`stopped the agent left running on node ${node} (pid ${pid})`);
  if (leftBehind && remote?.stopped.length) say(`stopped the agents left running on ${remote.stopped.join(', ')}`);
  if (options.down) {
    // The agents are stopped by now (a remote one still running is stopped first): none recreates them.
    const { removed, perNode, failures, remoteFailed } = await removeContainers(config, workspace.dir);
    const detail = config.nodes.some(isSshNode) && perNode.length ? ` (${perNode.map((p) => `${p.node}: ${p.count}`).join(', ')})` : '';
    say(`removed ${removed} container(s)${detail}`);
    // A remote agent that could not be stopped is tried again by the removal, which names it if it fails again.
    if (local.failed.length) failures.push(describeAgentFailures(local.failed));
    if (failures.length) {
      throw new InfrastructureError(
        failures.join('; '),
        remoteFailed
          ? 'make those nodes reachable (SSH) and start Docker on them, then run `otto cluster stop --down` again'
          : 'start Docker on those nodes and run `otto cluster stop --down` again',
      );
    }
  } else {
    say('containers keep running: an edge node keeps serving while its orchestrator is away (`otto cluster stop --down` removes them)');
    if (agentFailures.length) {
      throw new InfrastructureError(
        `could not stop the agent${agentFailures.length > 1 ? 's' : ''} of ${describeAgentFailures(agentFailures)}`,
        'make those nodes reachable (SSH) and run `otto cluster stop` again; until then their agents keep running and managing their containers',
      );
    }
  }
}

/**
 * Removes what it can on every node: local ones through this machine's Docker, remote ones over SSH
 * (src/remote/down.ts); a node whose Docker or SSH cannot be reached does not stop the others.
 */
async function removeContainers(
  config: OttoConfig,
  workspaceDir: string,
): Promise<{ removed: number; perNode: { node: string; count: number }[]; failures: string[]; remoteFailed: boolean }> {
  const { DockerRuntime, dockerFromUrl } = await import('../../runtime/docker.js');
  const perNode: { node: string; count: number }[] = [];
  const failures: string[] = [];
  for (const node of config.nodes.filter(isLocalNode)) {
    const runtime = new DockerRuntime(dockerFromUrl(node.docker_url), config.cluster.name, node.id);
    try {
      const containers = await runtime.listManaged();
      // Gracefully, as `docker compose down` does: each container's stop signal, then its grace period.
      await Promise.all(containers.map((c) => runtime.stopAndRemove(c.id)));
      perNode.push({ node: node.id, count: containers.length });
    } catch (err) {
      failures.push(`node ${node.id}: ${errorMessage(err)}`);
    }
  }
  let remoteFailed = false;
  if (config.nodes.some(isSshNode)) {
    const [{ removeRemoteContainers }, { createLogger }] = await Promise.all([import('../../remote/down.js'), import('../../log.js')]);
    const remote = await removeRemoteContainers(config, { workspaceDir, log: createLogger({ component: 'remote', level: 'silent' }) });
    if (remote.agentsStopped.length) say(`stopped the agents still running on ${remote.agentsStopped.join(', ')} before removing their containers`);
    perNode.push(...remote.removed);
    for (const failure of remote.failed) failures.push(`node ${failure.node}: ${failure.error}`);
    remoteFailed = remote.failed.length > 0;
  }
  const removed = perNode.reduce((sum, p) => sum + p.count, 0);
  return { removed, perNode, failures, remoteFailed };
}
