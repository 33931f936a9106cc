/**
 * What `otto cluster stop` needs to know that every agent is stopped: the control plane stops its agents
 * and reports how it went in `.otto/stop-report.json` (Workspace.writeStopReport), since the CLI only sees
 * it exit; agents a killed control plane left behind are found through their pid files and stopped here.
 */
import { readdir } from 'node:fs/promises';
import { runningAgentPid, stopAgent } from '../agent/pid-file.js';
import { InfrastructureError } from '../errors.js';
import { isProcessRunning, waitForExit, type StopReport, type Workspace } from '../workspace.js';

const CONTROL_PLANE_STOP_MS = 30_000;

/**
 * Stops the control plane (SIGTERM), waits for it to exit, and returns the report it left of its
 * remote agents; undefined if it left none (it stopped before writing it, or is an older version).
 */
export async function stopControlPlane(workspace: Workspace, pid: number): Promise<StopReport | undefined> {
  await workspace.clearStopReport();
  try {
    process.kill(pid, 'SIGTERM');
  } catch (err) {
    // Gone since it was found running: no report to wait for.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  if (!(await waitForExit(pid, CONTROL_PLANE_STOP_MS))) {
    throw new InfrastructureError(`control plane (pid ${pid}) did not stop within ${CONTROL_PLANE_STOP_MS / 1000}s`, `kill it: kill ${pid}`);
  }
  await workspace.clearControlPlane();
  const report = await workspace.readStopReport(pid);
  await workspace.clearStopReport();
  return report;
}

/**
 * Stops every local agent still running without its control plane (one killed with SIGKILL leaves its
 * children behind; they would create again the containers `--down` removes). Every state folder under
 * `.otto/agents/` counts, also one of a node since removed from otto.yaml.
 */
export async function stopLocalAgentsLeftRunning(
  workspace: Workspace,
): Promise<{ stopped: { node: string; pid: number }[]; failed: { node: string; error: string }[] }> {
  const nodes = await readdir(workspace.agentsDir, { withFileTypes: true }).then(
    (entries) => entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort(),
    () => [],
  );
  const stopped: { node: string; pid: number }[] = [];
  const failed: { node: string; error: string }[] = [];
  await Promise.all(
    nodes.map(async (node) => {
      const pid = await runningAgentPid(workspace.agentStateDir(node));
      if (!pid) return;
      await stopAgent(pid);
      if (isProcessRunning(pid)) failed.push({ node, error: `its agent (pid ${pid}) survived SIGKILL` });
      else stopped.push({ node, pid });
    }),
  );
  const byNode = (a: { node: string }, b: { node: string }) => a.node.localeCompare(b.node);
  return { stopped: stopped.sort(byNode), failed: failed.sort(byNode) };
}

/** `node rpi-02: cannot reach SSH at ...`, without the node id the error may already start with. */
export function describeAgentFailures(failed: { node: string; error: string }[]): string {
  return failed.map(({ node, error }) => `node ${node}: ${error.startsWith(`${node}: `) ? error.slice(node.length + 2) : error}`).join('; ');
}
