/**
 * The `.otto/` folder beside otto.yaml: config snapshot and hash, API token, control plane pid and logs,
 * agents' state. Everything Otto writes locally lives here.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export interface ControlPlaneInfo {
  pid: number;
  api_url: string;
  started_at: string;
}

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
  get logDir() {
    return join(this.dir, 'logs');
  }
  agentStateDir(nodeId: string) {
    return join(this.dir, 'agents', nodeId);
  }

  isInitialized(): boolean {
    return existsSync(this.snapshotPath) && existsSync(this.tokenPath);
  }

  /** Writes the snapshot and hash; keeps an existing token so a re-init does not lock the CLI out. */
  async initialize(configText: string, hash: string): Promise<{ tokenCreated: boolean }> {
    await mkdir(this.logDir, { recursive: true });
    await writeAtomic(this.snapshotPath, configText);
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
}

/**
 * Write, fsync, rename: a crash or a power cut (an SD card on a Pi) leaves either the previous content or
 * the new one, never a torn file.
 */
export async function writeAtomic(path: string, content: string, mode?: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const file = await open(tmp, 'w', mode);
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}

/** Compares digests, so neither the content nor the length of the token leaks through timing. */
export function tokenMatches(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
