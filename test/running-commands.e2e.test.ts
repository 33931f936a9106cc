/**
 * The commands that talk to a running control plane read only `.otto/` while otto.yaml is the config it
 * runs (that is what makes `otto cluster status` fast); `service` commands still read otto.yaml, and warn,
 * when it holds an edit the control plane rejected or is gone.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_IMAGE, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

describe('the commands of a running cluster and otto.yaml', () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await createCluster(
      'runcmd',
      `nodes:
  - id: local
    host: localhost
services:
  - name: idle
    image: ${TEST_IMAGE}
    command: sleep 3600
    init: true
`,
    );
    const started = await c.run('cluster', 'start', '--detach');
    expect(started.code, started.stderr).toBe(0);
  });

  afterAll(async () => {
    await c?.destroy();
  });

  it('status and service ls say nothing about otto.yaml when it is the config that runs', async () => {
    const status = await c.run('cluster', 'status');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toBe('');
    expect(status.stdout).toContain(`cluster "${c.name}" running`);
    const services = await c.run('service', 'ls');
    expect(services.code, services.stderr).toBe(0);
    expect(services.stderr).toBe('');
    expect(services.stdout).toMatch(/^idle\s+\d\/1\s+otto-test\/busybox/m);
  });

  it('status needs no otto.yaml at all while the control plane answers; service ls falls back to the last good config', async () => {
    renameSync(c.configPath, `${c.configPath}.away`);
    try {
      const status = await c.run('cluster', 'status', '--json');
      expect(status.code, status.stderr).toBe(0);
      expect(status.stderr).toBe('');
      expect(JSON.parse(status.stdout)).toMatchObject({ running: true, cluster: { name: c.name } });
      const services = await c.run('service', 'ls');
      expect(services.code, services.stderr).toBe(0);
      expect(services.stderr).toContain('otto.yaml: file not found');
      expect(services.stderr).toContain('using the last good config');
      expect(services.stdout).toMatch(/^idle\s/m);
    } finally {
      renameSync(`${c.configPath}.away`, c.configPath);
    }
  });

  it('service ls warns about an edit the control plane rejected, and stops once it is fixed', async () => {
    const good = readFileSync(c.configPath, 'utf8');
    writeFileSync(c.configPath, good.replace('    image:', '    imagee:'));
    try {
      await waitFor('the rejection', async () => (await c.status()).cluster.config_error);
      const services = await c.run('service', 'ls');
      expect(services.code, services.stderr).toBe(0);
      expect(services.stderr).toMatch(/^warning: otto\.yaml:\d+:\d+ services\[0\]\.image/m);
      expect(services.stderr).toContain('using the last good config');
      expect(services.stdout).toMatch(/^idle\s/m);
      // status never read otto.yaml: it shows the rejection the control plane reports.
      const status = await c.run('cluster', 'status');
      expect(status.stderr).toBe('');
      expect(status.stdout).toContain('otto.yaml edit rejected');
    } finally {
      writeFileSync(c.configPath, good);
    }
    await waitFor('the good config back', async () => (await c.status()).cluster.config_error === null);
    const services = await c.run('service', 'ls');
    expect(services.stderr).toBe('');
  });
});
