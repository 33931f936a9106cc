/** A throwaway cluster for an integration test: its own folder, name, ports; removed afterwards. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { clusterStatusSchema, type ClusterStatus } from '../../src/http/schemas.js';
import { freePort, otto, removeClusterContainers, type CliResult } from './cli.js';

export interface TestCluster {
  dir: string;
  name: string;
  mqttPort: number;
  httpPort: number;
  configPath: string;
  run(...args: string[]): Promise<CliResult>;
  status(): Promise<ClusterStatus>;
  writeConfig(body: string): void;
  destroy(): Promise<void>;
}

/**
 * `body` is everything after the cluster/mqtt/http header: metrics, control, nodes, services. With
 * `externalBroker`, the cluster uses that broker (mqtt.embedded: false) instead of its own.
 */
export async function createCluster(prefix: string, body: string, options: { externalBroker?: { port: number } } = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), `otto-${prefix}-`));
  const name = `${prefix}${Math.random().toString(36).slice(2, 7)}`;
  const mqttPort = options.externalBroker?.port ?? (await freePort());
  const httpPort = await freePort();
  const configPath = join(dir, 'otto.yaml');
  const broker = options.externalBroker ? '  embedded: false\n' : '';
  const header = `cluster:\n  name: ${name}\nmqtt:\n  host: 127.0.0.1\n  port: ${mqttPort}\n${broker}http:\n  port: ${httpPort}\n`;
  const cluster: TestCluster = {
    dir,
    name,
    mqttPort,
    httpPort,
    configPath,
    run: (...args) => otto(args, { cwd: dir }),
    async status() {
      const result = await cluster.run('cluster', 'status', '--json');
      expect(result.code, result.stderr).toBe(0);
      return clusterStatusSchema.parse(JSON.parse(result.stdout));
    },
    writeConfig: (text) => writeFileSync(configPath, header + text),
    async destroy() {
      await cluster.run('cluster', 'stop', '--down');
      await removeClusterContainers(name);
    },
  };
  cluster.writeConfig(body);
  return cluster;
}

/**
 * Starts a test cluster whose nodes are simulated (OTTO_SIMULATED_AGENTS: the control plane starts no real
 * agents), and returns what the simulated agents and the test need: the API token and each node's password.
 */
export async function startSimulated(cluster: TestCluster): Promise<{ token: string; passwordOf(nodeId: string): string }> {
  const started = await otto(['cluster', 'start', '--detach'], { cwd: cluster.dir, env: { OTTO_SIMULATED_AGENTS: '1' } });
  expect(started.code, started.stderr).toBe(0);
  const otto_ = join(cluster.dir, '.otto');
  const credentials = JSON.parse(readFileSync(join(otto_, 'credentials.json'), 'utf8')) as { nodes: Record<string, { password: string }> };
  return { token: readFileSync(join(otto_, 'token'), 'utf8').trim(), passwordOf: (nodeId) => credentials.nodes[nodeId]!.password };
}
