/**
 * Fleet operations on a running cluster, checked in Docker: scale (idempotent, FIFO, highest replica
 * indexes removed first), rolling restart (always one serving; pause and rollback on a failing healthcheck), healing,
 * config hot reload, scale persistence, logs over MQTT, events.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operation } from '../src/http/schemas.js';
import { cliPath, containersOf, docker, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

const flags = mkdtempSync(join(tmpdir(), 'otto-flags-'));

const config = (opts: { workerReplicas?: number; greeting?: string; failureAction?: string } = {}) => `metrics:
  interval: 1s
control:
  interval: 2s
nodes:
  - id: local
    host: localhost
services:
  - name: web
    image: otto-test/busybox
    command: httpd -f -p 80 -h /www
    init: true
    healthcheck: { test: "wget -q -O- http://127.0.0.1/ || exit 1", interval: 1s, retries: 2 }
  - name: worker
    image: otto-test/busybox
    replicas: ${opts.workerReplicas ?? 1}
    command: sh -c 'i=0; while true; do i=$$((i+1)); echo "line $$i $$GREETING"; sleep 0.3; done'
    init: true
    environment: { GREETING: ${opts.greeting ?? 'one'} }
  - name: fragile
    image: otto-test/busybox
    replicas: 2
    volumes: ["${flags}:/flags"]
    command: sh -c 'if [ -f /flags/break-next ]; then rm -f /flags/break-next; touch /tmp/broken; fi; exec httpd -f -p 80 -h /www'
    init: true
    healthcheck: { test: "test ! -f /tmp/broken && wget -q -O- http://127.0.0.1/", interval: 1s, retries: 2 }
    update: { monitor: 1s, failure_action: ${opts.failureAction ?? 'pause'} }
`;

async function serviceContainers(cluster: string, service: string, all = false) {
  return (await containersOf(cluster, all)).filter((c) => c.Labels['otto.service'] === service);
}

const byReplica = (containers: Awaited<ReturnType<typeof serviceContainers>>) =>
  Object.fromEntries(containers.map((c) => [c.Labels['otto.replica'], c.Id]));

describe('fleet operations on a running cluster', () => {
  let c: TestCluster;
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const token = readFileSync(join(c.dir, '.otto', 'token'), 'utf8').trim();
    const response = await fetch(`http://127.0.0.1:${c.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return (await response.json()) as T;
  };
  const waitRunning = (service: string, count: number, healthy = false) =>
    waitFor(`${count} ${service} running`, async () => {
      const s = await c.status();
      const view = s.services.find((x) => x.name === service)!;
      return view.desired === count && view.running === count && (!healthy || view.health === 'healthy') && s;
    });

  beforeAll(async () => {
    c = await createCluster('fleet', config());
    const started = await c.run('cluster', 'start', '--detach');
    expect(started.code, started.stderr).toBe(0);
    await waitRunning('web', 1, true);
    await waitRunning('fragile', 2, true);
  });

  afterAll(async () => {
    await c.destroy();
  });

  it('scale 1 -> 5 -> 2 keeps replicas 1 and 2 even when replica 1 is the newest container', async () => {
    const up = await c.run('service', 'scale', 'web=5');
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('web scaled from 1 to 5');
    const five = byReplica(await serviceContainers(c.name, 'web'));
    expect(Object.keys(five).sort()).toEqual(['1', '2', '3', '4', '5']);

    // Replica 1 removed by hand and recreated by its agent is the newest container: "newest first" would
    // now keep replicas 2 and 3, "highest index first" (Swarm's slots, what Otto does) keeps 1 and 2.
    await docker.getContainer(five['1']!).remove({ force: true });
    const recreated = await waitFor(
      'the agent to recreate replica 1',
      async () => {
        const id = byReplica(await serviceContainers(c.name, 'web'))['1'];
        return id !== five['1'] && id;
      },
      30_000,
      200,
    );
    await waitRunning('web', 5, true);
    const now = byReplica(await serviceContainers(c.name, 'web'));
    expect(now).toEqual({ ...five, '1': recreated });
    const createdAt = async (id: string) => Date.parse((await docker.getContainer(id).inspect()).Created);
    const recreatedAt = await createdAt(recreated);
    for (const replica of ['2', '3', '4', '5']) expect(recreatedAt, `replica 1 is newer than replica ${replica}`).toBeGreaterThan(await createdAt(now[replica]!));

    const down = await c.run('service', 'scale', 'web=2');
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toContain('web scaled from 5 to 2');
    // Every container of web, stopped ones too: the removed replicas are gone, not just stopped.
    expect(byReplica(await serviceContainers(c.name, 'web', true))).toEqual({ '1': recreated, '2': five['2'] });
  });

  it('scaling to the current count does nothing and says so', async () => {
    const before = byReplica(await serviceContainers(c.name, 'web'));
    const same = await c.run('service', 'scale', 'web=2');
    expect(same.code).toBe(0);
    expect(same.stdout).toContain('web already has 2 replica(s)');
    expect(byReplica(await serviceContainers(c.name, 'web'))).toEqual(before);
  });

  it('rejects a bad scale specifier and an unknown service with exit 1', async () => {
    const bad = await c.run('service', 'scale', 'web');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid scale specifier "web": expected NAME=REPLICAS');
    const unknown = await c.run('service', 'scale', 'nope=2');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no such service: nope');
  });

  it('two scale requests sent at once run in FIFO order and end at the last one', async () => {
    const [first, second] = await Promise.all([
      api<Operation>('POST', '/api/v1/services/web/scale', { replicas: 4 }),
      api<Operation>('POST', '/api/v1/services/web/scale', { replicas: 3 }),
    ]);
    const done = await waitFor('both scales to finish', async () => {
      const ops = await api<Operation[]>('GET', '/api/v1/operations');
      const mine = ops.filter((op) => op.id === first.id || op.id === second.id);
      return mine.length === 2 && mine.every((op) => op.finished_at) && mine;
    });
    // The ledger keeps them in the order they were accepted; the second starts when the first ended.
    const [a, b] = done;
    expect(Date.parse(b!.started_at!)).toBeGreaterThanOrEqual(Date.parse(a!.finished_at!));
    expect((await serviceContainers(c.name, 'web')).length).toBe(b!.replicas);
    const events = (await c.run('cluster', 'events', '--json')).stdout.trim().split('\n').map((l) => JSON.parse(l));
    const firstFinished = events.findIndex((e) => e.kind === 'operation-finished' && e.message.includes(`web=${a!.replicas}`));
    const queuedBefore = events.slice(0, firstFinished).filter((e) => e.kind === 'operation-queued' && /scale web=[34] /.test(e.message));
    expect(queuedBefore).toHaveLength(2);
  });

  it('a rolling restart of 3 replicas replaces every container while at least one serves at every sample', async () => {
    await c.run('service', 'scale', 'web=3');
    await waitRunning('web', 3, true);
    const before = (await serviceContainers(c.name, 'web')).map((x) => x.Id);
    let polling = true;
    const samples: number[] = [];
    const poller = (async () => {
      while (polling) {
        const list = await serviceContainers(c.name, 'web');
        samples.push(list.filter((x) => x.State === 'running' && x.Status.includes('(healthy)')).length);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const restart = await c.run('service', 'restart', 'web', '--rolling');
    polling = false;
    await poller;
    expect(restart.code, restart.stderr).toBe(0);
    expect(restart.stdout).toContain('3/3');
    const after = (await serviceContainers(c.name, 'web')).map((x) => x.Id);
    expect(after).toHaveLength(3);
    expect(after.filter((id) => before.includes(id))).toEqual([]);
    expect(samples.length).toBeGreaterThan(10);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(1);
  });

  it('a restart whose new container fails its healthcheck pauses and says why', async () => {
    const before = byReplica(await serviceContainers(c.name, 'fragile'));
    writeFileSync(join(flags, 'break-next'), '');
    const restart = await c.run('service', 'restart', 'fragile', '--rolling');
    expect(restart.code).toBe(2);
    expect(restart.stderr).toMatch(/rolling-restart fragile paused: replica \S+-fragile-1 is unhealthy; paused at 0\/2/);
    const after = byReplica(await serviceContainers(c.name, 'fragile', true));
    expect(after['1']).not.toBe(before['1']);
    expect(after['2']).toBe(before['2']);
  });

  it('rolls back instead when update.failure_action is rollback', async () => {
    c.writeConfig(config({ failureAction: 'rollback' }));
    await waitFor('the config reload', async () => (await c.run('cluster', 'events')).stdout.includes('config reloaded: changed fragile'));
    writeFileSync(join(flags, 'break-next'), '');
    const restart = await c.run('service', 'restart', 'fragile', '--rolling');
    expect(restart.code).toBe(2);
    expect(restart.stderr).toMatch(/rolled-back: replica \S+-fragile-1 is unhealthy; rolled back 1 replica\(s\)/);
    expect(existsSync(join(flags, 'break-next'))).toBe(false);
    await waitRunning('fragile', 2, true);
  });

  it('a container killed by hand is back within 2 ticks, and a removed one is recreated', async () => {
    const worker = (await serviceContainers(c.name, 'worker'))[0]!;
    await docker.getContainer(worker.Id).kill();
    await waitFor('the killed worker to run again', async () => (await docker.getContainer(worker.Id).inspect()).State.Running, 2 * 2_000, 100);

    await docker.getContainer(worker.Id).remove({ force: true });
    const back = await waitFor('the removed worker to come back', async () => (await serviceContainers(c.name, 'worker'))[0], 2 * 2_000, 100);
    expect(back.Id).not.toBe(worker.Id);
    // The worker's own events: other services (web in the scale test) died and healed too.
    await waitFor('the healing in the events', async () => {
      const events = (await c.run('cluster', 'events', '--json')).stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; service?: string });
      const worker = events.filter((e) => e.service === 'worker').map((e) => e.kind);
      return worker.includes('replica-died') && worker.includes('replica-healed');
    });
  });

  it('applies an edit of otto.yaml (replicas, env) without a restart', async () => {
    const pid = (await c.status()).cluster.pid;
    c.writeConfig(config({ workerReplicas: 2, greeting: 'two', failureAction: 'rollback' }));
    await waitFor('two workers with the new env', async () => {
      const workers = await serviceContainers(c.name, 'worker');
      if (workers.length !== 2) return false;
      const envs = await Promise.all(workers.map(async (w) => (await docker.getContainer(w.Id).inspect()).Config.Env));
      return envs.every((env) => env.includes('GREETING=two'));
    });
    expect((await c.status()).cluster.pid).toBe(pid);
  });

  it('rejects a broken edit and keeps running the previous config', async () => {
    const before = (await containersOf(c.name)).map((x) => x.Id).sort();
    const good = readFileSync(c.configPath, 'utf8');
    writeFileSync(c.configPath, good.replace('  - name: worker\n    image:', '  - name: worker\n    imagee:'));
    const s = await waitFor('the rejection', async () => {
      const status = await c.status();
      return status.cluster.config_error && status;
    });
    expect(s.cluster.config_error).toMatch(/otto\.yaml:\d+:\d+ services\[1\]\.imagee: unknown key \(did you mean "image"\?\)/);
    expect((await c.run('cluster', 'events')).stdout).toContain('config-rejected');
    expect((await c.run('cluster', 'status')).stdout).toContain('otto.yaml edit rejected');
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect((await containersOf(c.name)).map((x) => x.Id).sort()).toEqual(before);
    writeFileSync(c.configPath, good);
    await waitFor('the good config back', async () => (await c.status()).cluster.config_error === null);
  });

  it('keeps a scale across a control plane restart until the config changes the replicas', async () => {
    expect((await c.run('service', 'scale', 'worker=3')).code).toBe(0);
    expect((await c.run('cluster', 'stop')).code).toBe(0);
    expect((await c.run('cluster', 'start', '--detach')).code).toBe(0);
    await waitRunning('worker', 3);
    c.writeConfig(config({ workerReplicas: 1, greeting: 'two', failureAction: 'rollback' }));
    await waitRunning('worker', 1);
    await waitFor('one worker container', async () => (await serviceContainers(c.name, 'worker', true)).length === 1);
  });

  it('prints logs over MQTT: the tail, and a follow until Ctrl-C', async () => {
    const tail = await c.run('service', 'logs', 'worker', '--tail', '2');
    expect(tail.code, tail.stderr).toBe(0);
    expect(tail.stdout.trim().split('\n')).toHaveLength(2);
    expect(tail.stdout).toMatch(/^line \d+ two$/m);

    const child = spawn(process.execPath, [cliPath, 'service', 'logs', 'worker', '-f', '--tail', '0'], { cwd: c.dir });
    let out = '';
    child.stdout.on('data', (data) => (out += data));
    await waitFor('three followed lines', async () => out.trim().split('\n').filter(Boolean).length >= 3, 15_000, 100);
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGINT');
    });
    expect(code).toBe(0);
    expect(out).toMatch(/^line \d+ two$/m);

    const one = await c.run('service', 'logs', 'worker', '--replica', '1', '--tail', '1');
    expect(one.stdout).toMatch(/^line \d+ two\n$/);
    const none = await c.run('service', 'logs', 'worker', '--replica', '9');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('otto: worker has no replica 9');
  });

  it('lists services and replicas like docker service ls/ps', async () => {
    const ls = await c.run('service', 'ls');
    expect(ls.stdout).toMatch(/^NAME\s+REPLICAS\s+IMAGE/);
    expect(ls.stdout).toMatch(/web\s+3\/3\s+otto-test\/busybox\s+local\s+running\s+healthy/);
    const ps = await c.run('service', 'ps', 'web');
    expect(ps.stdout).toMatch(new RegExp(`[0-9a-f]{12}\\s+${c.name}-web-1\\s+local\\s+running\\s+healthy`));
    const missing = await c.run('service', 'ps', 'nope');
    expect(missing.code).toBe(1);
  });

  it('shows the history in cluster events, and follows new ones until Ctrl-C', async () => {
    const events = await c.run('cluster', 'events');
    expect(events.code).toBe(0);
    for (const kind of ['control-plane-started', 'node-online', 'operation-finished', 'config-reloaded', 'config-rejected']) {
      expect(events.stdout).toContain(kind);
    }

    const child = spawn(process.execPath, [cliPath, 'cluster', 'events', '--follow', '--tail', '0'], { cwd: c.dir });
    let out = '';
    child.stdout.on('data', (data) => (out += data));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await c.run('service', 'scale', 'web=3')).stdout).toContain('already has 3');
    await waitFor('the followed noop', async () => out.includes('scale web=3 noop'), 15_000, 100);
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGINT');
    });
    expect(code).toBe(0);
    expect(out).not.toContain('control-plane-started');
  });
});
