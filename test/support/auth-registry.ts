/**
 * A real private registry for tests: Debian's `docker-registry` (Distribution 2.8) with htpasswd auth,
 * serving plain HTTP on 127.0.0.1 (Docker treats 127.0.0.0/8 registries as insecure, so no TLS is needed).
 * Images are pushed with a throwaway Docker client config, so the user's own logins are never touched.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from './cli.js';

const run = promisify(execFile);

export interface AuthRegistry {
  /** `127.0.0.1:PORT`, what image names start with. */
  address: string;
  /** Pushes a local image as `address/repository`, then removes the local tag (a pull must fetch it). */
  push(localImage: string, repository: string): Promise<string>;
  /** `docker login` into this registry with the given client config folder (DOCKER_CONFIG). */
  login(configDir: string, username: string, password: string): Promise<void>;
  logout(configDir: string): Promise<void>;
  close(): Promise<void>;
}

export async function startAuthRegistry(username: string, password: string): Promise<AuthRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'otto-registry-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const { stdout: htpasswd } = await run('htpasswd', ['-Bbn', username, password]);
  writeFileSync(join(dir, 'htpasswd'), htpasswd);
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: ${join(dir, 'data')} } }
http: { addr: "${address}", secret: "otto-test" }
auth: { htpasswd: { realm: otto-test, path: ${join(dir, 'htpasswd')} } }
`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`cannot run docker-registry (apt-get install docker-registry): ${err.message}`)));
  });
  await spawned;
  await waitFor(`the registry on ${address}${stderr ? `: ${stderr}` : ''}`, async () => (await fetch(`http://${address}/v2/`)).status === 401, 15_000, 100);

  const pushed: string[] = [];
  const registry: AuthRegistry = {
    address,
    async login(configDir, user, pass) {
      await new Promise<void>((resolve, reject) => {
        const login = execFile('docker', ['--config', configDir, 'login', address, '-u', user, '--password-stdin'], (err) => (err ? reject(err) : resolve()));
        login.stdin!.end(pass);
      });
    },
    async logout(configDir) {
      await run('docker', ['--config', configDir, 'logout', address]);
    },
    async push(localImage, repository) {
      const image = `${address}/${repository}`;
      const configDir = mkdtempSync(join(tmpdir(), 'otto-registry-client-'));
      try {
        await registry.login(configDir, username, password);
        await run('docker', ['tag', localImage, image]);
        await run('docker', ['--config', configDir, 'push', image]);
        await registry.logout(configDir);
      } finally {
        rmSync(configDir, { recursive: true, force: true });
      }
      await run('docker', ['rmi', image]);
      pushed.push(image);
      return image;
    },
    async close() {
      // Whatever a test pulled from it goes too (the tags only: the layers are the local test image's).
      for (const image of pushed) await run('docker', ['rmi', '-f', image]).catch(() => undefined);
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return registry;
}
