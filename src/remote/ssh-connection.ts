/**
 * One SSH connection to a remote node (ssh2): authentication with the node's key, else the running
 * ssh-agent, else ~/.ssh/id_ed25519 / id_rsa; the host key checked against known_hosts (never skipped);
 * commands with their output; files over SFTP. Every failure is an SshError (an InfrastructureError,
 * exit 2) with one line saying what failed and a hint saying what to do.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { AuthenticationType, ClientChannel, ConnectConfig, SFTPWrapper } from 'ssh2';
import { InfrastructureError, errorMessage } from '../errors.js';
import { fingerprint, hostKeyAlgorithmsFor, type HostKeyVerdict, type KnownHosts } from './known-hosts.js';

const { Client, utils } = ssh2;

/** What is needed to reach one node. */
export interface SshTarget {
  nodeId: string;
  host: string;
  port: number;
  user: string;
  /** nodes[].ssh.identity: the only key tried when set. */
  identity?: string;
}

export type SshFailure =
  | 'unreachable'
  | 'timeout'
  | 'host-key-unknown'
  | 'host-key-changed'
  | 'host-key-revoked'
  | 'auth'
  | 'no-key'
  | 'closed'
  | 'command';

/** An SSH failure; `kind` tells a transient one (network) from one that needs the user (key, host key). */
export class SshError extends InfrastructureError {
  constructor(
    message: string,
    hint: string | undefined,
    readonly kind: SshFailure,
    readonly fingerprint?: string,
  ) {
    super(message, hint);
  }

  /** Worth retrying by itself: the network or the node may come back. */
  get transient(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout' || this.kind === 'closed';
  }
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface ConnectOptions {
  knownHosts: KnownHosts;
  /** Milliseconds to wait for the handshake and authentication. */
  readyTimeoutMs?: number;
  /** SSH keepalive interval; a dead connection is noticed after 3 missed. 0 turns it off. */
  keepaliveIntervalMs?: number;
  /** Defaults to $HOME: where ~/.ssh/id_* are looked for. */
  home?: string;
  /** Defaults to $SSH_AUTH_SOCK. */
  agentSocket?: string;
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function where(target: SshTarget): string {
  return `${target.host}:${target.port}`;
}

interface KeyCandidate {
  kind: 'key';
  path: string;
  key: Buffer;
}
interface AgentCandidate {
  kind: 'agent';
  socket: string;
}
type AuthCandidate = KeyCandidate | AgentCandidate;

/** The keys to try, in order, and what could not be used (for the error when none works). */
function authCandidates(target: SshTarget, options: ConnectOptions): { candidates: AuthCandidate[]; notes: string[] } {
  const notes: string[] = [];
  const readKey = (path: string, configured: boolean): KeyCandidate | undefined => {
    let key: Buffer;
    try {
      key = readFileSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (configured) {
        throw new SshError(
          `${target.nodeId}: cannot read the SSH key ${path} (nodes[].ssh.identity): ${code ?? errorMessage(err)}`,
          'fix nodes[].ssh.identity in otto.yaml',
          'no-key',
        );
      }
      return undefined;
    }
    const parsed = utils.parseKey(key);
    if (parsed instanceof Error) {
      if (/encrypted|passphrase/i.test(parsed.message)) {
        notes.push(`${path} is protected by a passphrase`);
        if (configured && !options.agentSocket) {
          throw new SshError(
            `${target.nodeId}: the SSH key ${path} is protected by a passphrase`,
            `load it into ssh-agent (eval $(ssh-agent); ssh-add ${path}) before running otto`,
            'no-key',
          );
        }
      } else {
        notes.push(`${path} is not a private key Otto can read (${parsed.message})`);
        if (configured) {
          throw new SshError(`${target.nodeId}: ${path} is not a usable private key: ${parsed.message}`, 'fix nodes[].ssh.identity in otto.yaml', 'no-key');
        }
      }
      return undefined;
    }
    return { kind: 'key', path, key };
  };

  if (target.identity) {
    const key = readKey(target.identity, true);
    // An encrypted configured key can still be in the agent.
    return { candidates: key ? [key] : [{ kind: 'agent', socket: options.agentSocket! }], notes };
  }
  const candidates: AuthCandidate[] = [];
  if (options.agentSocket && existsSync(options.agentSocket)) candidates.push({ kind: 'agent', socket: options.agentSocket });
  const home = options.home ?? process.env.HOME ?? homedir();
  for (const name of ['id_ed25519', 'id_rsa']) {
    const key = readKey(join(home, '.ssh', name), false);
    if (key) candidates.push(key);
  }
  return { candidates, notes };
}

function describeCandidate(candidate: AuthCandidate): string {
  return candidate.kind === 'agent' ? `ssh-agent at ${candidate.socket}` : `key ${candidate.path}`;
}

function hostKeyError(target: SshTarget, key: Buffer, verdict: Exclude<HostKeyVerdict, { status: 'trusted' }>): SshError {
  const print = fingerprint(key);
  const node = target.nodeId;
  switch (verdict.status) {
    case 'unknown': {
      const others = verdict.otherTypes.length ? ` (known_hosts has only ${verdict.otherTypes.join(', ')} keys for it)` : '';
      return new SshError(
        `host key of ${node} (${where(target)}) is not trusted: ${print}${others}`,
        `compare it with the node's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on ${node}), then run: otto node trust ${node}`,
        'host-key-unknown',
        print,
      );
    }
    case 'changed':
      return new SshError(
        `WARNING: HOST KEY OF ${node} (${where(target)}) HAS CHANGED: it presents ${print}, but ${verdict.file}:${verdict.line} has ${verdict.knownFingerprint}; someone may be intercepting the connection, so Otto refuses to connect`,
        `if ${node} was reinstalled or its keys regenerated, check the new fingerprint on the node, then run: otto node trust ${node} --replace`,
        'host-key-changed',
        print,
      );
    case 'revoked':
      return new SshError(
        `host key of ${node} (${where(target)}) ${print} is marked @revoked in ${verdict.file}:${verdict.line}; Otto refuses to connect`,
        `give ${node} a new host key, then run: otto node trust ${node}`,
        'host-key-revoked',
        print,
      );
  }
}

function networkError(target: SshTarget, err: NodeJS.ErrnoException): SshError {
  const code = err.code ?? '';
  const hint = `is the node up and sshd running on it? check nodes[].host and nodes[].ssh.port of ${target.nodeId}`;
  if (code === 'ECONNREFUSED') return new SshError(`${target.nodeId}: cannot reach SSH at ${where(target)}: connection refused`, hint, 'unreachable');
  if (code === 'ETIMEDOUT' || /timed out/i.test(err.message))
    return new SshError(`${target.nodeId}: cannot reach SSH at ${where(target)}: timed out`, hint, 'timeout');
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new SshError(`${target.nodeId}: cannot resolve ${target.host}`, 'check nodes[].host in otto.yaml', 'unreachable');
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH')
    return new SshError(`${target.nodeId}: cannot reach SSH at ${where(target)}: ${code === 'EHOSTUNREACH' ? 'host' : 'network'} unreachable`, hint, 'unreachable');
  return new SshError(`${target.nodeId}: SSH connection to ${where(target)} failed: ${err.message}`, hint, 'unreachable');
}

export class SshConnection extends EventEmitter {
  private sftpSession?: Promise<SFTPWrapper>;
  private closed = false;
  private homeDir?: string;

  private constructor(
    readonly target: SshTarget,
    private readonly client: InstanceType<typeof Client>,
    /** The host key the node presented (and that was trusted). */
    readonly hostKey: Buffer,
  ) {
    super();
    client.on('close', () => {
      this.closed = true;
      this.emit('close');
    });
    client.on('error', (err) => this.emit('connection-error', err));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  static async connect(target: SshTarget, options: ConnectOptions): Promise<SshConnection> {
    const resolved: ConnectOptions = { ...options, agentSocket: options.agentSocket ?? process.env.SSH_AUTH_SOCK };
    const { candidates, notes } = authCandidates(target, resolved);
    if (candidates.length === 0) {
      const home = resolved.home ?? process.env.HOME ?? homedir();
      throw new SshError(
        `${target.nodeId}: no SSH key to log in as ${target.user}: no ssh-agent (SSH_AUTH_SOCK), no usable ${join(home, '.ssh', 'id_ed25519')} or id_rsa${notes.length ? ` (${notes.join('; ')})` : ''}`,
        'set nodes[].ssh.identity to a private key file, or start ssh-agent and ssh-add your key',
        'no-key',
      );
    }
    const known = options.knownHosts;
    known.reload();
    const preferred = hostKeyAlgorithmsFor(known.knownKeyTypes(target.host, target.port));
    const defaults = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
    const serverHostKey = [...preferred.filter((a) => defaults.includes(a)), ...defaults.filter((a) => !preferred.includes(a))];

    const client = new Client();
    let presented: Buffer | undefined;
    let refused: SshError | undefined;
    const tried: AuthCandidate[] = [];
    let next = 0;

    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      readyTimeout: options.readyTimeoutMs ?? 15_000,
      keepaliveInterval: options.keepaliveIntervalMs ?? 5_000,
      keepaliveCountMax: 3,
      algorithms: { serverHostKey: serverHostKey as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] },
      hostVerifier: (key: Buffer) => {
        presented = Buffer.from(key);
        const verdict = known.check(target.host, target.port, presented);
        if (verdict.status === 'trusted') return true;
        refused = hostKeyError(target, presented, verdict);
        return false;
      },
      authHandler: (_methodsLeft, _partial, callback) => {
        const candidate = candidates[next++];
        if (!candidate) return callback(false as unknown as AuthenticationType);
        tried.push(candidate);
        if (candidate.kind === 'agent') return callback({ type: 'agent', username: target.user, agent: candidate.socket } as never);
        return callback({ type: 'publickey', username: target.user, key: candidate.key } as never);
      },
    };

    return new Promise<SshConnection>((resolve, reject) => {
      let settled = false;
      const fail = (err: SshError) => {
        if (settled) return;
        settled = true;
        client.removeAllListeners('ready');
        client.end();
        reject(err);
      };
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        client.removeAllListeners('error');
        resolve(new SshConnection(target, client, presented!));
      });
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        if (refused) return fail(refused);
        if (err.level === 'client-authentication') {
          const what = tried.map(describeCandidate).join(', ') || 'no key';
          return fail(
            new SshError(
              `${target.nodeId}: SSH authentication as ${target.user} failed (tried ${what})`,
              `add the public key to ~${target.user}/.ssh/authorized_keys on ${target.nodeId} (ssh-copy-id${target.port === 22 ? '' : ` -p ${target.port}`} ${target.user}@${target.host}), or set nodes[].ssh.identity${notes.length ? `; note: ${notes.join('; ')}` : ''}`,
              'auth',
            ),
          );
        }
        if (err.level === 'client-timeout') {
          return fail(new SshError(`${target.nodeId}: SSH handshake with ${where(target)} timed out`, `is ${where(target)} an SSH server? check nodes[].ssh.port`, 'timeout'));
        }
        if (err.level === 'client-socket') return fail(networkError(target, err as NodeJS.ErrnoException));
        if (/Connection lost before handshake/.test(err.message)) {
          return fail(
            new SshError(`${target.nodeId}: ${where(target)} closed the connection before the SSH handshake`, `is ${where(target)} an SSH server? check nodes[].ssh.port of ${target.nodeId}`, 'closed'),
          );
        }
        return fail(new SshError(`${target.nodeId}: SSH connection to ${where(target)} failed: ${err.message}`, undefined, 'unreachable'));
      });
      client.once('close', () => {
        if (refused) return fail(refused);
        fail(new SshError(`${target.nodeId}: SSH connection to ${where(target)} closed during the handshake`, `check the sshd log on ${target.nodeId}`, 'closed'));
      });
      try {
        client.connect(config);
      } catch (err) {
        fail(new SshError(`${target.nodeId}: cannot connect over SSH: ${errorMessage(err)}`, undefined, 'unreachable'));
      }
    });
  }

  /**
   * Connects only as far as the host key and returns it, trusted or not (for `otto node trust`).
   */
  static async scanHostKey(target: Pick<SshTarget, 'nodeId' | 'host' | 'port'>, timeoutMs = 15_000): Promise<Buffer> {
    const client = new Client();
    return new Promise<Buffer>((resolve, reject) => {
      let key: Buffer | undefined;
      const done = (err?: Error) => {
        client.removeAllListeners();
        client.on('error', () => undefined);
        client.end();
        if (key) resolve(key);
        else reject(err);
      };
      client.on('error', (err: Error & { level?: string }) => {
        if (key) return done();
        const full = { ...target, user: '-' };
        done(err.level === 'client-socket' ? networkError(full, err as NodeJS.ErrnoException) : new SshError(`${target.nodeId}: SSH handshake with ${where(full)} failed: ${err.message}`, undefined, 'unreachable'));
      });
      client.on('close', () => done(new SshError(`${target.nodeId}: SSH connection to ${target.host}:${target.port} closed before it showed a host key`, undefined, 'closed')));
      client.connect({
        host: target.host,
        port: target.port,
        username: 'otto-host-key-scan',
        readyTimeout: timeoutMs,
        hostVerifier: (presented: Buffer) => {
          key = Buffer.from(presented);
          return false;
        },
      });
    });
  }

  /** Runs a command; resolves with its exit code and output whatever the code. */
  exec(command: string, options: { stdin?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(this.closedError());
      this.client.exec(command, (err: Error | undefined, stream: ClientChannel) => {
        if (err) return reject(new SshError(`${this.target.nodeId}: cannot run a command over SSH: ${err.message}`, undefined, 'command'));
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let timer: NodeJS.Timeout | undefined;
        if (options.timeoutMs) {
          timer = setTimeout(() => {
            stream.close();
            reject(new SshError(`${this.target.nodeId}: \`${command}\` did not finish within ${options.timeoutMs} ms`, undefined, 'timeout'));
          }, options.timeoutMs);
        }
        stream.on('data', (chunk: Buffer) => stdout.push(chunk));
        stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        stream.on('close', (code: number | null, signal?: string) => {
          clearTimeout(timer);
          resolve({ code: code ?? null, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
        });
        stream.end(options.stdin ?? '');
      });
    });
  }

  /** Runs a command that must succeed; returns its standard output. */
  async run(command: string, what: string, options: { stdin?: string; timeoutMs?: number } = {}): Promise<string> {
    const result = await this.exec(command, options);
    if (result.code !== 0) {
      const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-1)[0] || `exit code ${result.code ?? result.signal}`;
      throw new SshError(`${this.target.nodeId}: ${what} failed: ${detail}`, undefined, 'command');
    }
    return result.stdout;
  }

  sftp(): Promise<SFTPWrapper> {
    this.sftpSession ??= new Promise<SFTPWrapper>((resolve, reject) => {
      this.client.sftp((err, sftp) => {
        if (err) {
          this.sftpSession = undefined;
          return reject(new SshError(`${this.target.nodeId}: SFTP is not available: ${err.message}`, 'enable the sftp subsystem in the node\'s sshd_config', 'command'));
        }
        sftp.on('close', () => (this.sftpSession = undefined));
        resolve(sftp);
      });
    });
    return this.sftpSession;
  }

  /** The login user's home folder, as SFTP resolves `.`. */
  async home(): Promise<string> {
    if (this.homeDir) return this.homeDir;
    const sftp = await this.sftp();
    this.homeDir = await new Promise<string>((resolve, reject) =>
      sftp.realpath('.', (err, path) => (err ? reject(this.sftpError('resolve the home folder', err)) : resolve(path))),
    );
    return this.homeDir;
  }

  /** mkdir -p over SFTP. */
  async mkdirp(path: string, mode = 0o755): Promise<void> {
    const sftp = await this.sftp();
    const parts = path.split('/').filter(Boolean);
    let current = path.startsWith('/') ? '' : '.';
    for (const part of parts) {
      current = `${current}/${part}`;
      const exists = await new Promise<boolean>((resolve) => sftp.stat(current, (err) => resolve(!err)));
      if (exists) continue;
      await new Promise<void>((resolve, reject) =>
        sftp.mkdir(current, { mode }, (err) => {
          if (!err) return resolve();
          // Created meanwhile by someone else?
          sftp.stat(current, (statErr) => (statErr ? reject(this.sftpError(`create ${current}`, err)) : resolve()));
        }),
      );
    }
  }

  async stat(path: string): Promise<{ size: number; mode: number } | undefined> {
    const sftp = await this.sftp();
    return new Promise((resolve) => sftp.stat(path, (err, stats) => resolve(err ? undefined : { size: stats.size, mode: stats.mode })));
  }

  async readFile(path: string): Promise<string | undefined> {
    const sftp = await this.sftp();
    return new Promise((resolve) => sftp.readFile(path, (err: Error | undefined, data: Buffer) => resolve(err ? undefined : data.toString('utf8'))));
  }

  /** Writes a file atomically (a temporary name, then rename over the old one). */
  async writeFile(path: string, content: string | Buffer, mode = 0o644): Promise<void> {
    const sftp = await this.sftp();
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    await new Promise<void>((resolve, reject) =>
      sftp.writeFile(tmp, content, { mode }, (err) => (err ? reject(this.sftpError(`write ${path}`, err)) : resolve())),
    );
    await this.renameOver(tmp, path);
  }

  /** Uploads a local file (atomically, as writeFile). */
  async upload(localPath: string, remotePath: string, mode = 0o644): Promise<void> {
    const sftp = await this.sftp();
    const tmp = `${remotePath}.tmp-${randomBytes(6).toString('hex')}`;
    await new Promise<void>((resolve, reject) =>
      sftp.fastPut(localPath, tmp, { mode }, (err) => (err ? reject(this.sftpError(`upload ${remotePath}`, err)) : resolve())),
    );
    await this.renameOver(tmp, remotePath);
  }

  async remove(path: string): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve) => sftp.unlink(path, () => resolve()));
  }

  private async renameOver(from: string, to: string): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve, reject) =>
      sftp.ext_openssh_rename(from, to, (err) => {
        if (!err) return resolve();
        // No posix-rename extension: remove the target, then a plain rename.
        sftp.unlink(to, () => sftp.rename(from, to, (renameErr) => (renameErr ? reject(this.sftpError(`rename ${from} to ${to}`, renameErr)) : resolve())));
      }),
    );
  }

  private sftpError(what: string, err: Error): SshError {
    return new SshError(`${this.target.nodeId}: SFTP: cannot ${what}: ${err.message}`, undefined, 'command');
  }

  private closedError(): SshError {
    return new SshError(`${this.target.nodeId}: the SSH connection is closed`, undefined, 'closed');
  }

  close(): void {
    if (this.closed) return;
    this.client.end();
  }
}
