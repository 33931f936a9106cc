/**
 * The agent's checks of its inputs without zod (src/agent/inputs.ts, input-check-codegen.ts): a predicate
 * that says true must mean zod accepts the input and returns it unchanged, or the agent would run a spec
 * zod would have refused; and what the control plane sends must pass them, or every agent would load zod
 * (several MB of its memory) for its ordinary messages.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { inputJsonSchemas } from '../src/agent/input-check-codegen.js';
import { checkInput, checkedByZod, decodeInput, INPUT_SCHEMAS, type InputName } from '../src/agent/inputs.js';
import { parseConfig } from '../src/config/load.js';
import { desiredStateFor, planCluster } from '../src/control-plane/desired-state.js';
import { packSecretsMessages } from '../src/protocol/secrets.js';
import { compile, expectEverySampleAccepted, expectNoPredicateBeyondZod, type Check } from './support/schema-checks.js';

const CONFIG = `
cluster: { name: farm }
mqtt: { host: 0.0.0.0, advertise: cp.local }
nodes:
  - { id: barn, host: 192.168.1.20, user: pi, labels: { arch: arm64 } }
  - { id: shed, host: 192.168.1.21, user: pi }
services:
  - name: web
    image: registry.local:5000/web:1.2
    command: [httpd, -f, -p, "80"]
    ports: ["8080:80", "127.0.0.1:5353:53/udp"]
    environment: { GREETING: hello, EMPTY: "" }
    volumes: ["/srv/www:/www:ro", "cache:/cache"]
    labels: { tier: front }
    healthcheck: { test: "wget -q -O- http://127.0.0.1/ || exit 1", interval: 5s, retries: 3 }
    init: true
    stop_signal: SIGINT
    stop_grace_period: 20s
    cpus: 0.5
    memory: 64m
    replicas: 2
    update: { order: start-first }
  - name: worker
    image: busybox
    command: sh -c 'sleep 3600'
    restart: on-failure
    node: shed
`;

/** Inputs as the agent reads them (JSON) from what their senders make: the control plane's desired states, the CLI's logs requests, ... */
function sampleInputs(): Record<InputName, unknown[]> {
  return JSON.parse(JSON.stringify(senderInputs())) as Record<InputName, unknown[]>;
}

function senderInputs(): Record<InputName, unknown[]> {
  const config = parseConfig(CONFIG, 'otto.yaml', {});
  const plan = planCluster(config);
  const desired = config.nodes.map((node) => desiredStateFor(config, node.id, plan.replicasByNode.get(node.id) ?? [], 1_700_000_000_000));
  const withRegistries = { ...desired[0]!, registries: [{ host: 'registry.local:5000', hash: 'ab12cd34' }] };
  const replicas = desired.flatMap((state) => state.replicas);
  expect(replicas.length).toBe(3);
  const secrets = packSecretsMessages('farm', 'barn', [{ name: 'db.key', hash: '0123abcd', value: Buffer.from('s3cret\n').toString('base64') }], [
    { host: 'registry.local:5000', hash: 'ab12cd34', username: 'robot', password: 'pw' },
  ]);
  return {
    desiredEnvelope: [...desired, withRegistries, { ...desired[0]!, replicas: [] }],
    replicaSpec: replicas,
    secretsMessage: [...secrets, { cluster: 'farm', node_id: 'barn', secrets: [], registries: [] }],
    logsRequest: [
      { request_id: 'logs-7f3a9c2e', container: 'farm-web-1', follow: true, tail: 100, window: 64 },
      { request_id: 'logs-0b8d41aa', container: 'farm-web-2', follow: false },
    ],
    logsControl: [{ request_id: 'logs-7f3a9c2e', action: 'keepalive', received: 12 }, { request_id: 'logs-7f3a9c2e', action: 'cancel' }],
    joinReply: [
      { request_id: 'q', cluster: 'farm', ok: true, node_id: 'pi-7', credential: { public_key: 'pk', iv: 'iv', ciphertext: 'ct', tag: 'tg' } },
      { request_id: 'q', cluster: 'farm', ok: false, error: 'the pool token was rotated' },
    ],
    registriesFile: [{}, { 'registry.local:5000': { hash: 'ab12cd34', username: 'robot', password: 'pw' } }],
    joinState: [{ cluster: 'farm', node: 'pi-7', url: 'mqtts://cp.local:8883', joined_at: new Date(0).toISOString() }],
  };
}

const schemas = Object.fromEntries(await Promise.all(Object.entries(INPUT_SCHEMAS).map(async ([name, load]) => [name, await load()] as const))) as unknown as Record<InputName, z.ZodType>;

describe('agent input checks without zod', async () => {
  const { checks, deferred } = compile(await inputJsonSchemas());
  const samples = sampleInputs();

  it('check every input entirely (no part left to zod)', () => {
    expect(deferred).toEqual([]);
    expect(Object.keys(checks).sort()).toEqual(Object.keys(INPUT_SCHEMAS).sort());
    expect(Object.keys(samples).sort()).toEqual(Object.keys(INPUT_SCHEMAS).sort());
  });

  it('accept what the control plane, the CLI and the agent itself write', () => {
    expectEverySampleAccepted(checks, samples);
  });

  it('say true only for what zod accepts and returns unchanged, through every mutation of the inputs', () => {
    const { tried, rejected, zodRejected } = expectNoPredicateBeyondZod(checks, samples, (name) => schemas[name as InputName]);
    expect(tried).toBeGreaterThan(4_000);
    expect(zodRejected).toBeGreaterThan(tried / 2);
    expect(tried - rejected).toBeGreaterThan(100);
  });

  it('are the ones the build wrote to dist (npm run build), not the stand-in', async () => {
    const built = fileURLToPath(new URL('../dist/agent/input-checks.js', import.meta.url));
    const { inputChecks } = (await import(built)) as { inputChecks: Record<InputName, Check> };
    expect(Object.keys(inputChecks).sort()).toEqual(Object.keys(INPUT_SCHEMAS).sort());
    for (const [name, values] of Object.entries(samples)) for (const value of values) expect(inputChecks[name as InputName](value)).toBe(true);
    expect(inputChecks.replicaSpec({ ...(samples.replicaSpec[0] as object), privileged: true })).toBe(false);
  });

  it('send what they refuse to zod, which strips an unknown key or names the field that is wrong', async () => {
    // From the sources the checks are the stand-in: every input goes to zod, and is counted.
    const before = checkedByZod.get('replicaSpec') ?? 0;
    const spec = samples.replicaSpec[0] as Record<string, unknown>;
    expect(await checkInput('replicaSpec', { ...spec, from_a_newer_control_plane: 1 })).toEqual({ ok: true, value: spec });
    expect(await checkInput('replicaSpec', { ...spec, replica: 'one' }, '(replica)')).toEqual({ ok: false, error: 'replica: expected number, received string' });
    expect(await checkInput('replicaSpec', 7, '(replica)')).toEqual({ ok: false, error: '(replica): expected object, received number' });
    expect(checkedByZod.get('replicaSpec')).toBe(before + 3);
    expect(await decodeInput('logsControl', '{"request_id": "r", "action": "explode"}')).toMatchObject({ ok: false, error: expect.stringMatching(/^action: /) });
    expect(await decodeInput('logsControl', 'not json')).toMatchObject({ ok: false, error: expect.stringMatching(/^not JSON/) });
  });
});
