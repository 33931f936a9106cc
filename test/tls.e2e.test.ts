/**
 * TLS on the broker and the API (mqtt.tls / http.tls auto): a broker listening beyond loopback speaks mqtts
 * with a certificate from the cluster's own CA; openssl verifies it with that CA; an agent given another CA
 * refuses to connect; the API serves HTTPS the CLI trusts.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTlsMaterial } from '../src/security/tls.js';
import { brokerLogin, cliPath, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

const run = promisify(execFile);

describe('TLS on the broker and the API', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await createCluster(
      'tls',
      `metrics:\n  interval: 1s\nnodes:\n  - { id: local, host: localhost }\nservices:\n  - { name: web, image: otto-test/busybox, command: sleep 3600, init: true }\n`,
    );
    // Listening beyond loopback turns TLS on (auto) for the broker and the API.
    const text = readFileSync(c.configPath, 'utf8').replace('  host: 127.0.0.1\n', '  host: 0.0.0.0\n').replace('http:\n', 'http:\n  listen: 0.0.0.0\n');
    writeFileSync(c.configPath, text);
    expect(text).toContain('host: 0.0.0.0');
    const started = await c.run('cluster', 'start', '--detach');
    expect(started.code, started.stderr).toBe(0);
    await waitFor('web running', async () => (await c.status()).services[0]!.running === 1);
  });

  afterAll(async () => {
    await c.destroy();
  });

  it('serves mqtts with a certificate of the cluster CA that openssl verifies; keys are 0600', async () => {
    const status = await c.status();
    expect(status.cluster.mqtt_url).toBe(`mqtts://127.0.0.1:${c.mqttPort}`);
    const tls = join(c.dir, '.otto', 'tls');
    expect(statSync(join(tls, 'ca-key.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(join(tls, 'server-key.pem')).mode & 0o777).toBe(0o600);
    const { stdout } = await run('openssl', ['s_client', '-connect', `127.0.0.1:${c.mqttPort}`, '-CAfile', join(tls, 'ca.pem'), '-verify_return_error', '-brief'], { timeout: 10_000 }).catch(
      (err: { stdout: string; stderr: string }) => ({ stdout: `${err.stdout}${err.stderr}` }),
    );
    const openssl = stdout + '';
    expect(openssl).toMatch(/Verification: OK|Verify return code: 0/);
    // The agent runs over it: online, with live metrics.
    expect(status.nodes[0]!.online).toBe(true);
  });

  it('a plain MQTT client cannot talk to the TLS port, a client with the CA can', async () => {
    const plain = mqtt.connect(`mqtt://127.0.0.1:${c.mqttPort}`, { ...brokerLogin(c.dir), ca: undefined, reconnectPeriod: 0, connectTimeout: 3_000 });
    const outcome = await new Promise<string>((resolve) => {
      plain.once('connect', () => resolve('connected'));
      plain.once('close', () => resolve('closed'));
      plain.once('error', () => resolve('error'));
    });
    plain.end(true);
    expect(outcome).not.toBe('connected');
    const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${c.mqttPort}`, { ...brokerLogin(c.dir), reconnectPeriod: 0 });
    const message = new Promise<string>((resolve) => client.once('message', (topic) => resolve(topic)));
    await client.subscribeAsync('otto/nodes/local/metrics/node');
    expect(await message).toBe('otto/nodes/local/metrics/node');
    await client.endAsync();
  });

  it('an agent given another CA refuses to connect', async () => {
    const otherCa = (await ensureTlsMaterial(join(mkdtempSync(join(tmpdir(), 'otto-other-ca-')), 'tls'), 'other', ['localhost'])).files.ca;
    const stateDir = mkdtempSync(join(tmpdir(), 'otto-wrong-ca-'));
    const credentials = join(c.dir, '.otto', 'agents', 'local', 'mqtt.json');
    const agent = spawn(
      process.execPath,
      [cliPath, 'agent', '--node', 'local', '--cluster', c.name, '--mqtt-url', `mqtts://127.0.0.1:${c.mqttPort}`, '--mqtt-ca-file', otherCa, '--mqtt-credentials-file', credentials, '--state-dir', stateDir, '--interval', '1s', '-c', '/nonexistent.yaml'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTTO_LOG_PRETTY: '0' } },
    );
    let output = '';
    agent.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    agent.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await waitFor('the agent to refuse the broker certificate', async () => /self[- ]signed certificate|unable to (get|verify)/i.test(output), 15_000, 100);
      expect(output).not.toContain('connected to MQTT');
      // The real agent of `local` was never pushed off the broker by it.
      expect((await c.status()).nodes[0]!.online).toBe(true);
    } finally {
      agent.kill('SIGTERM');
      await new Promise((resolve) => agent.once('exit', resolve));
    }
  });

  it('serves the API over HTTPS, which the CLI trusts through the cluster CA', async () => {
    const info = JSON.parse(readFileSync(join(c.dir, '.otto', 'control-plane.json'), 'utf8')) as { api_url: string };
    expect(info.api_url).toBe(`https://127.0.0.1:${c.httpPort}`);
    const ls = await c.run('service', 'ls');
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/web\s+1\/1/);
    const { stdout } = await run('curl', ['-s', '--cacert', join(c.dir, '.otto', 'tls', 'ca.pem'), `https://127.0.0.1:${c.httpPort}/healthz`]);
    expect(JSON.parse(stdout)).toEqual({ ok: true });
    await expect(run('curl', ['-s', '--fail', `http://127.0.0.1:${c.httpPort}/healthz`])).rejects.toThrow();
  });

  it('config: plain MQTT to remote nodes only with mqtt.tls: off, and then with a warning; an external broker across the network needs its CA', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otto-tls-config-'));
    const write = (body: string) => writeFileSync(join(dir, 'otto.yaml'), body);
    const remote = `nodes:\n  - { id: pi, host: 10.0.0.9, user: pi }\n`;
    write(`mqtt:\n  host: 0.0.0.0\n  advertise: 10.0.0.1\n  tls: off\n${remote}`);
    const plain = await run(process.execPath, [cliPath, 'config', 'validate'], { cwd: dir });
    expect(plain.stderr).toContain('warning: mqtt.tls is off: nodes pi reach the broker over plain MQTT');
    write(`mqtt:\n  host: broker.lan\n  embedded: false\n${remote}`);
    const external = await run(process.execPath, [cliPath, 'config', 'validate'], { cwd: dir }).catch((err: { code: number; stderr: string }) => err);
    expect((external as { code: number }).code).toBe(1);
    expect((external as { stderr: string }).stderr).toMatch(/otto\.yaml:\d+:\d+ mqtt\.tls: Otto reaches the external broker at "broker\.lan" over the network/);
  });
});
