/**
 * A secret that cannot be read is a bad config like any other: `cluster start` refuses it (exit 1, where
 * and why), and a running control plane rejects an edit that needs it and keeps running the previous
 * config; once the file exists (otto.yaml untouched), the edit is applied.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_IMAGE, containersOf, docker, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

const body = (secrets: string, serviceSecrets: string) => `metrics:
  interval: 1s
control:
  interval: 1s
nodes:
  - { id: local, host: localhost }
secrets:
${secrets}services:
  - name: app
    image: ${TEST_IMAGE}
    command: sleep 3600
    secrets: [${serviceSecrets}]
`;

describe('secrets that cannot be read', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await createCluster('secretcfg', body('  db: { file: ./db.txt }\n', 'db'));
  });

  afterAll(async () => {
    await c.destroy();
  });

  it('make `cluster start` fail with where and why (exit 1)', async () => {
    const result = await c.run('cluster', 'start', '--detach');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^otto: otto\.yaml:\d+:15 secrets\.db\.file: cannot read "\.\/db\.txt" \(.*\/db\.txt\): no such file/);
    expect(result.stderr).toMatch(/hint: create the file or export the variable/);
  });

  it('make a running control plane reject the edit that needs them, and apply it once the file exists', async () => {
    writeFileSync(join(c.dir, 'db.txt'), 'one');
    const start = await c.run('cluster', 'start', '--detach');
    expect(start.code, start.stderr).toBe(0);
    await waitFor('app running', async () => (await c.status()).services[0]!.running === 1);
    const before = (await containersOf(c.name))[0]!;

    c.writeConfig(body('  db: { file: ./db.txt }\n  token: { environment: OTTO_TEST_NEVER_SET }\n', 'db, token'));
    const rejected = await waitFor('the edit rejected', async () => (await c.status()).cluster.config_error);
    expect(rejected).toMatch(/secrets\.token\.environment: variable "OTTO_TEST_NEVER_SET" is not set in the control plane's environment/);

    c.writeConfig(body('  db: { file: ./db.txt }\n  token: { file: ./token.txt }\n', 'db, token'));
    await waitFor('the new edit rejected', async () => /secrets\.token\.file: cannot read "\.\/token\.txt"/.test((await c.status()).cluster.config_error ?? ''));
    expect((await containersOf(c.name))[0]!.Id).toBe(before.Id);

    writeFileSync(join(c.dir, 'token.txt'), 'tok');
    await waitFor('the edit applied', async () => (await c.status()).cluster.config_error === null);
    const after = await waitFor('app updated', async () => {
      const now = (await containersOf(c.name))[0];
      return now && now.Id !== before.Id && now.State === 'running' && now;
    });
    const info = await docker.getContainer(after.Id).inspect();
    expect(info.Mounts.map((m) => m.Destination).sort()).toEqual(['/run/secrets/db', '/run/secrets/token']);
    const events = await c.run('cluster', 'events', '--json');
    expect(events.stdout).toMatch(/config-rejected/);
  });
});
