/**
 * Remote nodes over SSH, against the multi-node test bed (test/support/sshd.ts): real OpenSSH servers on
 * 127.0.0.2, 127.0.0.3 and one in a network namespace, real Docker, real MQTT (Mosquitto), the built CLI
 * and the bundled agent. No mocks. Run `npm run build` first (the agent bundle is part of the build).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_ENV } from '../src/agent/bundle.js';
import { parseConfig } from '../src/config/load.js';
import { desiredStateFor, planCluster } from '../src/control-plane/desired-state.js';
import { createLogger } from '../src/log.js';
import { encode } from '../src/protocol/codec.js';
import { topics } from '../src/protocol/topics.js';
import { KnownHosts } from '../src/remote/known-hosts.js';
import { RemoteAgentManager } from '../src/remote/manager.js';
import { RemoteAgent, loadAgentBundle, localAgentBundle } from '../src/remote/remote-agent.js';
import { SshConnection } from '../src/remote/ssh-connection.js';
import { TEST_IMAGE, containersOf, docker, freePort, isAlive, removeClusterContainers, waitFor } from './support/cli.js';
import { startMosquitto, type Mosquitto } from './support/mosquitto.js';
import {
  agentPids,
  clusterYaml,
  createNetns,
  generateKey,
  killAgents,
  makeWorkdir,
  sshFingerprint,
  startSshd,
  startTestBed,
  type Netns,
  type SshdNode,
  type TestBed,
  type Workdir,
} from './support/sshd.js';

const root = new URL('..', import.meta.url).pathname;
const quietLog = createLogger({ component: 'test', level: 'silent' });

let bed: TestBed;
let rpi1: SshdNode;
let rpi2: SshdNode;
let work: Workdir;
let mqttPort: number;

beforeAll(async () => {
  // The build's bundle, zod beside it, and the .sha256 sidecar of both, which the control plane compares with a node's copy.
  const bundlePath = join(root, 'dist', 'agent', 'otto-agent-0.1.0.cjs');
  const zodPath = join(root, 'dist', 'agent', 'otto-agent-0.1.0.zod.cjs');
  expect(existsSync(bundlePath), `${bundlePath} is missing: run npm run build`).toBe(true);
  const sidecar = readFileSync(`${bundlePath}.sha256`, 'utf8').trim();
  expect(sidecar).toBe(createHash('sha256').update(readFileSync(bundlePath)).update(readFileSync(zodPath)).digest('hex'));
  expect(localAgentBundle()).toMatchObject({ path: bundlePath, zodPath, sha256: sidecar, version: '0.1.0' });
  bed = await startTestBed(2);
  [rpi1, rpi2] = bed.nodes as [SshdNode, SshdNode];
  work = makeWorkdir();
  mqttPort = await freePort();
  work.write(
    'otto.yaml',
    clusterYaml({ cluster: work.cluster, mqttPort, nodes: [{ id: 'rpi-01', sshd: rpi1 }, { id: 'rpi-02', sshd: rpi2 }] }),
  );
});

afterAll(async () => {
  killAgents(work.cluster, ['rpi-01', 'rpi-02', 'rpi-ns']);
  await bed?.stop();
});

describe('the agent bundle', () => {
  it('is one file that runs from a folder with no node_modules; zod, beside it, is a file apart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'otto-bundle-'));
    const bundle = localAgentBundle();
    const copy = join(dir, 'otto-agent.cjs');
    execFileSync('cp', [bundle.path, copy]);
    expect(execFileSync(process.execPath, [copy, '--version'], { cwd: dir, encoding: 'utf8' }).trim()).toBe('0.1.0');
    const help = execFileSync(process.execPath, [copy, 'agent', '--help'], { cwd: dir, encoding: 'utf8' });
    expect(help).toContain('--mqtt-url <url>');
    expect(bundle.id).toMatch(/^0\.1\.0\+[0-9a-f]{12}$/);
    // zod's source is in the second file only: an agent holds it in memory once it needs it.
    expect(readFileSync(bundle.path, 'utf8')).not.toContain('ZodObject');
    expect(readFileSync(bundle.zodPath, 'utf8')).toContain('ZodObject');
  });
});

describe('host keys', () => {
  it('an unknown host key is refused with its fingerprint and the command that trusts it (exit 2)', async () => {
    const result = await work.run(['node', 'install', 'rpi-01', '--systemd']);
    expect(result.code).toBe(2);
    const print = sshFingerprint(rpi1.hostPublicKey);
    expect(result.stderr).toContain(`otto: host key of rpi-01 (127.0.0.2:${rpi1.port}) is not trusted: ${print}\n`);
    expect(result.stderr).toMatch(/^hint: .*then run: otto node trust rpi-01$/m);
  });

  it('node trust needs a confirmation, then adds the key to .otto/known_hosts; the host is trusted afterwards', async () => {
    const unconfirmed = await work.run(['node', 'trust', 'rpi-01']);
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toContain('otto: no terminal to confirm the fingerprint');

    const print = sshFingerprint(rpi1.hostPublicKey);
    for (const id of ['rpi-01', 'rpi-02']) {
      const result = await work.run(['node', 'trust', id, '--yes']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('presents the ssh-ed25519 host key SHA256:');
    }
    const known = readFileSync(join(work.dir, '.otto', 'known_hosts'), 'utf8');
    expect(known).toContain(`[127.0.0.2]:${rpi1.port} ${rpi1.hostPublicKey.split(' ').slice(0, 2).join(' ')}`);
    // OpenSSH agrees with what Otto wrote.
    const found = execFileSync('ssh-keygen', ['-F', `[127.0.0.2]:${rpi1.port}`, '-f', join(work.dir, '.otto', 'known_hosts')], { encoding: 'utf8' });
    expect(found).toContain('ssh-ed25519');

    const again = await work.run(['node', 'trust', 'rpi-01']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`${print} is already trusted`);
  });
});

describe('cluster check', () => {
  it('is all green for two SSH nodes and the local node', async () => {
    const result = await work.run(['cluster', 'check']);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const [header, ...rows] = result.stdout.trim().split('\n');
    expect(header).toMatch(/^NODE\s+SSH\s+AUTH\s+HOST KEY\s+ARCH\s+NODE\.JS\s+DOCKER\s+BROKER\s+CLOCK SKEW$/);
    expect(rows[0]).toMatch(/^local\s+-\s+-\s+-\s+(x86_64|aarch64)\s+v\S+\s+ok \S+\s+ok 127\.0\.0\.1:\d+\s+-$/);
    for (const id of ['rpi-01', 'rpi-02']) {
      const row = rows.find((r) => r.startsWith(id))!;
      expect(row).toMatch(new RegExp(`^${id}\\s+ok\\s+root\\s+trusted\\s+\\S+\\s+v\\d+\\.\\d+\\.\\d+\\s+ok \\S+\\s+ok 127\\.0\\.0\\.1:${mqttPort}\\s+[+-]\\d\\.\\d\\ds$`));
    }
    expect(result.stdout).toContain('all checks passed on 3 node(s)');

    const json = await work.run(['cluster', 'check', '--json']);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ ok: true, broker_mode: 'stand-in' });
    expect(report.nodes.map((n: { node: string }) => n.node)).toEqual(['local', 'rpi-01', 'rpi-02']);
  });

  it('a wrong client key: exit 2 and one clear line', async () => {
    const wrong = generateKey(join(work.dir, 'wrong_key'));
    work.write(
      'wrong-key.yaml',
      clusterYaml({ cluster: work.cluster, mqttPort, local: false, nodes: [{ id: 'rpi-01', sshd: rpi1, identity: wrong.path }] }),
    );
    const install = await work.run(['node', 'install', 'rpi-01', '--systemd'], 'wrong-key.yaml');
    expect(install.code).toBe(2);
    expect(install.stderr.split('\n')[0]).toBe(`otto: rpi-01: SSH authentication as root failed (tried key ${wrong.path})`);
    expect(install.stderr).toContain('hint: add the public key to ~root/.ssh/authorized_keys on rpi-01');

    const check = await work.run(['cluster', 'check'], 'wrong-key.yaml');
    expect(check.code).toBe(2);
    expect(check.stdout).toMatch(/^rpi-01\s+ok\s+FAIL\s+trusted\s+-/m);
    expect(check.stdout).toContain(`rpi-01 AUTH: rpi-01: SSH authentication as root failed (tried key ${wrong.path})`);
    expect(check.stderr).toContain('otto: cluster check: 1 check(s) failed on 1 node(s): rpi-01 AUTH');
  });

  it('without nodes[].ssh.identity: the running ssh-agent, else ~/.ssh/id_ed25519', async () => {
    work.write(
      'default-key.yaml',
      clusterYaml({ cluster: work.cluster, mqttPort, local: false, nodes: [{ id: 'rpi-01', sshd: rpi1 }] }).replace(/\n\s+identity: .*/, ''),
    );
    // No agent, no key in ~/.ssh: a clear line.
    const none = await work.run(['node', 'install', 'rpi-01', '--systemd'], 'default-key.yaml');
    expect(none.code).toBe(2);
    expect(none.stderr.split('\n')[0]).toBe(`otto: rpi-01: no SSH key to log in as root: no ssh-agent (SSH_AUTH_SOCK), no usable ${work.home}/.ssh/id_ed25519 or id_rsa`);

    // The ssh-agent, holding the client key.
    const agentDir = mkdtempSync(join(tmpdir(), 'otto-ssh-agent-'));
    const socket = join(agentDir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      await waitFor('ssh-agent', async () => existsSync(socket), 10_000, 50);
      execFileSync('ssh-add', ['-q', bed.clientKey.path], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
      const viaAgent = await work.run(['cluster', 'check', '--json'], 'default-key.yaml', { SSH_AUTH_SOCK: socket });
      expect(JSON.parse(viaAgent.stdout).nodes[0].checks.auth).toMatchObject({ status: 'ok', value: 'root' });
    } finally {
      agent.kill('SIGTERM');
    }

    // ~/.ssh/id_ed25519 of the user running otto.
    mkdirSync(join(work.home, '.ssh'), { recursive: true, mode: 0o700 });
    copyFileSync(bed.clientKey.path, join(work.home, '.ssh', 'id_ed25519'));
    const viaFile = await work.run(['cluster', 'check', '--json'], 'default-key.yaml');
    expect(JSON.parse(viaFile.stdout).nodes[0].checks.auth).toMatchObject({ status: 'ok', value: 'root' });
    rmSync(join(work.home, '.ssh'), { recursive: true });
  });

  it('reports a stopped Docker engine on one node (exit 2, with a hint)', async () => {
    work.write(
      'no-docker.yaml',
      clusterYaml({
        cluster: work.cluster,
        mqttPort,
        nodes: [{ id: 'rpi-01', sshd: rpi1, dockerUrl: 'unix:///tmp/otto-test-no-docker.sock' }, { id: 'rpi-02', sshd: rpi2 }],
      }),
    );
    const result = await work.run(['cluster', 'check'], 'no-docker.yaml');
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/^rpi-01\s+ok\s+root\s+trusted\s+\S+\s+v\S+\s+FAIL\s+ok/m);
    expect(result.stdout).toMatch(/^rpi-02\s+ok\s+root\s+trusted\s+\S+\s+v\S+\s+ok /m);
    expect(result.stdout).toContain('rpi-01 DOCKER: rpi-01: Docker is not reachable at unix:///tmp/otto-test-no-docker.sock: ENOENT');
    expect(result.stdout).toContain('hint: start Docker on rpi-01 (systemctl start docker), or fix nodes[].docker_url');
    expect(result.stderr).toContain('rpi-01 DOCKER');
  });

  describe('with a node in its own network namespace', () => {
    let netns: Netns;
    let isolated: SshdNode;

    beforeAll(async () => {
      netns = createNetns(1);
      isolated = await startSshd({ host: netns.nodeAddress, clientKey: bed.clientKey, root: bed.root, netns: netns.name, name: 'netns' });
    });

    afterAll(async () => {
      await isolated?.stop();
      netns?.remove();
    });

    it('reports the broker unreachable from that node only (exit 2)', async () => {
      work.write(
        'netns.yaml',
        clusterYaml({ cluster: work.cluster, mqttPort, nodes: [{ id: 'rpi-01', sshd: rpi1 }, { id: 'rpi-ns', sshd: isolated }] }),
      );
      // Trusted non-interactively by its fingerprint, as read on the node.
      const wrong = await work.run(['node', 'trust', 'rpi-ns', '--fingerprint', 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'], 'netns.yaml');
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toContain('not the expected SHA256:AAAA');
      const trust = await work.run(['node', 'trust', 'rpi-ns', '--fingerprint', sshFingerprint(isolated.hostPublicKey)], 'netns.yaml');
      expect(trust.code, trust.stderr).toBe(0);
      const result = await work.run(['cluster', 'check'], 'netns.yaml');
      expect(result.code).toBe(2);
      expect(result.stdout).toMatch(/^rpi-01\s+ok\s+root\s+trusted\s+\S+\s+v\S+\s+ok \S+\s+ok /m);
      expect(result.stdout).toMatch(/^rpi-ns\s+ok\s+root\s+trusted\s+\S+\s+v\S+\s+ok \S+\s+FAIL\s+[+-]/m);
      // Remote nodes: mqtt.tls auto is on, so the agents are given mqtts.
      expect(result.stdout).toContain(`rpi-ns BROKER: rpi-ns cannot reach the broker at mqtts://127.0.0.1:${mqttPort}: ECONNREFUSED`);
      expect(result.stdout).toContain('hint: rpi-ns must reach mqtts://127.0.0.1:');
      expect(result.stderr).toContain('1 check(s) failed on 1 node(s): rpi-ns BROKER');
    });

    it('a node whose link is down: SSH unreachable', async () => {
      netns.setLink(false);
      try {
        const result = await work.run(['cluster', 'check', '--json'], 'netns.yaml');
        expect(result.code).toBe(2);
        const report = JSON.parse(result.stdout);
        const node = report.nodes.find((n: { node: string }) => n.node === 'rpi-ns');
        expect(node.checks.ssh).toMatchObject({ status: 'fail' });
        expect(node.checks.ssh.error).toMatch(/^rpi-ns: cannot reach SSH at 169\.254\.\d+\.\d+:22: (timed out|host unreachable|network unreachable)/);
      } finally {
        netns.setLink(true);
      }
    });
  });
});

describe('a changed host key', () => {
  it('is refused loudly, node trust will not overwrite it, node trust --replace does', async () => {
    rpi2.rotateHostKey();
    await rpi2.restart();
    const print = sshFingerprint(rpi2.hostPublicKey);
    const install = await work.run(['node', 'install', 'rpi-02', '--systemd']);
    expect(install.code).toBe(2);
    expect(install.stderr).toContain(`otto: WARNING: HOST KEY OF rpi-02 (127.0.0.3:${rpi2.port}) HAS CHANGED: it presents ${print}`);
    expect(install.stderr).toContain('hint: if rpi-02 was reinstalled or its keys regenerated, check the new fingerprint on the node, then run: otto node trust rpi-02 --replace');

    const check = await work.run(['cluster', 'check']);
    expect(check.code).toBe(2);
    expect(check.stdout).toMatch(/^rpi-02\s+ok\s+-\s+CHANGED/m);

    const trust = await work.run(['node', 'trust', 'rpi-02', '--yes']);
    expect(trust.code).toBe(2);
    expect(trust.stderr).toContain('HAS CHANGED');

    const replace = await work.run(['node', 'trust', 'rpi-02', '--replace', '--yes']);
    expect(replace.code, replace.stderr).toBe(0);
    expect(replace.stdout).toContain('replaced 1 old key(s) of rpi-02');
    expect((await work.run(['cluster', 'check'])).code).toBe(0);
  });
});

describe('the remote agent', () => {
  let broker: Mosquitto;
  let settings: { cluster: string; mqttUrl: string; interval: string };
  const knownHosts = () => KnownHosts.forWorkspace(join(work.dir, '.otto'), work.home);
  const target = (node: SshdNode, id: string) => ({ nodeId: id, host: node.host, port: node.port, user: 'root', identity: node.clientKeyPath });

  beforeAll(async () => {
    broker = await startMosquitto();
    settings = { cluster: work.cluster, mqttUrl: `mqtt://127.0.0.1:${broker.port}`, interval: '1s' };
  });

  afterAll(async () => {
    killAgents(work.cluster, ['rpi-01', 'rpi-02']);
    await removeClusterContainers(work.cluster);
    await broker?.stop();
  });

  it('is uploaded, started detached, and stopped with no process left behind', async () => {
    const config = parseConfig(readFileSync(join(work.dir, 'otto.yaml'), 'utf8'), 'otto.yaml');
    const manager = new RemoteAgentManager({ workspaceDir: join(work.dir, '.otto'), log: quietLog, knownHosts: knownHosts() });
    const remote = config.nodes.filter((n) => n.id !== 'local');
    await manager.ensure(remote, settings);
    for (const id of ['rpi-01', 'rpi-02']) {
      expect(manager.sshState(id)).toBe('connected');
      const pid = manager.agentPid(id)!;
      expect(agentPids(work.cluster, id)).toEqual([pid]);
      expect(manager.info(id)).toMatchObject({ agent_version: '0.1.0', arch: expect.any(String), node_version: process.version });
    }
    // The bundle went to ~/.otto/agent/<version>/ of each node, and the agent runs it.
    expect(existsSync(join(rpi1.home, '.otto', 'agent', '0.1.0', 'otto-agent.cjs'))).toBe(true);
    expect(readFileSync(join(rpi1.home, '.otto', 'agent', '0.1.0', 'otto-agent.zod.cjs'))).toEqual(readFileSync(localAgentBundle().zodPath));
    expect(readFileSync(`/proc/${manager.agentPid('rpi-01')}/cmdline`, 'utf8').split('\0')).toContain(join(rpi1.home, '.otto', 'agent', '0.1.0', 'otto-agent.cjs'));
    // Its start script gave it the environment every agent gets.
    expect(readFileSync(`/proc/${manager.agentPid('rpi-01')}/environ`, 'utf8').split('\0')).toEqual(expect.arrayContaining(Object.entries(AGENT_ENV).map(([name, value]) => `${name}=${value}`)));
    expect(readFileSync(join(rpi1.home, '.otto', 'agent', `${work.cluster}-rpi-01.pid`), 'utf8').trim()).toBe(String(manager.agentPid('rpi-01')));

    // A second ensure (another manager: a restarted control plane) keeps the running agents.
    const pids = remote.map((n) => manager.agentPid(n.id));
    const again = new RemoteAgentManager({ workspaceDir: join(work.dir, '.otto'), log: quietLog, knownHosts: knownHosts() });
    await again.ensure(remote, settings);
    expect(remote.map((n) => again.agentPid(n.id))).toEqual(pids);
    again.detach();

    const { stopped, failed } = await manager.stopAll();
    expect(failed).toEqual([]);
    expect(stopped.sort()).toEqual(['rpi-01', 'rpi-02']);
    for (const id of ['rpi-01', 'rpi-02']) expect(agentPids(work.cluster, id)).toEqual([]);
    for (const pid of pids) expect(isAlive(pid!)).toBe(false);
  });

  it('an agent of an older version is replaced on start; the same version is kept', async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'otto-old-bundle-'));
    execFileSync(process.execPath, [join(root, 'scripts', 'bundle-agent.mjs'), '--version', '0.0.1', '--outdir', outdir, '--quiet']);
    const old = loadAgentBundle(join(outdir, 'otto-agent-0.0.1.cjs'), '0.0.1');
    const conn = await SshConnection.connect(target(rpi1, 'rpi-01'), { knownHosts: knownHosts() });
    const agentSettings = { ...settings, dockerUrl: 'unix:///var/run/docker.sock' };
    const statuses = new Map<string, string>();
    const client = await mqtt.connectAsync(settings.mqttUrl);
    client.on('message', (topic, payload) => statuses.set(topic, payload.toString()));
    await client.subscribeAsync(topics.status('rpi-01'));
    try {
      const first = await new RemoteAgent(conn, 'rpi-01', work.cluster, old).start(agentSettings);
      expect(first.action).toBe('started');
      await waitFor('the 0.0.1 agent online', async () => JSON.parse(statuses.get(topics.status('rpi-01')) ?? '{}').agent_version === '0.0.1');

      const current = new RemoteAgent(conn, 'rpi-01', work.cluster, localAgentBundle());
      const second = await current.start(agentSettings);
      expect(second.action).toBe('replaced');
      expect(second.previous).toBe(old.id);
      expect(second.pid).not.toBe(first.pid);
      expect(isAlive(first.pid)).toBe(false);
      expect(agentPids(work.cluster, 'rpi-01')).toEqual([second.pid]);
      await waitFor('the 0.1.0 agent online', async () => {
        const status = JSON.parse(statuses.get(topics.status('rpi-01')) ?? '{}');
        return status.agent_version === '0.1.0' && status.state === 'online';
      });

      const third = await current.start(agentSettings);
      expect(third).toEqual({ pid: second.pid, action: 'kept' });
      expect((await current.stop()).wasRunning).toBe(true);
      expect(agentPids(work.cluster, 'rpi-01')).toEqual([]);
    } finally {
      await client.endAsync();
      conn.close();
    }
  });

  it('keeps running with its containers when the SSH server dies; the manager reconnects when it is back', async () => {
    const config = parseConfig(
      clusterYaml({
        cluster: work.cluster,
        mqttPort: broker.port,
        nodes: [{ id: 'rpi-01', sshd: rpi1 }],
        services: `  - name: sleeper\n    image: ${TEST_IMAGE}\n    node: rpi-01\n    command: sh -c 'while true; do sleep 1; done'\n    init: true\n`,
      }),
      'otto.yaml',
    );
    const manager = new RemoteAgentManager({
      workspaceDir: join(work.dir, '.otto'),
      log: quietLog,
      knownHosts: knownHosts(),
      backoff: { initialMs: 200, maxMs: 1_000 },
      connect: { keepaliveIntervalMs: 500 },
    });
    const client = await mqtt.connectAsync(settings.mqttUrl);
    try {
      // What the control plane would publish for rpi-01.
      const plan = planCluster(config);
      const desired = desiredStateFor(config, 'rpi-01', plan.replicasByNode.get('rpi-01') ?? [], Date.now());
      await client.publishAsync(topics.desired('rpi-01'), encode(desired), { qos: 1, retain: true });
      await manager.ensure(config.nodes.filter((n) => n.id === 'rpi-01'), settings);
      const pid = manager.agentPid('rpi-01')!;
      const container = await waitFor('the sleeper container on rpi-01', async () => {
        const list = await containersOf(work.cluster);
        return list.find((c) => c.Labels['otto.node'] === 'rpi-01' && c.State === 'running');
      });

      await rpi1.stop();
      await waitFor('the manager to notice', async () => manager.sshState('rpi-01') === 'reconnecting', 20_000, 100);
      expect(isAlive(pid)).toBe(true);

      // Still online over MQTT: fresh metrics keep coming while SSH is down.
      const seen: number[] = [];
      client.on('message', (topic) => topic === topics.nodeMetrics('rpi-01') && seen.push(Date.now()));
      await client.subscribeAsync(topics.nodeMetrics('rpi-01'));
      await waitFor('metrics from rpi-01 while its sshd is down', async () => seen.length >= 2, 15_000, 100);
      expect((await docker.getContainer(container.Id).inspect()).State.Running).toBe(true);

      await rpi1.restart();
      await waitFor('the SSH connection back', async () => manager.sshState('rpi-01') === 'connected', 20_000, 100);
      expect(manager.agentPid('rpi-01')).toBe(pid);
      await manager.stopAll();
      expect(isAlive(pid)).toBe(false);
      // Stopping the agent leaves its containers running.
      expect((await docker.getContainer(container.Id).inspect()).State.Running).toBe(true);
    } finally {
      await client.publishAsync(topics.desired('rpi-01'), '', { retain: true });
      await client.endAsync();
      manager.detach();
    }
  });
});

describe('otto node install --systemd', () => {
  it('writes the unit and says clearly that the node has no running systemd (exit 2)', async () => {
    const unitDir = mkdtempSync(join(tmpdir(), 'otto-units-'));
    const result = await work.run(['node', 'install', 'rpi-01', '--systemd'], 'otto.yaml', { OTTO_SYSTEMD_UNIT_DIR: unitDir });
    const unitPath = join(unitDir, `otto-agent-${work.cluster}-rpi-01.service`);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toBe(
      `otto: rpi-01: wrote ${unitPath}, but systemd is not running there (no /run/systemd/system): the agent will not be started at boot`,
    );
    expect(result.stderr).toContain(`hint: on a node booted with systemd, run: systemctl daemon-reload && systemctl enable --now otto-agent-${work.cluster}-rpi-01.service`);
    const unit = readFileSync(unitPath, 'utf8');
    const base = join(rpi1.home, '.otto', 'agent');
    expect(unit).toContain(`Description=Otto agent of node rpi-01 (cluster ${work.cluster})`);
    expect(unit).toContain('Type=forking');
    expect(unit).toContain('User=root');
    expect(unit).toContain(`PIDFile=${base}/${work.cluster}-rpi-01.pid`);
    expect(unit).toContain(`ExecStart=/bin/sh ${base}/${work.cluster}-rpi-01.start.sh`);
    expect(unit).toContain('Restart=on-failure');
    expect(unit).toContain('WantedBy=multi-user.target');
    // The start script it runs is on the node, with the advertised broker address.
    const script = readFileSync(`${base}/${work.cluster}-rpi-01.start.sh`, 'utf8');
    expect(script).toContain(`--mqtt-url mqtts://127.0.0.1:${mqttPort}`);
    expect(script).toContain('--mqtt-ca-file');
    expect(agentPids(work.cluster, 'rpi-01')).toEqual([]);
  });
});
