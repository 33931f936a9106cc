/** A throwaway cluster for an integration test: its own folder, name, ports; removed afterwards. */
import { mkdtempSync, writeFileSync } from 'node:fs';
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

/** `body` is everything after the cluster/mqtt/http header: metrics, control, nodes, services. */
export async function createCluster(prefix: string, body: string): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), `otto-${prefix}-`));
  const name = `${prefix}${Math.random().toString(36).slice(2, 7)}`;
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const configPath = join(dir, 'otto.yaml');
  const header = `cluster:\n  name: ${name}\nmqtt:\n  host: 127.0.0.1\n  port: ${mqttPort}\nhttp:\n  port: ${httpPort}\n`;
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
