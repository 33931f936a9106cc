import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../errors.js';
import { agentSettingsFlags, agentSettingsFromConfig } from './agent-settings.js';

const dir = mkdtempSync(join(tmpdir(), 'otto-agent-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('the settings a local agent takes from otto.yaml', () => {
  it('are the cluster, broker, Docker engine, state folder and interval, passed as flags', async () => {
    const path = config(
      'plain.yaml',
      `cluster: { name: shop }
mqtt: { host: 127.0.0.1, port: 18830 }
metrics: { interval: 2s }
nodes:
  - { id: pc, host: localhost, docker_url: 'unix:///run/other.sock' }
`,
    );
    const settings = await agentSettingsFromConfig(path, 'pc');
    expect(settings).toEqual({
      cluster: 'shop',
      mqttUrl: 'mqtt://127.0.0.1:18830',
      stateDir: join(dir, '.otto', 'agents', 'pc'),
      interval: '2s',
      dockerUrl: 'unix:///run/other.sock',
      caFile: undefined,
    });
    expect(agentSettingsFlags(settings)).toEqual([
      '--cluster', 'shop',
      '--mqtt-url', 'mqtt://127.0.0.1:18830',
      '--state-dir', join(dir, '.otto', 'agents', 'pc'),
      '--interval', '2s',
      '--docker-url', 'unix:///run/other.sock',
    ]);
  });

  it("name the broker's CA when the broker speaks TLS (auto: it listens beyond this machine)", async () => {
    const path = config(
      'tls.yaml',
      `cluster: { name: shop }
mqtt: { host: 10.1.2.3, port: 18831 }
nodes:
  - { id: pc, host: localhost }
`,
    );
    const settings = await agentSettingsFromConfig(path, 'pc');
    expect(settings.mqttUrl).toBe('mqtts://10.1.2.3:18831');
    expect(settings.caFile).toBe(join(dir, '.otto', 'tls', 'ca.pem'));
    expect(agentSettingsFlags(settings).slice(-2)).toEqual(['--mqtt-ca-file', join(dir, '.otto', 'tls', 'ca.pem')]);
  });

  it('refuse a node the config does not have, naming the ones it has', async () => {
    const path = config('one.yaml', 'cluster: { name: shop }\nnodes:\n  - { id: pc, host: localhost }\n');
    const refused = agentSettingsFromConfig(path, 'pi');
    await expect(refused).rejects.toThrow(UsageError);
    await expect(refused).rejects.toThrow('unknown node "pi"');
  });
});
