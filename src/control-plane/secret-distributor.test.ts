import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import type { DesiredState, NodeState, ReplicaSpec } from '../protocol/messages.js';
import type { SecretsMessage } from '../protocol/secrets.js';
import { containerSpecOf } from './container-spec.js';
import { SecretDistributor } from './secret-distributor.js';
import { SecretKeeper } from './secret-keeper.js';

const text = `nodes:
  - { id: a, host: localhost }
  - { id: b, host: localhost }
secrets:
  db: { file: ./db.txt }
  other: { file: ./other.txt }
registries:
  127.0.0.1:5000: { username: me, password: { file: ./pw.txt } }
services:
  - { name: app, image: "127.0.0.1:5000/app:1", secrets: [db] }
  - { name: web, image: busybox, secrets: [other] }
`;
const config = parseConfig(text, 'otto.yaml', {});

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'otto-distributor-'));
  const write = (name: string, content: string) => writeFile(join(dir, name), content);
  await write('db.txt', 'db-1');
  await write('other.txt', 'other-1');
  await write('pw.txt', 'pw-1');
  const sent: { node: string; message: SecretsMessage }[] = [];
  const keeper = new SecretKeeper();
  const distributor = new SecretDistributor(
    { cluster: () => 'c', publish: async (node, message) => void sent.push({ node, message }), log: createLogger({ component: 'test', level: 'silent' }) },
    keeper,
  );
  const location = { path: join(dir, 'otto.yaml'), text };
  await keeper.load(config, location, dir);
  const replica = (service: string): ReplicaSpec => {
    const s = config.services.find((x) => x.name === service)!;
    return { service, replica: 1, name: `c-${service}-1`, spec_hash: 'h', container: containerSpecOf(s, keeper.digests()) };
  };
  const desired = (node: string, ...services: string[]): DesiredState => {
    const replicas = services.map(replica);
    return { cluster: 'c', node_id: node, revision: 1, generated_at: new Date().toISOString(), settings: { metrics_interval_ms: 1000 }, replicas, registries: keeper.registriesFor(replicas) };
  };
  return { distributor, keeper, sent, desired, write, location };
}

const values = (message: SecretsMessage) => message.secrets.map((s) => `${s.name}=${Buffer.from(s.value, 'base64').toString()}`);

describe('SecretDistributor and SecretKeeper', () => {
  it('sends a node the secrets and credentials of its own replicas only, once', async () => {
    const { distributor, sent, desired } = await setup();
    await distributor.beforeDesired(desired('a', 'app'));
    await distributor.beforeDesired(desired('b', 'web'));
    await distributor.beforeDesired(desired('a', 'app'));
    expect(sent.map((s) => [s.node, values(s.message), s.message.registries.map((r) => `${r.host}:${r.username}:${r.password}`)])).toEqual([
      ['a', ['db=db-1'], ['127.0.0.1:5000:me:pw-1']],
      ['b', ['other=other-1'], []],
    ]);
    expect(sent.every((s) => s.message.node_id === s.node && s.message.cluster === 'c')).toBe(true);
  });

  it('sends everything again when the node comes back online', async () => {
    const { distributor, sent, desired } = await setup();
    await distributor.beforeDesired(desired('a', 'app'));
    await distributor.nodeOnline('a', desired('a', 'app'));
    expect(sent.map((s) => values(s.message))).toEqual([['db=db-1'], ['db=db-1']]);
  });

  it('answers what a node lacks, only among what its desired state needs, and not twice in a row', async () => {
    const { distributor, sent, desired } = await setup();
    const wanted = desired('a', 'app');
    const dbKey = `db@${wanted.replicas[0]!.container.secrets![0]!.hash}`;
    const otherKey = `other@${desired('b', 'web').replicas[0]!.container.secrets![0]!.hash}`;
    const state = (missing: string[]): NodeState => ({ node_id: 'a', timestamp: new Date().toISOString(), revision: 1, docker: { reachable: true }, replicas: [], missing_secrets: missing });
    await distributor.answer(state([dbKey, otherKey]), wanted, 1_000);
    await distributor.answer(state([dbKey]), wanted, 2_000);
    expect(sent.map((s) => values(s.message))).toEqual([['db=db-1']]);
    await distributor.answer(state([dbKey]), wanted, Date.now() + 10_000);
    expect(sent).toHaveLength(2);
  });

  it('reports a changed file, and still has the earlier value for replicas on the older spec', async () => {
    const { distributor, keeper, sent, desired, write, location } = await setup();
    const old = desired('a', 'app');
    expect(await keeper.refresh(config, location)).toEqual({ kind: 'unchanged' });
    await write('db.txt', 'db-2');
    expect(await keeper.refresh(config, location)).toEqual({ kind: 'changed', secrets: ['db'], registries: false });
    await distributor.nodeOnline('a', desired('a', 'app'));
    await distributor.nodeOnline('a', old);
    expect(sent.map((s) => values(s.message))).toEqual([['db=db-2'], ['db=db-1']]);
  });

  it('keeps the values read before when a source goes missing, and says so once', async () => {
    const { keeper, location } = await setup();
    await rm(join(location.path, '..', 'db.txt'));
    const failed = await keeper.refresh(config, location);
    expect(failed).toMatchObject({ kind: 'failed', first: true, error: expect.stringMatching(/secrets\.db\.file: cannot read "\.\/db\.txt"/) });
    expect(await keeper.refresh(config, location)).toMatchObject({ kind: 'failed', first: false });
    expect(keeper.digests().has('db')).toBe(true);
    await writeFile(join(location.path, '..', 'db.txt'), 'db-1');
    expect(await keeper.refresh(config, location)).toEqual({ kind: 'recovered' });
  });
});
