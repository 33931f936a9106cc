/** Reads a test cluster's status over its HTTP API: much cheaper than the CLI when a scenario polls. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterStatusSchema, operationSchema, type ClusterStatus, type Operation } from '../../src/http/schemas.js';
import type { TestCluster } from '../support/cluster.js';

async function get(c: TestCluster, path: string): Promise<unknown> {
  const token = readFileSync(join(c.dir, '.otto', 'token'), 'utf8').trim();
  const response = await fetch(`http://127.0.0.1:${c.httpPort}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

/** The status, or undefined while the control plane does not answer. */
export async function apiStatus(c: TestCluster): Promise<ClusterStatus | undefined> {
  try {
    return clusterStatusSchema.parse(await get(c, '/api/v1/status'));
  } catch {
    return undefined;
  }
}

export async function apiOperations(c: TestCluster): Promise<Operation[]> {
  return operationSchema.array().parse(await get(c, '/api/v1/operations'));
}

export async function apiPost(c: TestCluster, path: string, body: unknown): Promise<Operation> {
  const token = readFileSync(join(c.dir, '.otto', 'token'), 'utf8').trim();
  const response = await fetch(`http://127.0.0.1:${c.httpPort}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 202) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return operationSchema.parse(await response.json());
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
