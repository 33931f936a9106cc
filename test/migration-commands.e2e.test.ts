/**
 * `otto service move`, `otto cluster rebalance` and `otto cluster plan` against a real control plane and two
 * real agents: nodes a and b are both `host: localhost`, so they share this machine's Docker and each
 * container says its node in the label otto.node. Their node.cpu_percent comes from the test seam
 * OTTO_TEST_METRICS_DIR (src/agent/metrics/node-metrics.ts), so the machine's real load decides nothing.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterStatus } from '../src/http/schemas.js';
import { containersOf, otto, waitFor, TEST_IMAGE } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

const RULE = 'node.cpu_percent < 85 for 2s';

const config = (flags: string) => `metrics: { interval: 1s }
nodes:
  - { id: a, host: localhost, labels: { zone: x } }
  - { id: b, host: localhost, labels: { zone: y } }
services:
  - name: web
    image: ${TEST_IMAGE}
    command: ["httpd", "-f", "-p", "8080"]
    init: true
    update: { monitor: 1s }
    stop_grace_period: 1s
  # Only zone x may run it: b is not eligible; its rule only reports (action alert).
  - name: wall
    image: ${TEST_IMAGE}
    command: ["sleep", "3600"]
    init: true
    placement: { constraints: ["zone == x"] }
    nfr: { rules: ["${RULE}"], action: alert }
    stop_grace_period: 1s
  # A move of it runs 3 s at least (its monitor): long enough to see in status.
  - name: pair
    image: ${TEST_IMAGE}
    command: ["sleep", "3600"]
    init: true
    replicas: 2
    update: { monitor: 3s }
    stop_grace_period: 1s
  # Starts once: a second copy finds the marker its first copy left in the shared folder and exits.
  - name: fragile
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "[ -e /flags/started ] && exit 1; touch /flags/started; exec sleep 3600"]
    init: true
    volumes: ["${flags}:/flags"]
    update: { monitor: 1s }
    stop_grace_period: 1s
`;

describe('migration commands with two real agents', () => {
  let c: TestCluster;
  let metricsDir: string;
  const feed = (node: string, cpu: number) => writeFileSync(join(metricsDir, `${node}.json`), JSON.stringify({ cpu_percent: cpu }));
  const copiesOf = async (service: string) =>
    (await containersOf(c.name)).filter((x) => x.Labels['otto.service'] === service).map((x) => ({ id: x.Id, node: x.Labels['otto.node']!, replica: Number(x.Labels['otto.replica']) }));
  const nodeOf = (status: ClusterStatus, service: string, replica: number) => status.services.find((s) => s.name === service)!.replicas.find((r) => r.replica === replica)!.node;
  const other = (node: string) => (node === 'a' ? 'b' : 'a');
  /** Until no operation runs or waits. */
  const settled = () => waitFor('no operation under way', async () => {
    const s = await c.status();
    return !s.operation && s.queue.length === 0 && s;
  }, 60_000, 300);

  beforeAll(async () => {
    c = await createCluster('mvcli', '');
    metricsDir = join(c.dir, 'metrics');
    mkdirSync(metricsDir);
    feed('a', 10);
    feed('b', 10);
    const flags = join(c.dir, 'flags');
    mkdirSync(flags);
    c.writeConfig(config(flags));
    const started = await otto(['cluster', 'start', '--detach'], { cwd: c.dir, env: { OTTO_TEST_METRICS_DIR: metricsDir } });
    expect(started.code, started.stderr).toBe(0);
    await waitFor('every replica running, both nodes reporting metrics', async () => {
      const s = await c.status();
      return s.services.every((v) => v.running === v.desired) && s.nodes.every((n) => n.state === 'online' && n.metrics) && s;
    }, 90_000);
  }, 120_000);

  afterAll(async () => {
    await c?.destroy();
  }, 60_000);

  it('cluster plan on a quiet cluster: nothing to move, in text and JSON', async () => {
    const plan = await c.run('cluster', 'plan');
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toBe('migration: mode auto, strategy least-loaded\n\nnothing to move\n');
    const json = await c.run('cluster', 'plan', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ mode: 'auto', strategy: 'least-loaded', violations: [], nfr: [], rebalance: [] });
  });

  it('refuses a move of an unknown service or node, a replica out of range, an ineligible target: one line, a hint, exit 1', async () => {
    const status = await c.status();
    const webNode = nodeOf(status, 'web', 1);
    const cases: [string[], RegExp, RegExp][] = [
      [['nope', '--replica', '1', '--to', 'b'], /^otto: no such service: nope$/, /^hint: services: web, wall, pair, fragile$/],
      [['web', '--replica', '3', '--to', 'b'], /^otto: web has no replica 3$/, /^hint: its replicas: 1 /],
      [['web', '--replica', 'first', '--to', 'b'], /^otto: --replica: expected a replica number \(1, 2, \.\.\.\), got "first"$/, /^hint: see `otto service ps web`/],
      [['web', '--replica', '1', '--to', 'c'], /^otto: no such node: c$/, /^hint: nodes: a, b$/],
      [['wall', '--replica', '1', '--to', 'b'], /^otto: cannot move wall#1 to b: b does not match zone == x$/, /^hint: see `otto node ls` and `otto cluster plan`/],
      [['web', '--replica', '1', '--to', webNode], new RegExp(`^otto: web#1 already runs on ${webNode}$`), /^hint: /],
    ];
    for (const [args, message, hint] of cases) {
      const result = await c.run('service', 'move', ...args);
      const lines = result.stderr.trimEnd().split('\n');
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(1);
      expect(lines, args.join(' ')).toHaveLength(2);
      expect(lines[0], args.join(' ')).toMatch(message);
      expect(lines[1], args.join(' ')).toMatch(hint);
      expect(result.stdout).toBe('');
    }
    const missing = await c.run('service', 'move', 'web', '--to', 'b');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("required option '--replica <index>' not specified");
    // Nothing moved.
    expect((await copiesOf('web')).map((x) => x.node)).toEqual([webNode]);
    const elsewhere = mkdtempSync(join(tmpdir(), 'otto-mvcli-none-'));
    const notRunning = await otto(['cluster', 'plan'], { cwd: elsewhere });
    expect(notRunning.code).toBe(2);
    expect(notRunning.stderr).toBe('otto: cluster is not running\nhint: start it with `otto cluster start`\n');
  });

  it('service move starts replica 1 on the other node, then removes the old copy', async () => {
    const [before] = await copiesOf('web');
    const to = other(before!.node);
    // Docker's view every ~100 ms while the command runs.
    const seen: { id: string; node: string }[][] = [];
    let moving = true;
    const sampler = (async () => {
      while (moving) {
        seen.push(await copiesOf('web'));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const moved = await c.run('service', 'move', 'web', '--replica', '1', '--to', to);
    moving = false;
    await sampler;
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toContain(`web#1 moving from ${before!.node} to ${to}: `);
    expect(moved.stdout.trimEnd().split('\n').at(-1)).toBe(`moved 1 of 1: web#1 ${before!.node} -> ${to}`);

    // Now one copy, a new container, on the target; the old one is gone (not even stopped).
    const after = await copiesOf('web');
    expect(after).toHaveLength(1);
    expect(after[0]!.node).toBe(to);
    expect(after[0]!.id).not.toBe(before!.id);
    expect((await containersOf(c.name, true)).some((x) => x.Id === before!.id)).toBe(false);
    // Start-first: never without a running copy; both ran at once before the old one went.
    expect(seen.length).toBeGreaterThan(5);
    expect(seen.every((copies) => copies.length >= 1)).toBe(true);
    expect(seen.some((copies) => copies.some((x) => x.id === before!.id) && copies.some((x) => x.id === after[0]!.id))).toBe(true);
    const firstWithoutOld = seen.findIndex((copies) => !copies.some((x) => x.id === before!.id));
    if (firstWithoutOld >= 0) expect(seen.slice(firstWithoutOld).every((copies) => copies.some((x) => x.id === after[0]!.id))).toBe(true);

    const ps = await c.run('service', 'ps', 'web');
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout.split('\n')[1]).toMatch(new RegExp(`^${after[0]!.id.slice(0, 12)}\\s+\\S+\\s+${to}\\s+running`));
  }, 60_000);

  it('a move whose new copy fails: exit 2 saying why, the replica still runs where it was', async () => {
    const [original] = await copiesOf('fragile');
    const to = other(original!.node);
    const failed = await c.run('service', 'move', 'fragile', '--replica', '1', '--to', to);
    expect(failed.code, failed.stdout).toBe(2);
    const lines = failed.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^otto: migrate fragile failed: moved 0 of 1; fragile#1 ${original!.node} -> ${to} failed: .+ \\(each stayed where it was\\)$`));
    expect(lines.slice(1)).toEqual(['hint: see `otto service ps fragile` and `otto cluster events`']);
    await waitFor('only the original copy of fragile', async () => {
      const copies = await copiesOf('fragile');
      return copies.length === 1 && copies[0]!.id === original!.id;
    }, 30_000);
  }, 120_000);

  it('shows a move under way in status (migrating i of N) and ps (FROM -> TO); rebalance --dry-run prints the moves back without moving', async () => {
    await settled();
    const status = await c.status();
    const first = nodeOf(status, 'pair', 1);
    const second = nodeOf(status, 'pair', 2);
    expect(second, 'placement spreads pair over both nodes').not.toBe(first);

    // Both replicas of pair onto one node: queued, and watched while its new copy proves itself.
    const queued = await c.run('service', 'move', 'pair', '--replica', '2', '--to', first, '-d');
    expect(queued.code, queued.stderr).toBe(0);
    expect(queued.stdout).toMatch(new RegExp(`^pair#2: move from ${second} to ${first} queued \\(operation \\w+\\)\\n$`));
    const during = await waitFor('the move in cluster status', async () => {
      const text = await c.run('cluster', 'status');
      return /^pair\s+2\s+2\s+\S+\s+\S+ \(migrating 0 of 1\)/m.test(text.stdout) && text.stdout;
    }, 20_000, 100);
    expect(during).toMatch(new RegExp(`^operation: migrate pair 0/1 \\(running\\): pair#2 ${second} -> ${first} (pending|starting)$`, 'm'));
    const ps = await c.run('service', 'ps', 'pair');
    expect(ps.stdout).toMatch(new RegExp(`^\\S+\\s+\\S+-pair-2\\s+${second} -> ${first}\\s`, 'm'));
    await settled();
    expect((await copiesOf('pair')).map((x) => x.node)).toEqual([first, first]);

    const dry = await c.run('cluster', 'rebalance', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    const lines = dry.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SERVICE\s+REPLICA\s+FROM\s+TO\s+REASON$/);
    // pair#2 was just moved (its cooldown): pair#1 goes.
    expect(lines[1]).toMatch(new RegExp(`^pair\\s+1\\s+${first}\\s+${second}\\s+rebalance: pair has 2 replica\\(s\\) on ${first} and 0 on ${second}$`));
    expect(lines.slice(2)).toEqual(['', 'dry run: nothing moved; `otto cluster rebalance` makes this move']);
    const plan = await c.run('cluster', 'plan');
    expect(plan.stdout).toMatch(new RegExp(`^move\\s+pair\\s+1\\s+${first}\\s+${second}\\s+rebalance: `, 'm'));
    expect(plan.stdout).toContain('`otto cluster rebalance` makes the rebalance moves');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await copiesOf('pair')).map((x) => x.node)).toEqual([first, first]);

    const done = await c.run('cluster', 'rebalance');
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout.trimEnd().split('\n').at(-1)).toBe(`moved 1 of 1: pair#1 ${first} -> ${second}`);
    expect((await copiesOf('pair')).map((x) => `${x.replica}@${x.node}`).sort()).toEqual([`1@${second}`, `2@${first}`]);
    const again = await c.run('cluster', 'rebalance', '--dry-run');
    expect(again.stdout).toBe("nothing to move: each service's replicas are spread evenly over the nodes that may run them\n");
  }, 90_000);

  it('lists NFR violations in cluster status, service ps and cluster plan', async () => {
    feed('a', 97);
    try {
      const status = await waitFor('the violation of wall', async () => {
        const text = await c.run('cluster', 'status');
        return /^wall\s+1\s+a\s+node\.cpu_percent < 85 for 2s\s+97\s+\d+s\s+alert$/m.test(text.stdout) && text.stdout;
      }, 30_000, 300);
      expect(status).toMatch(/^SERVICE\s+REPLICA\s+NODE\s+RULE\s+VALUE\s+FOR\s+ACTION$/m);
      const ps = await c.run('service', 'ps', 'wall');
      expect(ps.stdout).toMatch(/^! replica 1 on a violates node\.cpu_percent < 85 for 2s \(97 for \d+s\): action alert$/m);
      const plan = await c.run('cluster', 'plan');
      expect(plan.stdout).toMatch(/^wall\s+1\s+a\s+node\.cpu_percent < 85 for 2s\s+97\s+\d+s\s+alert$/m);
      // Its action is alert: reported, not moved.
      expect(plan.stdout.trimEnd().split('\n').at(-1)).toBe('nothing to move');

      // Status stays fast with violations to show: the answer passes the build's checks, zod never loads.
      const hooks = join(c.dir, 'hooks');
      mkdirSync(hooks);
      const loadedLog = join(hooks, 'loaded.txt');
      writeFileSync(join(hooks, 'log.mjs'), `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) { appendFileSync(${JSON.stringify(loadedLog)}, url + '\\n'); return next(url, context); }\n`);
      writeFileSync(join(hooks, 'register.mjs'), `import { register } from 'node:module';\nregister('./log.mjs', import.meta.url);\n`);
      const watched = await otto(['cluster', 'status'], { cwd: c.dir, env: { NODE_OPTIONS: `--import ${join(hooks, 'register.mjs')}` } });
      expect(watched.code, watched.stderr).toBe(0);
      expect(watched.stdout).toContain('node.cpu_percent < 85 for 2s');
      const files = readFileSync(loadedLog, 'utf8').split('\n').filter((url) => url.startsWith('file:'));
      expect(files.some((url) => url.includes('/dist/cli/'))).toBe(true);
      expect(files.filter((url) => readFileSync(new URL(url), 'utf8').includes('ZodError'))).toEqual([]);
    } finally {
      feed('a', 10);
    }
  }, 60_000);
});
