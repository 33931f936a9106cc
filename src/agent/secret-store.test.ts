import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DesiredState } from '../protocol/messages.js';
import { SecretStore, secretReadableBy } from './secret-store.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const HASH_1 = 'aaaaaaaaaaaaaaaa';
const HASH_2 = 'bbbbbbbbbbbbbbbb';

const desired = (secrets: { name: string; hash: string }[], registries: { host: string; hash: string }[] = []): DesiredState => ({
  cluster: 'c',
  node_id: 'n',
  revision: 1,
  generated_at: new Date().toISOString(),
  settings: { metrics_interval_ms: 1000 },
  replicas: [{ service: 's', replica: 1, name: 'c-s-1', spec_hash: 'h', container: { image: 'x', env: {}, ports: [], volumes: [], restart: 'no', labels: {}, secrets } }],
  registries,
});

describe('SecretStore', () => {
  it('keeps each value 0600 in a 0700 folder, and finds them again after a restart (the control plane away)', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'otto-secret-store-'));
    const store = new SecretStore(stateDir);
    await store.load();
    await store.put([{ name: 'db', hash: HASH_1, value: b64('s3cret\n') }], [{ host: 'ghcr.io', hash: HASH_2, username: 'me', password: 'pw' }]);
    expect((await stat(store.dir)).mode & 0o777).toBe(0o700);
    const file = store.pathOf({ name: 'db', hash: HASH_1 });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toBe('s3cret\n');
    expect((await stat(join(stateDir, 'registries.json'))).mode & 0o777).toBe(0o600);

    const restarted = new SecretStore(stateDir);
    await restarted.load();
    expect(restarted.has({ name: 'db', hash: HASH_1 })).toBe(true);
    expect(restarted.credential('ghcr.io', HASH_2)).toEqual({ username: 'me', password: 'pw' });
    expect(restarted.credential('ghcr.io', HASH_1)).toBeUndefined();
  });

  it('lists what the desired state needs and the node lacks, by name and hash', async () => {
    const store = new SecretStore(await mkdtemp(join(tmpdir(), 'otto-secret-store-')));
    await store.load();
    await store.put([{ name: 'db', hash: HASH_1, value: b64('x') }], []);
    const wanted = desired([{ name: 'db', hash: HASH_2 }, { name: 'token', hash: HASH_1 }], [{ host: 'ghcr.io', hash: HASH_1 }]);
    expect(store.missing(wanted)).toEqual({ secrets: [`db@${HASH_2}`, `token@${HASH_1}`], registries: [`ghcr.io@${HASH_1}`] });
  });

  it('removes what nothing needs: not desired, not mounted by a container, not just arrived', async () => {
    const store = new SecretStore(await mkdtemp(join(tmpdir(), 'otto-secret-store-')));
    await store.load();
    await store.put(
      [
        { name: 'db', hash: HASH_1, value: b64('old') },
        { name: 'db', hash: HASH_2, value: b64('new') },
        { name: 'gone', hash: HASH_1, value: b64('x') },
      ],
      [],
    );
    const wanted = desired([{ name: 'db', hash: HASH_2 }]);
    await store.prune(wanted, new Set());
    expect((await readdir(store.dir)).sort()).toHaveLength(3);
    const later = Date.now() + 11 * 60_000;
    await store.prune(wanted, new Set([store.pathOf({ name: 'db', hash: HASH_1 })]), later);
    expect((await readdir(store.dir)).sort()).toEqual([`db@${HASH_1}`, `db@${HASH_2}`]);
    await store.prune(wanted, new Set(), later);
    expect(await readdir(store.dir)).toEqual([`db@${HASH_2}`]);
  });

  it('knows which image users can read the files it gives them', () => {
    const root = process.getuid?.() === 0;
    expect(secretReadableBy('')).toBe(true);
    expect(secretReadableBy('root')).toBe(true);
    expect(secretReadableBy('0:0')).toBe(true);
    expect(secretReadableBy(String(process.getuid?.()))).toBe(true);
    // Another uid gets a copy of its own only from an agent running as root.
    expect(secretReadableBy('54321:54321')).toBe(root);
    // A name needs the image's /etc/passwd, which the agent does not read.
    expect(secretReadableBy('node')).toBe(false);
  });
});
