/**
 * Nodes that join by themselves (from behind NAT: they dial out): a `join: true` node with its own token,
 * and a device of a node pool with the pool's bootstrap token, both run a pinned service on real Docker; a
 * wrong token, a wrong CA fingerprint and a removed node are refused with clear messages (exit 2 on the
 * device); the joined agents keep their containers through a control-plane restart. The "devices" are
 * agent processes on this machine with state folders of their own.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localAgentBundle } from '../src/agent/bundle.js';
import { cliPath, containersOf, isAlive, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';
import { apiStatus, sleep } from './faults/api.js';

const run = promisify(execFile);

describe('nodes that join by themselves', () => {
  let c: TestCluster;
  const devices: ChildProcess[] = [];
  const root = mkdtempSync(join(tmpdir(), 'otto-devices-'));
  const deviceDir = (name: string) => join(root, name);

  /**
   * Runs `otto agent --join ...` as a device would: the CLI (`npx otto`), or the one-file agent bundle the
   * unit of `otto node install --systemd` runs.
   */
  const device = (args: string[], program = cliPath) => {
    const child = spawn(process.execPath, [program, 'agent', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTTO_LOG_PRETTY: '0' } });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    devices.push(child);
    const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
    return { child, exited, output: () => output };
  };
  const joinLine = async (name: string) => {
    const result = await c.run('node', 'join-command', name);
    expect(result.code, result.stderr).toBe(0);
    const match = /^npx otto agent --join (\S+) --token (\S+)$/.exec(result.stdout.trim());
    expect(match, result.stdout).not.toBeNull();
    return { url: match![1]!, token: match![2]!, hint: result.stderr };
  };
  const tamper = (token: string, change: Record<string, string>) => {
    const body = JSON.parse(Buffer.from(token.slice('otto1.'.length), 'base64url').toString());
    return `otto1.${Buffer.from(JSON.stringify({ ...body, ...change })).toString('base64url')}`;
  };
  const onNode = async (service: string, node: string) =>
    (await containersOf(c.name)).filter((x) => x.Labels['otto.service'] === service && x.Labels['otto.node'] === node && x.State === 'running');

  beforeAll(async () => {
    c = await createCluster('join', '');
    writeFileSync(
      c.configPath,
      `cluster: { name: ${c.name} }
mqtt: { host: 127.0.0.1, advertise: 127.0.0.1, port: ${c.mqttPort} }
http: { port: ${c.httpPort} }
metrics: { interval: 1s }
control: { interval: 1s }
nodes:
  - { id: local, host: localhost }
  - { id: pi-join, join: true }
node_pools:
  - { name: field, labels: { zone: field } }
services:
  - { name: pinned, image: otto-test/busybox, command: ["sh", "-c", "echo hello from the barn; exec sleep 3600"], init: true, node: pi-join }
  - { name: fielded, image: otto-test/busybox, command: sleep 3600, init: true, placement: { constraints: ["zone == field"] } }
`,
    );
    const started = await c.run('cluster', 'start', '--detach');
    expect(started.code, started.stderr).toBe(0);
  });

  afterAll(async () => {
    for (const child of devices) if (child.exitCode === null) child.kill('SIGTERM');
    await sleep(1_000);
    await c.destroy();
  });

  it('a join: true node joins with its own token and runs its pinned service; its credential lands 0600 on the device', async () => {
    const { url, token, hint } = await joinLine('pi-join');
    expect(url).toBe(`mqtts://127.0.0.1:${c.mqttPort}`);
    expect(hint).toContain('the token is its credential, keep it secret');
    device(['--join', url, '--token', token, '--state-dir', deviceDir('pi-join')]);
    await waitFor('pinned running on pi-join', async () => (await onNode('pinned', 'pi-join')).length === 1, 60_000);
    const status = (await apiStatus(c))!;
    expect(status.nodes.find((n) => n.id === 'pi-join')).toMatchObject({ online: true, local: false });
    for (const file of ['mqtt.json', 'join.json']) expect(statSync(join(deviceDir('pi-join'), file)).mode & 0o777, file).toBe(0o600);
    expect(JSON.parse(readFileSync(join(deviceDir('pi-join'), 'join.json'), 'utf8'))).toMatchObject({ cluster: c.name, node: 'pi-join', url });
  });

  it('a joined node takes part like any other: its metrics, its logs over MQTT, and operations on its service', async () => {
    await waitFor('metrics of pi-join', async () => Boolean((await apiStatus(c))?.nodes.find((n) => n.id === 'pi-join')?.metrics), 20_000);
    const metrics = await c.run('node', 'metrics', 'pi-join', '--json');
    expect(metrics.code, metrics.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(metrics.stdout))).toContain('cpu_percent');
    const logs = await c.run('service', 'logs', 'pinned');
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('hello from the barn');
    const before = (await onNode('pinned', 'pi-join'))[0]!.Id;
    const restart = await c.run('service', 'restart', 'pinned');
    expect(restart.code, restart.stderr).toBe(0);
    await waitFor('pinned replaced on pi-join', async () => {
      const now = await onNode('pinned', 'pi-join');
      return now.length === 1 && now[0]!.Id !== before;
    }, 30_000);
  });

  it('a device joins through a pool with the bootstrap token (with the one-file agent), gets a node of its own with the pool labels, and runs the service placed there', async () => {
    const { url, token, hint } = await joinLine('field');
    expect(hint).toContain('--node-id');
    device(['--join', url, '--token', token, '--node-id', 'field-1', '--state-dir', deviceDir('field-1')], localAgentBundle().path);
    await waitFor('fielded running on field-1', async () => (await onNode('fielded', 'field-1')).length === 1, 60_000);
    const list = await c.run('node', 'list');
    expect(list.stdout).toMatch(/field-1\s+\S+\s+joins by itself/);
    const events = await c.run('cluster', 'events');
    expect(events.stdout).toContain('node field-1 joined through pool field');
    // The credential it got is its own: not the pool's secret, not another node's.
    const own = JSON.parse(readFileSync(join(deviceDir('field-1'), 'mqtt.json'), 'utf8'));
    expect(own.username).toBe('field-1');
    expect(token).not.toContain(own.password);
  });

  it('refuses a wrong token, a wrong CA fingerprint, and a taken node id with clear messages, exit 2', async () => {
    const { url, token } = await joinLine('field');
    const wrongSecret = device(['--join', url, '--token', tamper(token, { secret: 'x'.repeat(32) }), '--state-dir', deviceDir('bad-1')]);
    expect(await wrongSecret.exited).toBe(2);
    expect(wrongSecret.output()).toContain('the cluster refused the token of pool field');
    const wrongCa = device(['--join', url, '--token', tamper(token, { ca: '0'.repeat(64) }), '--state-dir', deviceDir('bad-2')]);
    expect(await wrongCa.exited).toBe(2);
    expect(wrongCa.output()).toMatch(new RegExp(`the broker at ${url.replace(/[.]/g, '\\.')} is not cluster ${c.name}'s: its CA fingerprint`));
    const taken = device(['--join', url, '--token', token, '--node-id', 'field-1', '--state-dir', deviceDir('bad-3')]);
    expect(await taken.exited).toBe(2);
    expect(taken.output()).toContain('node id "field-1" is taken');
    const notAToken = device(['--join', url, '--token', 'K10abc::server:secret', '--state-dir', deviceDir('bad-4')]);
    expect(await notAToken.exited).toBe(1);
  });

  it('keeps the joined nodes and their containers through a control-plane restart', async () => {
    const before = (await containersOf(c.name)).filter((x) => ['pi-join', 'field-1'].includes(x.Labels['otto.node']!)).map((x) => x.Id).sort();
    expect(before).toHaveLength(2);
    const pid = (await apiStatus(c))!.cluster.pid;
    process.kill(pid, 'SIGKILL');
    await waitFor('the control plane gone', async () => !isAlive(pid), 10_000, 50);
    await sleep(2_000);
    expect((await c.run('cluster', 'start', '--detach')).code).toBe(0);
    await waitFor('both joined nodes online again', async () => {
      const status = await apiStatus(c);
      return ['pi-join', 'field-1'].every((id) => status?.nodes.find((n) => n.id === id)?.online) && status!.services.every((s) => s.running === s.desired);
    }, 60_000);
    const after = (await containersOf(c.name)).filter((x) => ['pi-join', 'field-1'].includes(x.Labels['otto.node']!)).map((x) => x.Id).sort();
    expect(after).toEqual(before);
  });

  it('node remove revokes a pool node: it goes unreachable and, restarted from its saved join, is refused (exit 2)', async () => {
    const removed = await c.run('node', 'remove', 'field-1');
    expect(removed.code, removed.stderr).toBe(0);
    await waitFor('field-1 gone from the nodes', async () => !(await apiStatus(c))?.nodes.some((n) => n.id === 'field-1'), 20_000);
    // Its replica is no longer assigned to it: no other node is in zone field, so it waits unplaced, with its reason.
    await waitFor('fielded no longer on field-1', async () => {
      const fielded = (await apiStatus(c))?.services.find((s) => s.name === 'fielded');
      return Boolean(fielded && !fielded.nodes.includes('field-1') && fielded.errors.some((e) => e.includes('not placed')));
    }, 20_000);
    const again = device(['--join', '--state-dir', deviceDir('field-1')], localAgentBundle().path);
    expect(await again.exited).toBe(2);
    expect(again.output()).toContain('the cluster refuses node field-1: it was removed, or its credential was replaced');
    const declared = await c.run('node', 'remove', 'pi-join');
    expect(declared.code).toBe(1);
    expect(declared.stderr).toContain('node pi-join is declared in otto.yaml');
  });

  it('a rotated pool token refuses the old one', async () => {
    const { url, token } = await joinLine('field');
    expect((await c.run('node', 'rotate-credentials', 'field')).code).toBe(0);
    const old = device(['--join', url, '--token', token, '--node-id', 'late-1', '--state-dir', deviceDir('late-1')]);
    expect(await old.exited).toBe(2);
    expect(old.output()).toContain('the cluster refused the token of pool field');
  });

  it('installs a systemd unit on the device that rejoins as saved (here: no running systemd, exit 2)', async () => {
    const unitDir = mkdtempSync(join(tmpdir(), 'otto-units-'));
    const result = await run(process.execPath, [cliPath, '-c', join(root, 'no-otto.yaml'), 'node', 'install', 'pi-join', '--systemd', '--state-dir', deviceDir('pi-join')], {
      env: { ...process.env, OTTO_SYSTEMD_UNIT_DIR: unitDir },
    }).catch((err: { code: number; stdout: string; stderr: string }) => err);
    expect((result as { code?: number }).code).toBe(2);
    expect((result as { stderr: string }).stderr).toContain('systemd is not running here');
    const unit = readFileSync(join(unitDir, `otto-agent-${c.name}-pi-join.service`), 'utf8');
    expect(unit).toContain(`${localAgentBundle().path} agent --join --state-dir ${deviceDir('pi-join')}`);
    expect(unit).not.toContain('--token');
    // With the flags and environment every agent runs with.
    expect(unit).toContain('--max-semi-space-size=1 --lite-mode --no-expose-wasm --no-icu-timezone-data --expose-gc');
    expect(unit).toContain('Environment=MALLOC_MMAP_THRESHOLD_=32768\nEnvironment=MALLOC_TRIM_THRESHOLD_=32768\n');
  });
});
