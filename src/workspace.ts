/**
 * The `.otto/` folder beside otto.yaml: config snapshot and hash, API token, control plane pid and logs,
 * agents' state. Everything Otto writes locally lives here.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { close, fsync, mkdir, open, readFile, rename, rm, writeFile } from './fs-async.js';

export interface ControlPlaneInfo {
  pid: number;
  api_url: string;
  started_at: string;
}

/**
 * What the control plane did when it stopped, for `otto cluster stop`, which only sees it exit: the
 * remote nodes whose agent it stopped, and those it could not reach or whose agent would not stop.
 */
export interface StopReport {
  /** The control plane's pid: a report left by an earlier one is not taken for this one's. */
  pid: number;
  stopped_at: string;
  remote: { stopped: string[]; failed: { node: string; error: string }[] };
}

/** The values the variables of otto.yaml had for the control plane; null for one that was not set. */
export type SavedEnv = Record<string, string | null>;

export class Workspace {
  readonly dir: string;

  constructor(configPath: string) {
    this.dir = join(dirname(resolve(configPath)), '.otto');
  }

  get snapshotPath() {
    return join(this.dir, 'config.yaml');
  }
  get hashPath() {
    return join(this.dir, 'config.sha256');
  }
  get tokenPath() {
    return join(this.dir, 'token');
  }
  get pidPath() {
    return join(this.dir, 'control-plane.json');
  }
  get stopReportPath() {
    return join(this.dir, 'stop-report.json');
  }
  /** The values of the `${VAR}`s of otto.yaml the control plane runs with; 0600, they may be secrets. */
  get envPath() {
    return join(this.dir, 'env.json');
  }
  /** The control plane's last status, for `cluster status` while it is down and for its next start. */
  get statusPath() {
    return join(this.dir, 'status.json');
  }
  get logDir() {
    return join(this.dir, 'logs');
  }
  /** Holds one state folder per local node's agent (`agentStateDir`). */
  get agentsDir() {
    return join(this.dir, 'agents');
  }
  /** The cluster's CA and server certificate (mqtt.tls / http.tls auto); keys 0600. */
  get tlsDir() {
    return join(this.dir, 'tls');
  }
  /** Every node's broker credential (0600). */
  get credentialsPath() {
    return join(this.dir, 'credentials.json');
  }
  /** A local node's broker credential for its agent (0600), named on its command line by path only. */
  agentCredentialsPath(nodeId: string) {
    return join(this.agentStateDir(nodeId), 'mqtt.json');
  }
  agentStateDir(nodeId: string) {
    return join(this.agentsDir, nodeId);
  }

  isInitialized(): boolean {
    return existsSync(this.snapshotPath) && existsSync(this.tokenPath);
  }

  /** Writes the snapshot and hash; keeps an existing token so a re-init does not lock the CLI out. */
  async initialize(configText: string, hash: string): Promise<{ tokenCreated: boolean }> {
    await mkdir(this.logDir, { recursive: true });
    // otto.yaml may hold environment values written inline: 0600, as every file here that may.
    await writeAtomic(this.snapshotPath, configText, 0o600);
    await writeAtomic(this.hashPath, `${hash}\n`);
    if (existsSync(this.tokenPath)) return { tokenCreated: false };
    await writeAtomic(this.tokenPath, `${randomBytes(24).toString('hex')}\n`, 0o600);
    return { tokenCreated: true };
  }

  async token(): Promise<string> {
    return (await readFile(this.tokenPath, 'utf8')).trim();
  }

  async readControlPlane(): Promise<ControlPlaneInfo | undefined> {
    try {
      return JSON.parse(await readFile(this.pidPath, 'utf8')) as ControlPlaneInfo;
    } catch {
      return undefined;
    }
  }

  async writeControlPlane(info: ControlPlaneInfo): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeAtomic(this.pidPath, JSON.stringify(info));
  }

  async clearControlPlane(): Promise<void> {
    await rm(this.pidPath, { force: true });
  }

  /**
   * Records how this process's stop of the remote agents went. Never throws: without a report the CLI
   * checks the nodes itself, so a failed write must not keep the control plane from stopping.
   */
  async writeStopReport(remote: StopReport['remote']): Promise<void> {
    const report: StopReport = { pid: process.pid, stopped_at: new Date().toISOString(), remote };
    await mkdir(this.dir, { recursive: true })
      .then(() => writeAtomic(this.stopReportPath, JSON.stringify(report)))
      .catch(() => undefined);
  }

  /** The report of the control plane with this pid, if it wrote one. */
  async readStopReport(pid: number): Promise<StopReport | undefined> {
    const report = await readJson(this.stopReportPath);
    if (!isRecord(report) || report.pid !== pid || !isRecord(report.remote)) return undefined;
    const { stopped, failed } = report.remote;
    const isFailure = (f: unknown) => isRecord(f) && typeof f.node === 'string' && typeof f.error === 'string';
    if (!Array.isArray(stopped) || !stopped.every((s) => typeof s === 'string') || !Array.isArray(failed) || !failed.every(isFailure)) return undefined;
    return report as unknown as StopReport;
  }

  async clearStopReport(): Promise<void> {
    await rm(this.stopReportPath, { force: true });
  }

  async saveEnv(values: SavedEnv): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeAtomic(this.envPath, `${JSON.stringify(values, null, 2)}\n`, 0o600);
  }

  /** The saved values; none when the file is missing or unreadable (the shell's environment then decides). */
  async savedEnv(): Promise<SavedEnv> {
    const saved = await readJson(this.envPath);
    if (!isRecord(saved)) return {};
    return Object.fromEntries(Object.entries(saved).filter((entry): entry is [string, string | null] => entry[1] === null || typeof entry[1] === 'string'));
  }
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

let tempCounter = 0;

/**
 * Write, fsync, rename: a crash or a power cut (an SD card on a Pi) leaves either the previous content or
 * the new one, never a torn file. Each write has its own temp file, so two saves in one process (or two
 * processes) never rename each other's file away; the folder is synced so the rename itself survives.
 */
export async function writeAtomic(path: string, content: string | Uint8Array, mode?: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tempCounter}.${randomBytes(3).toString('hex')}.tmp`;
  try {
    const fd = await open(tmp, 'wx', mode ?? 0o644);
    try {
      await writeFile(fd, content);
      await fsync(fd);
    } finally {
      await close(fd);
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncFolder(dirname(path));
}

async function syncFolder(dir: string): Promise<void> {
  const fd = await open(dir, 'r').catch(() => undefined);
  if (fd === undefined) return;
  await fsync(fd).catch(() => undefined);
  await close(fd);
}

/** Compares digests, so neither the content nor the length of the token leaks through timing. */
export function tokenMatches(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Whether the pid is taken: by a running process, or by an exited one its parent has not reaped yet. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process still runs: an exited one its parent has not reaped yet (a zombie) does not. */
export function isProcessRunning(pid: number): boolean {
  return isProcessAlive(pid) && !isZombie(pid);
}

/**
 * Resolves true once the process is gone, false if it still runs after `timeoutMs`. Gone means reaped, so
 * that its pid no longer answers; an orphan is reaped by init, which may do it late or (in a container
 * whose pid 1 is not an init) never: a zombie counts as gone after `reapMs`.
 */
export async function waitForExit(pid: number, timeoutMs: number, reapMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let zombieSince: number | undefined;
  while (isProcessAlive(pid)) {
    if (isZombie(pid)) {
      zombieSince ??= Date.now();
      if (Date.now() - zombieSince > reapMs) return true;
    } else if (Date.now() > deadline) {
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ...: comm may hold spaces and parentheses, so read after the last ')'.
    return stat.charAt(stat.lastIndexOf(')') + 2) === 'Z';
  } catch {
    return false;
  }
}
