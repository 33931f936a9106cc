/**
 * The multi-node test bed: real OpenSSH servers (Debian's openssh-server), each acting as one remote node.
 * Every server listens on its own loopback address (127.0.0.2, 127.0.0.3, ...) or, for a node that must be
 * cut off from this machine's network, on the far end of a veth pair in its own network namespace. Keys
 * are generated per run; root logs in with a per-run ed25519 client key. Each node gets its own home
 * folder (sshd's SetEnv HOME and internal-sftp -d), so nodes sharing this machine do not share ~/.otto.
 * The nodes share this machine's Docker engine: the otto.node label keeps their containers apart.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterStatusSchema, type ClusterStatus } from '../../src/http/schemas.js';
import { otto, waitFor, type CliResult } from './cli.js';

export interface SshdNode {
  /** Address the server listens on (what otto.yaml's nodes[].host says). */
  host: string;
  port: number;
  /** The node's home folder (~ of root as the node sees it). */
  home: string;
  dir: string;
  hostKeyPath: string;
  /** `ssh-ed25519 AAAA...`: the host's public key, as known_hosts holds it. */
  hostPublicKey: string;
  clientKeyPath: string;
  /** Network namespace the server (and every process started over it) runs in, if any. */
  netns?: string;
  /** The sshd listener's pid (per-connection children have their own). */
  readonly pid: number | undefined;
  /** Kills the listener and every connection it serves (processes they started detached survive). */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Replaces the host key with a new one (a "changed host key"); takes effect on the next connection. */
  rotateHostKey(): void;
}

export interface ClientKey {
  path: string;
  publicKey: string;
}

/** Generates an ed25519 key pair without a passphrase; returns the private key's path. */
export function generateKey(path: string, comment = 'otto-test'): ClientKey {
  rmSync(path, { force: true });
  rmSync(`${path}.pub`, { force: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  return { path, publicKey: readFileSync(`${path}.pub`, 'utf8').trim() };
}

/** A free TCP port on `host` (asked from the kernel, then released). */
export async function freePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1_000 }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Pids of the direct children of `pid` (sshd forks one per connection). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...; comm may hold spaces and parentheses: split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process exited meanwhile
    }
  }
  return children;
}

export interface StartSshdOptions {
  host: string;
  port?: number;
  clientKey: ClientKey;
  /** Run inside this network namespace (see createNetns). */
  netns?: string;
  /** Parent folder for this node's files. */
  root?: string;
  name?: string;
}

export async function startSshd(options: StartSshdOptions): Promise<SshdNode> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const root = options.root ?? mkdtempSync(join(tmpdir(), 'otto-sshd-'));
  const dir = join(root, options.name ?? options.host);
  const home = join(dir, 'home');
  mkdirSync(home, { recursive: true, mode: 0o755 });
  const hostKeyPath = join(dir, 'ssh_host_ed25519_key');
  let hostPublicKey = generateKey(hostKeyPath, `otto-test-host-${options.host}`).publicKey;
  const port = options.port ?? (options.netns ? 22 : await freePortOn(options.host));
  const configPath = join(dir, 'sshd_config');
  const pidFile = join(dir, 'sshd.pid');
  writeFileSync(join(dir, 'authorized_keys'), `${options.clientKey.publicKey}\n`, { mode: 0o600 });
  writeFileSync(
    configPath,
    [
      `ListenAddress ${options.host}:${port}`,
      `HostKey ${hostKeyPath}`,
      `PidFile ${pidFile}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PrintMotd no',
      'MaxStartups 100:30:200',
      'MaxSessions 100',
      'ClientAliveInterval 0',
      `Subsystem sftp internal-sftp -d ${home}`,
      `SetEnv HOME=${home}`,
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  execFileSync('/usr/sbin/sshd', ['-t', '-f', configPath]);

  let child: ChildProcess | undefined;
  const logPath = join(dir, 'sshd.log');
  const launch = async () => {
    const args = ['-D', '-e', '-f', configPath];
    const out = openSync(logPath, 'a');
    child = options.netns
      ? spawn('ip', ['netns', 'exec', options.netns, '/usr/sbin/sshd', ...args], { stdio: ['ignore', out, out] })
      : spawn('/usr/sbin/sshd', args, { stdio: ['ignore', out, out] });
    closeSync(out);
    const started = child;
    await waitFor(
      `sshd on ${options.host}:${port}`,
      async () => {
        if (started.exitCode !== null) throw new Error(`sshd exited: ${readFileSync(logPath, 'utf8').trim().split('\n').slice(-3).join(' | ')}`);
        return canConnect(options.host, port);
      },
      10_000,
      50,
    );
  };
  const stop = async () => {
    const listener = child;
    child = undefined;
    if (!listener || listener.exitCode !== null || listener.pid === undefined) return;
    const connections = childrenOf(listener.pid);
    const exited = new Promise<void>((resolve) => listener.once('exit', () => resolve()));
    listener.kill('SIGTERM');
    for (const pid of connections) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await exited;
  };
  await launch();
  return {
    host: options.host,
    port,
    home,
    dir,
    hostKeyPath,
    get hostPublicKey() {
      return hostPublicKey;
    },
    clientKeyPath: options.clientKey.path,
    netns: options.netns,
    get pid() {
      return child?.pid;
    },
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    rotateHostKey: () => {
      hostPublicKey = generateKey(hostKeyPath, `otto-test-host-${options.host}-rotated`).publicKey;
    },
  };
}

export interface Netns {
  name: string;
  /** This machine's end of the veth pair. */
  hostAddress: string;
  /** The namespace's end: where its sshd listens. */
  nodeAddress: string;
  /** Takes the link down (the node is cut off) or up again. */
  setLink(up: boolean): void;
  remove(): void;
}

/**
 * A network namespace joined to this machine by a veth pair with link-local addresses (a /30 in
 * 169.254.100-249.x, picked from the pid so that test runs side by side do not collide):
 * from inside, 127.0.0.1 is the namespace's own loopback, so a node there cannot reach a broker that
 * listens on this machine's loopback.
 */
export function createNetns(index: number, options: { defaultRoute?: boolean } = {}): Netns {
  const tag = `${process.pid % 10000}${index}`;
  const name = `otto-test-${tag}`;
  const hostIf = `ottoh${tag}`.slice(0, 15);
  const nodeIf = `otton${tag}`.slice(0, 15);
  const prefix = `169.254.${100 + (process.pid % 150)}`;
  const base = 4 * ((index + 1) % 64);
  const hostAddress = `${prefix}.${base + 1}`;
  const nodeAddress = `${prefix}.${base + 2}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    ip('netns', 'del', name);
  } catch {
    // not there
  }
  const subnet = `${prefix}.${base}/30`;
  try {
    ip('route', 'del', 'unreachable', subnet, 'metric', '4000');
  } catch {
    // not there
  }
  // While the link is down, packets for the namespace must fail here, not follow the default route out.
  ip('route', 'add', 'unreachable', subnet, 'metric', '4000');
  ip('netns', 'add', name);
  ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nodeIf);
  ip('link', 'set', nodeIf, 'netns', name);
  ip('addr', 'add', `${hostAddress}/30`, 'dev', hostIf);
  ip('link', 'set', hostIf, 'up');
  ip('netns', 'exec', name, 'ip', 'addr', 'add', `${nodeAddress}/30`, 'dev', nodeIf);
  ip('netns', 'exec', name, 'ip', 'link', 'set', nodeIf, 'up');
  ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  // Everything else through this machine: the namespace reaches addresses local to it (see addLoopbackAddress).
  if (options.defaultRoute) ip('netns', 'exec', name, 'ip', 'route', 'add', 'default', 'via', hostAddress);
  return {
    name,
    hostAddress,
    nodeAddress,
    setLink: (up) => ip('link', 'set', hostIf, up ? 'up' : 'down'),
    remove: () => {
      try {
        ip('link', 'del', hostIf);
      } catch {
        // gone with the namespace
      }
      try {
        ip('netns', 'del', name);
      } catch {
        // already removed
      }
      try {
        ip('route', 'del', 'unreachable', subnet, 'metric', '4000');
      } catch {
        // already removed
      }
    },
  };
}

/**
 * A /32 on this machine's loopback, picked from the pid (10.213.x.y): an address that nodes in network
 * namespaces with a default route (createNetns's defaultRoute) reach whichever veth is up, e.g. for a broker
 * that must stay reachable from one node while another is cut off. 127.0.0.0/8 will not do: the kernel
 * drops packets for it that arrive from outside.
 */
export function addLoopbackAddress(): { address: string; remove(): void } {
  const address = `10.213.${process.pid % 250}.${1 + (Math.floor(process.pid / 250) % 250)}`;
  execFileSync('ip', ['addr', 'add', `${address}/32`, 'dev', 'lo'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return {
    address,
    remove: () => {
      try {
        execFileSync('ip', ['addr', 'del', `${address}/32`, 'dev', 'lo'], { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch {
        // already removed
      }
    },
  };
}

export interface TestBed {
  root: string;
  clientKey: ClientKey;
  nodes: SshdNode[];
  stop(): Promise<void>;
}

/** `count` sshd nodes on 127.0.0.2, 127.0.0.3, ... sharing one per-run client key. */
export async function startTestBed(count: number, options: { firstAddress?: number } = {}): Promise<TestBed> {
  const root = mkdtempSync(join(tmpdir(), 'otto-sshd-'));
  const clientKey = generateKey(join(root, 'id_ed25519'), 'otto-test-client');
  const nodes: SshdNode[] = [];
  const first = options.firstAddress ?? 2;
  for (let i = 0; i < count; i++) nodes.push(await startSshd({ host: `127.0.0.${first + i}`, clientKey, root }));
  return {
    root,
    clientKey,
    nodes,
    stop: async () => {
      await Promise.all(nodes.map((node) => node.stop()));
    },
  };
}

export function sshdAvailable(): boolean {
  return existsSync('/usr/sbin/sshd') && existsSync('/usr/bin/ssh-keygen');
}

// ---- Workspaces whose otto.yaml names test-bed nodes, and the agent processes they start ----

export interface RemoteNodeSpec {
  id: string;
  sshd: SshdNode;
  identity?: string;
  dockerUrl?: string;
}

export interface Workdir {
  dir: string;
  /** HOME for the CLI: empty, so ~/.ssh of the machine plays no part. */
  home: string;
  cluster: string;
  run(args: string[], config?: string, env?: NodeJS.ProcessEnv): Promise<CliResult>;
  write(name: string, text: string): string;
  /** `otto cluster status --json` of the running cluster. */
  status(): Promise<ClusterStatus>;
}

export function makeWorkdir(prefix = 'otto-remote-'): Workdir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const home = join(dir, 'home');
  mkdirSync(home);
  const cluster = `rt${Math.random().toString(36).slice(2, 8)}`;
  const workdir: Workdir = {
    dir,
    home,
    cluster,
    run: (args, config = 'otto.yaml', env = {}) =>
      otto(['-c', config, ...args], { cwd: dir, env: { HOME: home, SSH_AUTH_SOCK: '', OTTO_CONFIG: '', ...env } }),
    write: (name, text) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
    async status() {
      const result = await workdir.run(['cluster', 'status', '--json']);
      if (result.code !== 0) throw new Error(`otto cluster status exited ${result.code}: ${result.stderr}`);
      return clusterStatusSchema.parse(JSON.parse(result.stdout));
    },
  };
  return workdir;
}

export function nodeYaml(spec: RemoteNodeSpec): string {
  return `  - id: ${spec.id}
    host: ${spec.sshd.host}
    user: root
    ssh:
      port: ${spec.sshd.port}
      identity: ${spec.identity ?? spec.sshd.clientKeyPath}
${spec.dockerUrl ? `    docker_url: ${spec.dockerUrl}\n` : ''}`;
}

export function clusterYaml(options: { cluster: string; mqttPort: number; httpPort?: number; embedded?: boolean; nodes: RemoteNodeSpec[]; local?: boolean; services?: string; interval?: string }): string {
  return `cluster:
  name: ${options.cluster}
mqtt:
  host: 127.0.0.1
  advertise: 127.0.0.1
  port: ${options.mqttPort}
  embedded: ${options.embedded ?? true}
${options.httpPort ? `http:\n  port: ${options.httpPort}\n` : ''}metrics:
  interval: ${options.interval ?? '1s'}
nodes:
${options.local === false ? '' : '  - id: local\n    host: localhost\n'}${options.nodes.map(nodeYaml).join('')}${options.services ? `services:\n${options.services}` : ''}`;
}

/** Pids of the agent processes of one node of one cluster (any version), read from /proc (no procps needed). */
export function agentPids(cluster: string, nodeId: string): number[] {
  const needle = ` agent --node ${nodeId} --cluster ${cluster} `;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes('otto-agent') && cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids.sort((a, b) => a - b);
}

/** Ends the agent processes a test started (by pid), whatever state the test left them in. */
export function killAgents(cluster: string, nodeIds: string[]): void {
  for (const id of nodeIds) {
    for (const pid of agentPids(cluster, id)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

export function sshFingerprint(publicKeyLine: string): string {
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], { input: publicKeyLine, encoding: 'utf8' }).split(' ')[1]!;
}
