/**
 * Private registries against a real one (docker-registry with htpasswd on 127.0.0.1): with a wrong
 * password the replica shows the registry's refusal and the pull is retried with backoff; the right
 * password (a new value in the password file) pulls at once; without an entry in otto.yaml the node's own
 * `docker login` is used, as `docker pull` would. The agent runs as this user: its Docker client config
 * is a temporary folder named by DOCKER_CONFIG in the environment `otto cluster start` passes down.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterStatus } from '../src/http/schemas.js';
import { TEST_IMAGE, docker, otto, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';
import { startAuthRegistry, type AuthRegistry } from './support/auth-registry.js';

const USER = 'otto';
const PASSWORD = 'right-horse-battery';

const replicaOf = (status: ClusterStatus, service: string) => status.services.find((s) => s.name === service)?.replicas[0];

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walk(path) : entry.isFile() ? [path] : [];
  });
}

describe('private registries', () => {
  let registry: AuthRegistry;
  let c: TestCluster;
  let agentDockerConfig: string;
  let privateImage: string;
  let loginImage: string;
  const header = () => `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - { id: local, host: localhost }
`;

  beforeAll(async () => {
    registry = await startAuthRegistry(USER, PASSWORD);
    privateImage = await registry.push(TEST_IMAGE, 'otto/busybox:1');
    loginImage = await registry.push(TEST_IMAGE, 'otto/login:1');
    agentDockerConfig = mkdtempSync(join(tmpdir(), 'otto-agent-docker-'));
    c = await createCluster(
      'registry',
      `${header()}registries:
  ${registry.address}:
    username: ${USER}
    password: { file: ./registry-password.txt }
services:
  - name: priv
    image: ${privateImage}
    command: sleep 3600
`,
    );
    writeFileSync(join(c.dir, 'registry-password.txt'), 'not-the-password\n');
    const start = await otto(['cluster', 'start', '--detach'], { cwd: c.dir, env: { DOCKER_CONFIG: agentDockerConfig } });
    expect(start.code, `${start.stdout}\n${start.stderr}`).toBe(0);
  });

  afterAll(async () => {
    await c?.destroy();
    await registry?.close();
    if (agentDockerConfig) rmSync(agentDockerConfig, { recursive: true, force: true });
  });

  it('shows the registry refusing a wrong password, and retries with backoff', async () => {
    const retries: number[] = [];
    await waitFor(
      'three failed pulls',
      async () => {
        const replica = replicaOf(await c.status(), 'priv');
        if (replica?.error && replica.retry_at && !retries.includes(Date.parse(replica.retry_at))) {
          expect(replica.error).toMatch(/unauthorized: authentication required/);
          expect(replica.error).toContain(privateImage);
          retries.push(Date.parse(replica.retry_at));
        }
        return retries.length >= 3;
      },
      60_000,
      250,
    );
    // Each retry waits longer than the one before (exponential backoff).
    expect(retries[2]! - retries[1]!).toBeGreaterThan(retries[1]! - retries[0]!);
    expect(replicaOf(await c.status(), 'priv')?.state).not.toBe('running');
  });

  it('pulls once the password file has the right password, and keeps the credential 0600 on the node', async () => {
    writeFileSync(join(c.dir, 'registry-password.txt'), `${PASSWORD}\n`);
    await waitFor('priv running', async () => replicaOf(await c.status(), 'priv')?.state === 'running', 60_000);
    expect((await docker.getImage(privateImage).inspect()).Id).toBeTruthy();
    const holders = walk(join(c.dir, '.otto')).filter((file) => readFileSync(file, 'utf8').includes(PASSWORD));
    expect(holders).toEqual([join(c.dir, '.otto', 'agents', 'local', 'registries.json')]);
    expect(statSync(holders[0]!).mode & 0o777).toBe(0o600);
  });

  it('without an entry for the registry, pulls with the node docker login', async () => {
    c.writeConfig(`${header()}services:
  - name: priv
    image: ${privateImage}
    command: sleep 3600
  - name: login
    image: ${loginImage}
    command: sleep 3600
`);
    await waitFor(
      'login refused without credentials',
      async () => /no basic auth credentials|unauthorized/.test(replicaOf(await c.status(), 'login')?.error ?? ''),
      60_000,
    );
    await registry.login(agentDockerConfig, USER, PASSWORD);
    try {
      await waitFor('login running', async () => replicaOf(await c.status(), 'login')?.state === 'running', 90_000);
    } finally {
      await registry.logout(agentDockerConfig);
    }
    // Its image is here: the registry entry gone from otto.yaml changes nothing for it.
    await waitFor('priv still running', async () => replicaOf(await c.status(), 'priv')?.state === 'running', 10_000);
  });
});
