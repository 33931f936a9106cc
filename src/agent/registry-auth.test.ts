import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DesiredState } from '../protocol/messages.js';
import { normalizeRegistryHost, registryHostOf } from '../protocol/secret-names.js';
import { RegistryAuth, dockerLoginFor } from './registry-auth.js';
import { SecretStore } from './secret-store.js';

const HASH = 'cccccccccccccccc';

describe('registry hosts, as Docker reads image names', () => {
  it('takes the first component when it looks like a host, else Docker Hub', () => {
    expect(registryHostOf('busybox')).toBe('docker.io');
    expect(registryHostOf('library/busybox:1')).toBe('docker.io');
    expect(registryHostOf('ghcr.io/me/app:1')).toBe('ghcr.io');
    expect(registryHostOf('127.0.0.1:5000/otto/busybox:1')).toBe('127.0.0.1:5000');
    expect(registryHostOf('localhost/app')).toBe('localhost');
    expect(registryHostOf('Registry.Example.com/app@sha256:abc')).toBe('registry.example.com');
    expect(normalizeRegistryHost('https://index.docker.io/v1/')).toBe('docker.io');
  });
});

describe('dockerLoginFor', () => {
  const config = {
    auths: {
      'https://index.docker.io/v1/': { auth: Buffer.from('hub:pa:ss').toString('base64') },
      '127.0.0.1:5000': { auth: Buffer.from('me:pw').toString('base64') },
      'ghcr.io': { identitytoken: 'tok' },
      'quay.io': {},
    },
    credsStore: 'desktop',
  };
  it('reads `auths` entries (base64 user:password, identity tokens), whatever the key form', () => {
    expect(dockerLoginFor(config, 'docker.io')).toEqual({ username: 'hub', password: 'pa:ss', serveraddress: 'https://index.docker.io/v1/' });
    expect(dockerLoginFor(config, '127.0.0.1:5000')).toEqual({ username: 'me', password: 'pw', serveraddress: '127.0.0.1:5000' });
    expect(dockerLoginFor(config, 'ghcr.io')).toEqual({ identitytoken: 'tok', serveraddress: 'ghcr.io' });
  });
  it('finds nothing for a host kept by a credential helper, or not logged in', () => {
    expect(dockerLoginFor(config, 'quay.io')).toBeUndefined();
    expect(dockerLoginFor(config, 'example.com')).toBeUndefined();
    expect(dockerLoginFor(undefined, 'example.com')).toBeUndefined();
  });
});

describe('RegistryAuth', () => {
  const desired = (registries: DesiredState['registries']): DesiredState => ({
    cluster: 'c',
    node_id: 'n',
    revision: 1,
    generated_at: new Date().toISOString(),
    settings: { metrics_interval_ms: 1000 },
    replicas: [],
    registries,
  });

  it('prefers the credential the control plane sent, waits for it when named but absent, else uses the docker login', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'otto-registry-auth-'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { '127.0.0.1:5000': { auth: Buffer.from('login:pw').toString('base64') } } }));
    const store = new SecretStore(dir);
    await store.load();
    let wanted = desired([{ host: '127.0.0.1:5000', hash: HASH }]);
    const auth = new RegistryAuth(store, () => wanted, dir);
    const image = '127.0.0.1:5000/otto/busybox:1';
    expect(auth.waitingFor(image)).toMatch(/waiting for the credential of registry 127\.0\.0\.1:5000/);
    expect(await auth.forImage(image)).toEqual({ waiting: expect.stringMatching(/waiting for the credential/) });
    await store.put([], [{ host: '127.0.0.1:5000', hash: HASH, username: 'sent', password: 'pw2' }]);
    expect(auth.waitingFor(image)).toBeUndefined();
    expect(await auth.forImage(image)).toEqual({ auth: { username: 'sent', password: 'pw2', serveraddress: '127.0.0.1:5000' } });
    wanted = desired(undefined);
    expect(await auth.forImage(image)).toEqual({ auth: { username: 'login', password: 'pw', serveraddress: '127.0.0.1:5000' } });
    expect(await auth.forImage('busybox')).toEqual({ auth: undefined });
  });
});
