/**
 * The RemoteAgentManager against the real OpenSSH test bed (test/support/sshd.ts), a real Mosquitto and
 * the built agent bundle: provisioning in the background, one start at a time per node, stops that win.
 * A node that is "unreachable" is a real TCP listener that accepts and never speaks (a host that hangs),
 * or a port where nothing listens. Run `npm run build` first (the agent bundle is part of the build).
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeConfig } from '../src/config/schema.js';
import { parseConfig } from '../src/config/load.js';
import { InfrastructureError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { KnownHosts } from '../src/remote/known-hosts.js';
import { RemoteAgentManager, type NodeResult, type RemoteAgentManagerOptions, type RemoteSettings } from '../src/remote/manager.js';
import { freePort, isAlive, waitFor } from './support/cli.js';
import { startMosquitto, type Mosquitto } from './support/mosquitto.js';
import { agentPids, killAgents, sshFingerprint, startTestBed, type SshdNode, type TestBed } from './support/sshd.js';

const quietLog = createLogger({ component: 'test', level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let bed: TestBed;
let rpi1: SshdNode;
let rpi2: SshdNode;
let broker: Mosquitto;
let dir: string;
/** Every cluster name a test used, for the clean-up of agents a failed test left behind. */
const clusters: string[] = [];

beforeAll(async () => {
  bed = await startTestBed(2);
  [rpi1, rpi2] = bed.nodes as [SshdNode, SshdNode];
  broker = await startMosquitto();
  dir = mkdtempSync(join(tmpdir(), 'otto-remote-manager-'));
  mkdirSync(join(dir, 'home'));
});

afterAll(async () => {
  for (const cluster of clusters) killAgents(cluster, ['rpi-01', 'rpi-02']);
  await bed?.stop();
  await broker?.stop();
});

/** A workspace folder whose known_hosts trusts these test-bed nodes. */
function workspace(trusted: SshdNode[]): string {
  const workspaceDir = mkdtempSync(join(dir, 'ws-'));
  const lines = trusted.map((node) => `[${node.host}]:${node.port} ${node.hostPublicKey.split(' ').slice(0, 2).join(' ')}\n`);
  writeFileSync(join(workspaceDir, 'known_hosts'), lines.join(''), { mode: 0o600 });
  return workspaceDir;
}

function trust(workspaceDir: string, node: SshdNode): void {
  writeFileSync(join(workspaceDir, 'known_hosts'), `[${node.host}]:${node.port} ${node.hostPublicKey.split(' ').slice(0, 2).join(' ')}\n`, { flag: 'a' });
}

function nodes(specs: { id: string; host: string; port: number }[]): NodeConfig[] {
  const yaml = `cluster:\n  name: test\nmqtt:\n  advertise: 127.0.0.1\nnodes:\n${specs
    .map((s) => `  - id: ${s.id}\n    host: ${s.host}\n    user: root\n    ssh:\n      port: ${s.port}\n      identity: ${bed.clientKey.path}\n`)
    .join('')}`;
  return parseConfig(yaml, 'otto.yaml').nodes;
}

const node = (id: string, sshd: SshdNode) => ({ id, host: sshd.host, port: sshd.port });

function settingsFor(cluster: string, interval = '1s'): RemoteSettings {
  return { cluster, mqttUrl: `mqtt://127.0.0.1:${broker.port}`, interval };
}

function newCluster(): string {
  const cluster = `rm${Math.random().toString(36).slice(2, 8)}`;
  clusters.push(cluster);
  return cluster;
}

/** A manager whose outcomes land in `results`, node by node. */
function manager(workspaceDir: string, options: Partial<RemoteAgentManagerOptions> = {}) {
  const results = new Map<string, NodeResult[]>();
  const remote = new RemoteAgentManager({
    workspaceDir,
    log: quietLog,
    knownHosts: KnownHosts.forWorkspace(workspaceDir, join(dir, 'home')),
    onNodeResult: (id, result) => results.set(id, [...(results.get(id) ?? []), result]),
    ...options,
  });
  return { remote, results, of: (id: string) => results.get(id) ?? [] };
}

/** A TCP listener that accepts connections and never answers: an SSH server that hangs. */
async function hangingServer(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Agents launched while another ran, which the agent's own pid-file guard made exit at once: a start
 * that overlapped another leaves this line in the agent's log even when only one agent is left.
 */
function overlappingLaunches(sshd: SshdNode, cluster: string, id: string): string[] {
  const log = readFileSync(join(sshd.home, '.otto', 'agent', `${cluster}-${id}.log`), 'utf8');
  return log.split('\n').filter((line) => line.includes(`another agent for node ${id} is running`));
}

/** The agents of a node now, and again after `ms` (a second start racing the first would show by then). */
async function agentsSettled(cluster: string, id: string, ms = 1_500): Promise<number[]> {
  await sleep(ms);
  return agentPids(cluster, id);
}

describe('one start at a time per node', () => {
  it('two ensure() calls at once for one node start exactly one agent', async () => {
    const cluster = newCluster();
    const { remote, of } = manager(workspace([rpi1]));
    const [n1] = nodes([node('rpi-01', rpi1)]);
    try {
      await Promise.all([remote.ensure([n1!], settingsFor(cluster)), remote.ensure([n1!], settingsFor(cluster))]);
      const pid = remote.agentPid('rpi-01');
      expect(pid).toBeGreaterThan(0);
      expect(remote.sshState('rpi-01')).toBe('connected');
      expect(agentPids(cluster, 'rpi-01')).toEqual([pid]);
      expect(await agentsSettled(cluster, 'rpi-01')).toEqual([pid]);
      expect(overlappingLaunches(rpi1, cluster, 'rpi-01')).toEqual([]);
      // The second call joined the first attempt: one outcome, one start.
      expect(of('rpi-01')).toEqual([{ ok: true, pid, action: 'started', attempt: 1, changed: true }]);
      expect(readFileSync(join(rpi1.home, '.otto', 'agent', `${cluster}-rpi-01.pid`), 'utf8').trim()).toBe(String(pid));
    } finally {
      expect((await remote.stopAll()).failed).toEqual([]);
    }
    expect(agentPids(cluster, 'rpi-01')).toEqual([]);
  });

  it('an agent that died, restarted by the periodic check and by an ensure with new settings at once: one agent', async () => {
    const cluster = newCluster();
    const { remote, of } = manager(workspace([rpi1]), { checkIntervalMs: 50 });
    const [n1] = nodes([node('rpi-01', rpi1)]);
    try {
      await remote.ensure([n1!], settingsFor(cluster));
      const first = remote.agentPid('rpi-01')!;
      process.kill(first, 'SIGKILL');
      await waitFor('the agent to die', async () => !isAlive(first), 5_000, 20);
      // The check (every 50 ms) finds it dead while this ensure restarts it with --interval 2s.
      await remote.ensure([n1!], settingsFor(cluster, '2s'));
      const pids = await agentsSettled(cluster, 'rpi-01');
      expect(pids).toHaveLength(1);
      expect(overlappingLaunches(rpi1, cluster, 'rpi-01')).toEqual([]);
      expect(readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0').join(' ')).toContain(' --interval 2s');
      await waitFor('the manager to know the running agent', async () => remote.agentPid('rpi-01') === pids[0], 5_000, 50);
      expect(of('rpi-01').every((r) => r.ok)).toBe(true);
    } finally {
      expect((await remote.stopAll()).failed).toEqual([]);
    }
    expect(agentPids(cluster, 'rpi-01')).toEqual([]);
  });
});

describe('provisioning in the background', () => {
  it('ensure returns at once with a node that hangs; the other gets its agent; the hanging one is reported and retried', async () => {
    const cluster = newCluster();
    const hanging = await hangingServer();
    const { remote, of } = manager(workspace([rpi1]), { connect: { readyTimeoutMs: 700 }, backoff: { initialMs: 100, maxMs: 300 } });
    const given = nodes([node('rpi-01', rpi1), { id: 'rpi-02', host: '127.0.0.1', port: hanging.port }]);
    try {
      const started = performance.now();
      await remote.ensure(given, settingsFor(cluster), { waitFirstAttemptMs: 0 });
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(remote.sshState('rpi-01')).toBe('connecting');
      expect(remote.sshState('rpi-02')).toBe('connecting');

      await waitFor('the agent of rpi-01', async () => remote.sshState('rpi-01') === 'connected', 20_000, 50);
      expect(agentPids(cluster, 'rpi-01')).toEqual([remote.agentPid('rpi-01')]);
      expect(of('rpi-01')).toMatchObject([{ ok: true, action: 'started', changed: true }]);

      await waitFor('two failed attempts on rpi-02', async () => of('rpi-02').length >= 2, 10_000, 50);
      const [first, second] = of('rpi-02');
      expect(first).toEqual({
        ok: false,
        error: `rpi-02: SSH handshake with 127.0.0.1:${hanging.port} timed out`,
        hint: `is 127.0.0.1:${hanging.port} an SSH server? check nodes[].ssh.port`,
        needsUser: false,
        attempt: 1,
        changed: true,
      });
      // The same error again: reported, marked as no change.
      expect(second).toMatchObject({ ok: false, needsUser: false, attempt: 2, changed: false });
      expect(hanging.connections()).toBeGreaterThanOrEqual(2);
      expect(remote.sshState('rpi-02')).toBe('reconnecting');
      expect(remote.info('rpi-02')?.last_error).toBe(first!.ok ? null : first!.error);

      // A bounded wait: ensure returns once the bound is over, the hanging node still trying.
      const [hangingNode] = nodes([{ id: 'rpi-02', host: '127.0.0.1', port: hanging.port }]);
      const slow = manager(workspace([]), { connect: { readyTimeoutMs: 15_000 } });
      const before = performance.now();
      await slow.remote.ensure([hangingNode!], settingsFor(cluster), { waitFirstAttemptMs: 400 });
      const waited = performance.now() - before;
      expect(waited).toBeGreaterThanOrEqual(390);
      expect(waited).toBeLessThan(1_000);
      expect(slow.remote.sshState('rpi-02')).toBe('connecting');
      slow.remote.detach();
    } finally {
      await hanging.close();
      const { stopped, failed } = await remote.stopAll();
      expect(stopped).toEqual(['rpi-01']);
      expect(failed.map((f) => f.node)).toEqual(['rpi-02']);
    }
    expect(agentPids(cluster, 'rpi-01')).toEqual([]);
  });

  it('an unknown host key at start is reported as needing the user within the wait bound, the hanging node left to retry', async () => {
    const cluster = newCluster();
    const hanging = await hangingServer();
    const workspaceDir = workspace([]);
    const { remote, of } = manager(workspaceDir, { connect: { readyTimeoutMs: 5_000 } });
    const given = nodes([node('rpi-02', rpi2), { id: 'rpi-01', host: '127.0.0.1', port: hanging.port }]);
    try {
      const started = performance.now();
      const error = await remote.ensure(given, settingsFor(cluster), { waitFirstAttemptMs: 1_500 }).then(
        () => undefined,
        (err: unknown) => err,
      );
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(1_490);
      expect(waited).toBeLessThan(2_500);
      expect(error).toBeInstanceOf(InfrastructureError);
      const print = sshFingerprint(rpi2.hostPublicKey);
      expect((error as InfrastructureError).message).toBe(`host key of rpi-02 (127.0.0.3:${rpi2.port}) is not trusted: ${print}`);
      expect((error as InfrastructureError).hint).toMatch(/then run: otto node trust rpi-02$/);
      expect(of('rpi-02')).toMatchObject([{ ok: false, needsUser: true, attempt: 1, changed: true }]);
      expect(remote.sshState('rpi-02')).toBe(`failed: host key of rpi-02 (127.0.0.3:${rpi2.port}) is not trusted: ${print}`);
      // The hanging node has not failed yet (its handshake waits 5 s): not part of the error.
      expect(of('rpi-01')).toEqual([]);
      expect(remote.sshState('rpi-01')).toBe('connecting');

      // The user trusts the key; the next ensure (a config reload) starts the agent in the background.
      trust(workspaceDir, rpi2);
      await remote.ensure(given, settingsFor(cluster), { waitFirstAttemptMs: 0 });
      await waitFor('the agent of rpi-02', async () => remote.sshState('rpi-02') === 'connected', 20_000, 50);
      expect(agentPids(cluster, 'rpi-02')).toEqual([remote.agentPid('rpi-02')]);
      expect(of('rpi-02')).toMatchObject([{ ok: false }, { ok: true, action: 'started', attempt: 2, changed: true }]);
    } finally {
      remote.detach();
      await hanging.close();
      killAgents(cluster, ['rpi-02']);
    }
  });

  it('an unknown host key alone fails at once, well within the bound', async () => {
    const cluster = newCluster();
    const { remote } = manager(workspace([]));
    const started = performance.now();
    await expect(remote.ensure(nodes([node('rpi-01', rpi1)]), settingsFor(cluster), { waitFirstAttemptMs: 10_000 })).rejects.toThrow(
      `host key of rpi-01 (127.0.0.2:${rpi1.port}) is not trusted`,
    );
    expect(performance.now() - started).toBeLessThan(3_000);
    remote.detach();
  });
});

describe('a stop wins over a start in flight', () => {
  it('stopAll() while the start is still connecting: no agent, now or later', async () => {
    const cluster = newCluster();
    const { remote, of } = manager(workspace([rpi1]));
    await remote.ensure(nodes([node('rpi-01', rpi1)]), settingsFor(cluster), { waitFirstAttemptMs: 0 });
    expect(remote.sshState('rpi-01')).toBe('connecting');
    const { stopped, failed } = await remote.stopAll();
    expect({ stopped, failed }).toEqual({ stopped: [], failed: [] });
    expect(await agentsSettled(cluster, 'rpi-01')).toEqual([]);
    // The start was given up, so nothing was reported for it.
    expect(of('rpi-01')).toEqual([]);
    expect(remote.sshState('rpi-01')).toBe('disconnected');
  });

  it('stopAll() while the agent is being launched: the start finishes, then the stop ends it', async () => {
    const cluster = newCluster();
    const { remote } = manager(workspace([rpi1]));
    await remote.ensure(nodes([node('rpi-01', rpi1)]), settingsFor(cluster), { waitFirstAttemptMs: 0 });
    // The node's helper waits a second after the launch to see the agent live: the start is in flight.
    const [pid] = await waitFor('the agent process to appear', async () => {
      const pids = agentPids(cluster, 'rpi-01');
      return pids.length ? pids : undefined;
    }, 20_000, 10);
    expect(remote.sshState('rpi-01')).toBe('connecting');
    const { stopped, failed } = await remote.stopAll();
    expect({ stopped, failed }).toEqual({ stopped: ['rpi-01'], failed: [] });
    expect(isAlive(pid!)).toBe(false);
    expect(await agentsSettled(cluster, 'rpi-01')).toEqual([]);
  });

  it('a node removed while its start is in flight has no agent once the start is over', async () => {
    const cluster = newCluster();
    const { remote } = manager(workspace([rpi1, rpi2]));
    const both = nodes([node('rpi-01', rpi1), node('rpi-02', rpi2)]);
    await remote.ensure(both, settingsFor(cluster), { waitFirstAttemptMs: 0 });
    // A reload without rpi-02, waiting (bounded) for its stop.
    await remote.ensure(both.slice(0, 1), settingsFor(cluster), { waitFirstAttemptMs: 20_000 });
    expect(remote.sshState('rpi-01')).toBe('connected');
    expect(remote.info('rpi-02')).toBeUndefined();
    expect(agentPids(cluster, 'rpi-01')).toEqual([remote.agentPid('rpi-01')]);
    expect(await agentsSettled(cluster, 'rpi-02')).toEqual([]);
    expect((await remote.stopAll()).stopped).toEqual(['rpi-01']);
    expect(agentPids(cluster, 'rpi-01')).toEqual([]);
  });
});

// A port where nothing listens fails fast (connection refused) and is retried, not reported as needing the user.
describe('a port where nothing listens', () => {
  it('is a transient failure, retried in the background', async () => {
    const cluster = newCluster();
    const port = await freePort();
    const { remote, of } = manager(workspace([]), { backoff: { initialMs: 50, maxMs: 100 } });
    await remote.ensure(nodes([{ id: 'rpi-01', host: '127.0.0.1', port }]), settingsFor(cluster), { waitFirstAttemptMs: 5_000 });
    expect(of('rpi-01')).toMatchObject([{ ok: false, needsUser: false, error: `rpi-01: cannot reach SSH at 127.0.0.1:${port}: connection refused` }]);
    await waitFor('three attempts', async () => of('rpi-01').length >= 3, 5_000, 20);
    expect(of('rpi-01').map((r) => r.attempt).slice(0, 3)).toEqual([1, 2, 3]);
    remote.detach();
  });
});
