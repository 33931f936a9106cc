/** Runs the built `otto` CLI the way a user does, and the helpers integration tests share. */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import Dockerode from 'dockerode';
import { ownClientId } from '../../src/protocol/broker-auth.js';

export const cliPath = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const docker = new Dockerode({ socketPath: '/var/run/docker.sock' });
export const TEST_IMAGE = 'otto-test/busybox';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function otto(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: 90_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 99) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls until `check` returns a truthy value, or fails after `timeoutMs` with the last error seen. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false | 0 | ''>, timeoutMs = 60_000, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

export async function containersOf(cluster: string, all = false): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all, filters: { label: [`otto.cluster=${cluster}`] } });
}

/** Force-removes every container of a test cluster. */
export async function removeClusterContainers(cluster: string): Promise<void> {
  const containers = await containersOf(cluster, true);
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A test's own MQTT client on a cluster's embedded broker proves the control plane's identity (its token),
 * and verifies an mqtts broker with the cluster's CA when there is one.
 */
export function brokerLogin(dir: string): { username: string; password: string; ca?: string } {
  const token = readFileSync(join(dir, '.otto', 'token'), 'utf8').trim();
  const caFile = join(dir, '.otto', 'tls', 'ca.pem');
  return { username: 'otto-control-plane', password: token, ...(existsSync(caFile) ? { ca: readFileSync(caFile, 'utf8') } : {}) };
}

/** A node's own broker credential (what its agent uses), from the cluster's 0600 store. */
export function nodeLogin(dir: string, nodeId: string): { username: string; password: string } {
  const store = JSON.parse(readFileSync(join(dir, '.otto', 'credentials.json'), 'utf8'));
  return { username: nodeId, password: store.nodes[nodeId].password };
}

/** A second session of a node (beside its agent's): its credential and a client id in its own namespace. */
export function nodeSession(dir: string, cluster: string, nodeId: string, name: string): { username: string; password: string; clientId: string } {
  const login = nodeLogin(dir, nodeId);
  return { ...login, clientId: `${ownClientId('agent', cluster, nodeId, login.password)}-${name}` };
}
