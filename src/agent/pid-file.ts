/**
 * One agent per node and state folder: the agent records its pid, a second one refuses to start, and
 * the supervisor of a restarted control plane can stop an agent its crashed predecessor left behind.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdir, readFile, rm, writeFile } from '../fs-async.js';
import { isProcessAlive, isProcessRunning, waitForExit } from '../workspace.js';

const pidPath = (stateDir: string) => join(stateDir, 'agent.pid');

function isAgentProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('agent');
  } catch {
    return isProcessAlive(pid);
  }
}

/** The pid of the agent running with this state folder, if one does (not this process). */
export async function runningAgentPid(stateDir: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidPath(stateDir), 'utf8').catch(() => '')).trim());
  if (!pid || pid === process.pid || !isProcessRunning(pid) || !isAgentProcess(pid)) return undefined;
  return pid;
}

export async function writeAgentPid(stateDir: string): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  await writeFile(pidPath(stateDir), `${process.pid}\n`);
}

export async function removeAgentPid(stateDir: string): Promise<void> {
  const pid = Number((await readFile(pidPath(stateDir), 'utf8').catch(() => '')).trim());
  if (pid === process.pid) await rm(pidPath(stateDir), { force: true });
}

/**
 * Stops a left-behind agent: SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone, or 5 s after
 * the SIGKILL (only a process stuck in the kernel survives it; the caller can check isProcessRunning).
 */
export async function stopAgent(pid: number, graceMs = 10_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitForExit(pid, graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitForExit(pid, 5_000);
}
