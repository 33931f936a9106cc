/**
 * Secrets, Compose style, on a real cluster: a service's secrets are files at /run/secrets/NAME in its
 * container (read-only), and their values are nowhere else: not in any MQTT message but the node's own
 * secrets topic (never retained), not in the API, not in `docker inspect`'s environment, not in any file
 * under .otto/ that is not 0600. A new value in the secret's file rolls the replica.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeState } from '../src/protocol/messages.js';
import { topics } from '../src/protocol/topics.js';
import { TEST_IMAGE, brokerLogin, cliPath, containersOf, docker, isAlive, otto, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

/** An image that runs as a non-root uid, as hardened images do. */
const NONROOT_IMAGE = 'otto-test/busybox-uid1234';

async function buildNonrootImage(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const build = execFile('docker', ['build', '-q', '-t', NONROOT_IMAGE, '-'], (err) => (err ? reject(err) : resolve()));
    build.stdin!.end(`FROM ${TEST_IMAGE}\nUSER 1234:1234\n`);
  });
}

interface Seen {
  topic: string;
  payload: string;
  retain: boolean;
}

/** Runs a command in a container; its output and exit code. */
async function exec(containerId: string, cmd: string[]): Promise<{ code: number; output: string }> {
  const execution = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await execution.start({});
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  // Docker multiplexes stdout and stderr: 8-byte frame headers before each chunk.
  const raw = Buffer.concat(chunks);
  let output = '';
  for (let i = 0; i + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(i + 4);
    output += raw.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  return { code: (await execution.inspect()).ExitCode ?? -1, output };
}

/** Every file under `dir`, recursively. */
function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walk(path) : entry.isFile() ? [path] : [];
  });
}

describe('secrets', () => {
  let c: TestCluster;
  let watcher: mqtt.MqttClient;
  const seen: Seen[] = [];
  const first = `db-${randomBytes(9).toString('hex')}`;
  const second = `db-${randomBytes(9).toString('hex')}`;
  const token = `tok-${randomBytes(9).toString('hex')}`;
  /** Each value as it could travel: as is, and base64 (the secrets topic carries base64). */
  const forms = (value: string) => [value, Buffer.from(value).toString('base64')];
  const allForms = () => [first, second, token].flatMap(forms);
  const serviceContainer = async (service: string) => (await containersOf(c.name)).find((x) => x.Labels['otto.service'] === service);
  const appContainer = () => serviceContainer('app');

  beforeAll(async () => {
    await buildNonrootImage();
    c = await createCluster(
      'secret',
      `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - { id: local, host: localhost }
secrets:
  db_password:
    file: ./db_password.txt
  api_token:
    environment: OTTO_TEST_API_TOKEN
services:
  - name: app
    image: ${TEST_IMAGE}
    command: sleep 3600
    environment: { PLAIN: visible }
    secrets: [db_password, api_token]
  - name: other
    image: ${TEST_IMAGE}
    command: sleep 3600
  - name: nonroot
    image: ${NONROOT_IMAGE}
    command: sleep 3600
    secrets: [db_password]
`,
    );
    writeFileSync(join(c.dir, 'db_password.txt'), first);
    const start = await otto(['cluster', 'start', '--detach'], { cwd: c.dir, env: { OTTO_TEST_API_TOKEN: token } });
    expect(start.code, `${start.stdout}\n${start.stderr}`).toBe(0);
    await waitFor('app and other running', async () => (await c.status()).services.every((s) => s.running === 1));
    watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${c.mqttPort}`, { ...brokerLogin(c.dir), clientId: 'secrets-watcher', reconnectPeriod: 0 });
    watcher.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain }));
    // The control plane's identity may read all of otto/# (everything Otto sends); the broker refuses a bare #.
    await watcher.subscribeAsync('otto/#', { qos: 1 });
  });

  afterAll(async () => {
    await watcher?.endAsync();
    await c.destroy();
    await promisify(execFile)('docker', ['rmi', NONROOT_IMAGE]).catch(() => undefined);
  });

  it('mounts each secret read-only at /run/secrets/NAME, and only in the service that names it', async () => {
    const app = (await appContainer())!;
    expect(await exec(app.Id, ['cat', '/run/secrets/db_password'])).toEqual({ code: 0, output: first });
    expect(await exec(app.Id, ['cat', '/run/secrets/api_token'])).toEqual({ code: 0, output: token });
    expect((await exec(app.Id, ['sh', '-c', 'echo x > /run/secrets/db_password'])).code).not.toBe(0);
    const other = (await containersOf(c.name)).find((x) => x.Labels['otto.service'] === 'other')!;
    expect((await exec(other.Id, ['ls', '/run/secrets'])).code).not.toBe(0);

    const info = await docker.getContainer(app.Id).inspect();
    const mount = info.Mounts.find((m) => m.Destination === '/run/secrets/db_password');
    expect(mount).toMatchObject({ Type: 'bind', RW: false });
    expect(info.Config.Env).toContain('PLAIN=visible');
    for (const value of allForms()) expect(JSON.stringify(info.Config.Env)).not.toContain(value);
  });

  it('lets a container that runs as a non-root uid read its secret, owned by that uid, 0600', async () => {
    const nonroot = (await serviceContainer('nonroot'))!;
    expect(await exec(nonroot.Id, ['id', '-u'])).toEqual({ code: 0, output: '1234\n' });
    expect(await exec(nonroot.Id, ['cat', '/run/secrets/db_password'])).toEqual({ code: 0, output: first });
    expect(await exec(nonroot.Id, ['stat', '-c', '%u %a', '/run/secrets/db_password'])).toEqual({ code: 0, output: '1234 600\n' });
  });

  it('keeps the values on the node 0600 in a 0700 folder, and in no other file of .otto/ unless 0600', () => {
    const otto = join(c.dir, '.otto');
    const holders: string[] = [];
    for (const file of walk(otto)) {
      const text = readFileSync(file);
      if (!allForms().some((value) => text.includes(value))) continue;
      holders.push(file);
      expect({ file, mode: (statSync(file).mode & 0o777).toString(8) }).toEqual({ file, mode: '600' });
    }
    const secretsDir = join(otto, 'agents', 'local', 'secrets');
    // db_password and api_token, and the copy of db_password for uid 1234: nowhere else.
    expect(holders.map((f) => f.slice(secretsDir.length + 1).replace(/@.*/, '')).sort()).toEqual(['api_token', 'db_password', 'u1234/db_password']);
    expect(statSync(secretsDir).mode & 0o777).toBe(0o700);
    const log = readFileSync(join(otto, 'logs', 'control-plane.log'), 'utf8');
    for (const value of allForms()) expect(log).not.toContain(value);
    for (const file of ['desired.json', 'state.json']) expect(statSync(join(otto, 'agents', 'local', file)).mode & 0o777).toBe(0o600);
    for (const file of ['ledger.json', 'env.json', 'config.yaml', 'logs/control-plane.log', 'events.jsonl']) {
      expect({ file, mode: (statSync(join(otto, file)).mode & 0o777).toString(8) }).toEqual({ file, mode: '600' });
    }
  });

  it('says nothing of the values in the API', async () => {
    const apiToken = readFileSync(join(c.dir, '.otto', 'token'), 'utf8').trim();
    for (const path of ['/api/v1/status', '/api/v1/nodes', '/api/v1/services', '/api/v1/services/app', '/api/v1/operations', '/api/v1/events']) {
      const response = await fetch(`http://127.0.0.1:${c.httpPort}${path}`, { headers: { authorization: `Bearer ${apiToken}` } });
      expect(response.status, path).toBe(200);
      const body = await response.text();
      for (const value of allForms()) expect(body, path).not.toContain(value);
    }
    const status = await c.status();
    const spec = JSON.stringify(status);
    expect(spec).not.toContain(first);
  });

  it('rolls the replica when the file changes: a new container with the new value', async () => {
    const before = (await appContainer())!;
    writeFileSync(join(c.dir, 'db_password.txt'), second);
    const after = await waitFor(
      'a new app container',
      async () => {
        const now = await appContainer();
        return now && now.Id !== before.Id && now.State === 'running' && now;
      },
      60_000,
    );
    expect(await exec(after.Id, ['cat', '/run/secrets/db_password'])).toEqual({ code: 0, output: second });
    expect(await exec(after.Id, ['cat', '/run/secrets/api_token'])).toEqual({ code: 0, output: token });
  });

  it('sends the values on the node secrets topic only, never retained', async () => {
    await waitFor('the new value on the node secrets topic', async () => seen.some((m) => m.topic === topics.secrets('local') && m.payload.includes(forms(second)[1]!)), 10_000);
    expect(seen.filter((m) => m.topic === topics.secrets('local')).every((m) => !m.retain)).toBe(true);
    // The watcher saw the desired states and node states that name the secrets (so it did listen)...
    expect(seen.some((m) => m.topic === topics.desired('local') && m.payload.includes('db_password'))).toBe(true);
    // ...and no value anywhere but the secrets topic.
    for (const message of seen.filter((m) => m.topic !== topics.secrets('local'))) {
      for (const value of allForms()) expect(message.payload.includes(value), `${message.topic} holds a secret`).toBe(false);
    }

    const late = await mqtt.connectAsync(`mqtt://127.0.0.1:${c.mqttPort}`, { ...brokerLogin(c.dir), clientId: 'secrets-late', reconnectPeriod: 0 });
    const retained: Seen[] = [];
    late.on('message', (topic, payload, packet) => retained.push({ topic, payload: payload.toString(), retain: packet.retain }));
    await late.subscribeAsync('otto/#', { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await late.endAsync();
    expect(retained.some((m) => m.topic === topics.desired('local'))).toBe(true);
    expect(retained.filter((m) => m.topic === topics.secrets('local') && m.retain)).toEqual([]);
    for (const message of retained.filter((m) => m.retain)) for (const value of allForms()) expect(message.payload).not.toContain(value);
  });

  it('an agent restarted while the control plane is away still has them on disk; without them, its replica waits and says why', async () => {
    const status = await c.status();
    const agentPid = status.nodes[0]!.agent_pid!;
    process.kill(status.cluster.pid, 'SIGKILL');
    await waitFor('the control plane gone', async () => !isAlive(status.cluster.pid), 10_000, 50);
    process.kill(agentPid, 'SIGTERM');
    await waitFor('the agent gone', async () => !isAlive(agentPid), 20_000, 50);
    const before = (await appContainer())!;
    await docker.getContainer(before.Id).remove({ force: true });

    const otto = join(c.dir, '.otto');
    const startAgent = () =>
      spawn(process.execPath, [cliPath, 'agent', '-c', c.configPath, '--node', 'local', '--mqtt-credentials-file', join(otto, 'agents', 'local', 'mqtt.json')], {
        cwd: c.dir,
        stdio: 'ignore',
      });
    const stopAgent = async (agent: ReturnType<typeof startAgent>) => {
      const exited = new Promise((resolve) => agent.once('exit', resolve));
      agent.kill('SIGTERM');
      await exited;
    };
    let agent = startAgent();
    let after: Awaited<ReturnType<typeof appContainer>>;
    try {
      after = await waitFor('app back without the control plane', async () => {
        const now = await appContainer();
        return now && now.Id !== before.Id && now.State === 'running' && now;
      });
      expect(await exec(after.Id, ['cat', '/run/secrets/db_password'])).toEqual({ code: 0, output: second });
    } finally {
      await stopAgent(agent);
    }

    // Its secrets lost too (a wiped disk): the replica waits, and says for what.
    rmSync(join(otto, 'agents', 'local', 'secrets'), { recursive: true });
    await docker.getContainer(after!.Id).remove({ force: true });
    agent = startAgent();
    try {
      // `cluster status` while the control plane is down shows what the agent reports.
      const waiting = await waitFor('app waiting for its secrets', async () => {
        const result = await c.run('cluster', 'status', '--json');
        const report = JSON.parse(result.stdout).agents.find((a: { node: string }) => a.node === 'local')?.report as NodeState | undefined;
        const replica = report?.replicas.find((r) => r.service === 'app');
        return replica?.error?.startsWith('waiting for secrets') && replica;
      });
      expect(waiting.error).toBe('waiting for secrets api_token, db_password from the control plane (not on this node yet)');
      expect(await appContainer()).toBeUndefined();
    } finally {
      await stopAgent(agent);
    }
  });
});
