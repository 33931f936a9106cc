import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { containerSpecOf } from './container-spec.js';
import { readSecretSources, secretChanges, secretHashKey } from './secret-sources.js';

const text = `nodes:
  - { id: local, host: localhost }
secrets:
  db: { file: ./db.txt }
  token: { environment: OTTO_TOKEN }
registries:
  127.0.0.1:5000: { username: me, password: { file: ./pw.txt } }
services:
  - name: app
    image: busybox
    secrets: [token, db]
`;
const config = parseConfig(text, 'otto.yaml', {});
const key = Buffer.alloc(32, 7);

async function folder(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'otto-secret-sources-'));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

describe('readSecretSources', () => {
  it('reads files beside otto.yaml and variables of the environment; a password loses its final line break only', async () => {
    const dir = await folder({ 'db.txt': 'line\n', 'pw.txt': 'secret\n' });
    const values = await readSecretSources(config, { path: join(dir, 'otto.yaml'), text }, key, { OTTO_TOKEN: 't0k' });
    expect(values.secrets.get('db')!.value.toString()).toBe('line\n');
    expect(values.secrets.get('token')!.value.toString()).toBe('t0k');
    expect(values.registries.get('127.0.0.1:5000')).toMatchObject({ username: 'me', password: 'secret', host: '127.0.0.1:5000' });
  });

  it('names every source it cannot read at its place in otto.yaml', async () => {
    const dir = await folder({});
    const error = await readSecretSources(config, { path: join(dir, 'otto.yaml'), text }, key, {}).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      `${join(dir, 'otto.yaml')}:4:15 secrets.db.file: cannot read "./db.txt" (${join(dir, 'db.txt')}): no such file`,
      `${join(dir, 'otto.yaml')}:5:25 secrets.token.environment: variable "OTTO_TOKEN" is not set in the control plane's environment; export it before \`otto cluster start\``,
      `${join(dir, 'otto.yaml')}:7:53 registries["127.0.0.1:5000"].password.file: cannot read "./pw.txt" (${join(dir, 'pw.txt')}): no such file`,
    ]);
  });

  it('hashes values with the workspace key: a new value is a new hash, and the hash gives nothing away without the key', async () => {
    const dir = await folder({ 'db.txt': 'one', 'pw.txt': 'p' });
    const location = { path: join(dir, 'otto.yaml'), text };
    const env = { OTTO_TOKEN: 'same' };
    const before = await readSecretSources(config, location, key, env);
    await writeFile(join(dir, 'db.txt'), 'two');
    const after = await readSecretSources(config, location, key, env);
    expect(secretChanges(before, after)).toEqual({ secrets: ['db'], registries: false });
    const otherKey = await readSecretSources(config, location, Buffer.alloc(32, 8), env);
    expect(otherKey.secrets.get('token')!.hash).not.toBe(after.secrets.get('token')!.hash);
    expect(after.secrets.get('db')!.hash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('puts the names and hashes in the container spec, sorted, so a new value is a new spec', async () => {
    const dir = await folder({ 'db.txt': 'one', 'pw.txt': 'p' });
    const values = await readSecretSources(config, { path: join(dir, 'otto.yaml'), text }, key, { OTTO_TOKEN: 't' });
    const digests = new Map([...values.secrets].map(([name, v]) => [name, v.hash]));
    const spec = containerSpecOf(config.services[0]!, digests);
    expect(spec.secrets).toEqual([
      { name: 'db', hash: values.secrets.get('db')!.hash },
      { name: 'token', hash: values.secrets.get('token')!.hash },
    ]);
    expect(JSON.stringify(spec)).not.toContain('"one"');
    expect(() => containerSpecOf(config.services[0]!)).toThrow(/no value read for secret "db"/);
  });

  it('makes the hash key once per workspace, 0600', async () => {
    const dir = await folder({});
    const first = await secretHashKey(dir);
    expect(await secretHashKey(dir)).toEqual(first);
    expect((await stat(join(dir, 'secrets.key'))).mode & 0o777).toBe(0o600);
    expect((await readFile(join(dir, 'secrets.key'), 'utf8')).trim()).toBe(first.toString('hex'));
  });
});
