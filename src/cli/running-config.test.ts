import { mkdtemp, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { Workspace } from '../workspace.js';
import { loadConfigNotingEnv, loadRunningConfig } from './running-config.js';

const SET = 'OTTO_RC_TEST_SET';
const DEFAULTED = 'OTTO_RC_TEST_DEFAULTED';
const config = `nodes:
  - id: local
    host: localhost
    labels: { zone: "\${${SET}}", tier: "\${${DEFAULTED}:-edge}", price: "$\${NOT_A_VARIABLE}" }
`;

async function writeConfig(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'otto-running-config-'));
  const path = join(dir, 'otto.yaml');
  await writeFile(path, config);
  return path;
}

describe('the variables of a running cluster', () => {
  afterEach(() => {
    delete process.env[SET];
    delete process.env[DEFAULTED];
  });

  it('notes the value of every variable otto.yaml reads, null for one not set, none for a $$ escape', async () => {
    process.env[SET] = 'north';
    const { loaded, referenced } = await loadConfigNotingEnv(await writeConfig());
    expect(referenced).toEqual({ [SET]: 'north', [DEFAULTED]: null });
    expect(loaded.config.nodes[0]!.labels).toEqual({ zone: 'north', tier: 'edge', price: '${NOT_A_VARIABLE}' });
  });

  it('reads otto.yaml with the saved values over the shell: a missing variable, a changed one, one unset at start', async () => {
    const path = await writeConfig();
    const workspace = new Workspace(path);
    await workspace.saveEnv({ [SET]: 'north', [DEFAULTED]: null });
    expect(statSync(workspace.envPath).mode & 0o777).toBe(0o600);

    expect((await loadRunningConfig(path)).config.nodes[0]!.labels).toMatchObject({ zone: 'north', tier: 'edge' });
    process.env[SET] = 'south';
    process.env[DEFAULTED] = 'core';
    expect((await loadRunningConfig(path)).config.nodes[0]!.labels).toMatchObject({ zone: 'north', tier: 'edge' });
  });

  it('without a saved value nor one in the shell, fails as loadConfig does', async () => {
    const error = await loadRunningConfig(await writeConfig()).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain(`variable "${SET}" is not set`);
  });
});

describe('the stop report', () => {
  it('is read back only for the pid that wrote it, and only when well formed', async () => {
    const workspace = new Workspace(await writeConfig());
    const remote = { stopped: ['rpi-01'], failed: [{ node: 'rpi-02', error: 'cannot reach SSH' }] };
    await workspace.writeStopReport(remote);
    expect((await workspace.readStopReport(process.pid))?.remote).toEqual(remote);
    expect(await workspace.readStopReport(process.pid + 1)).toBeUndefined();

    await writeFile(workspace.stopReportPath, JSON.stringify({ pid: process.pid, remote: { stopped: 'rpi-01', failed: [] } }));
    expect(await workspace.readStopReport(process.pid)).toBeUndefined();
    await workspace.clearStopReport();
    expect(await workspace.readStopReport(process.pid)).toBeUndefined();
  });
});
