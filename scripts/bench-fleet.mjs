#!/usr/bin/env node
// npm run bench:fleet -- --nodes N --interval 1s|5s [--duration S] [--processes P] [--replicas-per-node R] [--others C]
//                        [--skip-floor | --floor-only] [--profile DIR]
//
// A real control plane (`otto cluster start --detach`, embedded broker) with N nodes declared in a generated
// otto.yaml, and N simulated agents (test/support/sim-fleet: one light MQTT connection per node, with the
// node's own credential and client id) in P child processes. Each node publishes node metrics, container
// metrics (its replicas and C other containers) and its state every interval, says online with a last
// will, and reports every replica of its desired state running at the desired spec hash (no Docker).
// The nodes are local hosts without an SSH user; OTTO_SIMULATED_AGENTS=1 keeps the control plane from
// starting real agents for them. Services: groups of 100 nodes (a `group` label), one service per group
// and R replicas per node.
//
// Prints messages/s ingested, control-plane CPU and RSS, broker connections, status staleness p50/p99
// (now minus the timestamp of each node's metrics in GET /api/v1/status), GET /api/v1/status and
// `otto cluster status --json` latency, time until all N are online, time to detect 1 % killed, then
// the same fleet against a bare aedes broker with one wildcard subscriber (the raw floor).
import { execFile, execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { build } from 'esbuild';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    interval: { type: 'string', default: '5s' },
    duration: { type: 'string', default: '60' },
    processes: { type: 'string', default: String(Math.max(1, cpus().length)) },
    'replicas-per-node': { type: 'string', default: '1' },
    others: { type: 'string', default: '2' },
    'skip-floor': { type: 'boolean', default: false },
    'floor-only': { type: 'boolean', default: false },
    /** Writes a CPU profile of the control plane (node --cpu-prof) into this folder. */
    profile: { type: 'string' },
  },
});
const N = Number(values.nodes);
const intervalMs = /^(\d+)(ms|s)$/.test(values.interval) ? Number(/^\d+/.exec(values.interval)[0]) * (values.interval.endsWith('ms') ? 1 : 1000) : NaN;
if (!Number.isInteger(N) || N < 1 || !(intervalMs >= 100)) {
  console.error('usage: npm run bench:fleet -- --nodes N --interval 1s|5s [--duration S] [--processes P]');
  process.exit(1);
}
const DURATION_S = Number(values.duration);
const PROCESSES = Math.min(N, Number(values.processes));
const REPLICAS_PER_NODE = Number(values['replicas-per-node']);
const OTHERS = Number(values.others);
const GROUP = 100;
const cluster = `fleet${process.pid}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
const freePort = () =>
  new Promise((resolvePort) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
const percentile = (values, p) => {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))];
};
const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const seconds = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : '–');

// ---- processes and the kernel's view -------------------------------------------------------------------

function procSample(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
    return { at: Date.now(), ticks: Number(fields[11]) + Number(fields[12]), rssMb: rssKb / 1024 };
  } catch {
    return undefined;
  }
}

/** CPU (% of one core) and RSS of processes, sampled every second while measuring. */
class ProcessMeter {
  constructor(pids) {
    this.pids = pids;
    this.first = pids.map(procSample);
    this.rss = [];
    this.timer = setInterval(() => this.rss.push(this.pids.map((pid) => procSample(pid)?.rssMb ?? 0).reduce((a, b) => a + b, 0)), 1000);
  }

  stop() {
    clearInterval(this.timer);
    const last = this.pids.map(procSample);
    let ticks = 0;
    let ms = 0;
    last.forEach((sample, i) => {
      if (!sample || !this.first[i]) return;
      ticks += sample.ticks - this.first[i].ticks;
      ms = Math.max(ms, sample.at - this.first[i].at);
    });
    return { cpu: (ticks / ticksPerSecond / (ms / 1000)) * 100, rssMean: this.rss.reduce((a, b) => a + b, 0) / this.rss.length, rssMax: Math.max(...this.rss) };
  }
}

/** Established TCP connections whose local port is the broker's (its side of every client). */
function brokerConnections(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '01' && cols[1]?.endsWith(`:${hexPort}`)) count++;
    }
  }
  return count;
}

// ---- the simulated fleet, in child processes ------------------------------------------------------------

function ask(child, message, reply) {
  return new Promise((resolveAnswer, reject) => {
    const onMessage = (answer) => {
      if (answer.type !== reply) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolveAnswer(answer);
    };
    const onExit = (code) => reject(new Error(`a simulator process exited (${code})`));
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send(message);
  });
}

class Fleet {
  constructor(workerFile, nodes, options) {
    this.shares = Array.from({ length: PROCESSES }, (_, i) => nodes.filter((_, j) => j % PROCESSES === i));
    this.children = this.shares.map(() => fork(workerFile, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=2048'] }));
    this.options = options;
  }

  get pids() {
    return this.children.map((c) => c.pid);
  }

  async start() {
    await Promise.all(this.children.map((child, i) => ask(child, { type: 'start', options: { ...this.options, nodes: this.shares[i] } }, 'started')));
  }

  async stats() {
    const all = (await Promise.all(this.children.map((child) => ask(child, { type: 'stats' }, 'stats')))).map((a) => a.stats);
    const sum = (key) => all.reduce((s, x) => s + (x[key] ?? 0), 0);
    const allConnectedAt = all.every((x) => x.allConnectedAt) ? Math.max(...all.map((x) => x.allConnectedAt)) : undefined;
    return { connected: sum('connected'), everConnected: sum('everConnected'), published: sum('published'), dropped: sum('dropped'), refused: sum('refused'), desiredReceived: sum('desiredReceived'), reconnects: sum('reconnects'), allConnectedAt };
  }

  async kill(ids) {
    const set = new Set(ids);
    await Promise.all(this.children.map((child, i) => ask(child, { type: 'kill', ids: this.shares[i].map((n) => n.id).filter((id) => set.has(id)) }, 'killed')));
  }

  async stop() {
    await Promise.all(this.children.map((child) => ask(child, { type: 'stop' }, 'stopped').catch(() => undefined)));
  }
}

// ---- the control plane run ------------------------------------------------------------------------------

function fleetConfig(mqttPort, httpPort) {
  const groups = Math.ceil(N / GROUP);
  const lines = [
    `cluster: { name: ${cluster} }`,
    `mqtt: { host: 127.0.0.1, port: ${mqttPort} }`,
    `http: { port: ${httpPort} }`,
    `metrics: { interval: ${values.interval} }`,
    'nodes:',
  ];
  for (let i = 0; i < N; i++) lines.push(`  - { id: n${String(i + 1).padStart(5, '0')}, host: 127.0.0.1, labels: { group: g${Math.floor(i / GROUP)} } }`);
  lines.push('services:');
  for (let g = 0; g < groups; g++) {
    const size = Math.min(GROUP, N - g * GROUP);
    lines.push(`  - { name: s${g}, image: otto-test/busybox, command: sleep 86400, replicas: ${Math.min(100, size * REPLICAS_PER_NODE)}, placement: { constraints: ["group == g${g}"] } }`);
  }
  return `${lines.join('\n')}\n`;
}

async function timed(fn) {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

async function controlPlaneRun(workerFile) {
  const dir = mkdtempSync(join(tmpdir(), 'otto-bench-fleet-'));
  const mqttPort = await freePort();
  const httpPort = await freePort();
  writeFileSync(join(dir, 'otto.yaml'), fleetConfig(mqttPort, httpPort));
  const env = { ...process.env, OTTO_SIMULATED_AGENTS: '1' };
  const otto = (...args) => run(process.execPath, [cli, ...args], { cwd: dir, env, maxBuffer: 1 << 30 });
  const result = { dir };
  let fleet;
  try {
    result.validateMs = (await timed(() => otto('config', 'validate'))).ms;
    result.initMs = (await timed(() => otto('cluster', 'init'))).ms;
    const credentials = JSON.parse(readFileSync(join(dir, '.otto', 'credentials.json'), 'utf8'));
    const passwordOf = (id) => credentials.nodes?.[id]?.password ?? credentials[id]?.password ?? credentials[id];
    const nodes = Array.from({ length: N }, (_, i) => `n${String(i + 1).padStart(5, '0')}`).map((id) => ({ id, password: passwordOf(id) }));
    if (typeof nodes[0].password !== 'string') throw new Error('cannot read the node credentials in .otto/credentials.json');
    const token = readFileSync(join(dir, '.otto', 'token'), 'utf8').trim();
    const apiUrl = `http://127.0.0.1:${httpPort}`;

    const t0 = Date.now();
    result.startMs = (await timed(() => (values.profile ? startProfiled(dir, env) : otto('cluster', 'start', '--detach')))).ms;
    const cpPid = JSON.parse(readFileSync(join(dir, '.otto', 'control-plane.json'), 'utf8')).pid;
    fleet = new Fleet(workerFile, nodes, { host: '127.0.0.1', port: mqttPort, cluster, intervalMs, otherContainers: OTHERS });
    await fleet.start();

    const getStatus = async () => {
      const started = performance.now();
      const response = await fetch(`${apiUrl}/api/v1/status`, { headers: { authorization: `Bearer ${token}` } });
      const text = await response.text();
      const at = Date.now();
      const ms = performance.now() - started;
      if (!response.ok) throw new Error(`GET /api/v1/status: ${response.status} ${text.slice(0, 200)}`);
      return { ms, at, bytes: text.length, status: JSON.parse(text) };
    };

    // Until every node is online (and runs what it must).
    const deadline = Date.now() + Math.max(120_000, N * 30);
    let online = 0;
    for (;;) {
      const { status } = await getStatus();
      online = status.nodes.filter((n) => n.state === 'online').length;
      if (online === N) break;
      if (Date.now() > deadline) throw new Error(`only ${online}/${N} nodes online after ${seconds(Date.now() - t0)}`);
      await sleep(1000);
    }
    result.onlineMs = Date.now() - t0;
    result.connectedMs = ((await fleet.stats()).allConnectedAt ?? NaN) - t0;
    const settle = await waitRunning(getStatus, Date.now() + 120_000);
    result.runningMs = Date.now() - t0;
    result.replicas = settle;
    await sleep(Math.min(10_000, 2 * intervalMs));

    // Steady state.
    const meter = new ProcessMeter([cpPid]);
    const simMeter = new ProcessMeter(fleet.pids);
    const before = { at: Date.now(), ...(await fleet.stats()) };
    const ages = [];
    const apiMs = [];
    let first;
    let last;
    let bytes = 0;
    let missing = 0;
    const end = Date.now() + DURATION_S * 1000;
    let cliRuns = [];
    const connections = [];
    while (Date.now() < end) {
      const sample = await getStatus();
      apiMs.push(sample.ms);
      bytes = sample.bytes;
      first ??= sample;
      last = sample;
      for (const node of sample.status.nodes) {
        if (node.metrics) ages.push(sample.at - Date.parse(node.metrics.timestamp));
        else missing++;
      }
      connections.push(brokerConnections(mqttPort));
      if (cliRuns.length < 5) cliRuns.push((await timed(() => otto('cluster', 'status', '--json'))).ms);
      await sleep(1000);
    }
    const cp = meter.stop();
    const after = { at: Date.now(), ...(await fleet.stats()) };
    // A heap snapshot of the steady state, for `--profile` (the control plane writes it on SIGUSR2).
    if (values.profile && process.env.BENCH_HEAP_SNAPSHOT === '1') {
      process.kill(cpPid, 'SIGUSR2');
      await sleep(5000 + N * 5);
    }
    const sims = simMeter.stop();
    const span = (last.at - first.at) / 1000;
    result.steady = {
      ingested: (last.status.counters.messages_received - first.status.counters.messages_received) / span,
      invalid: last.status.counters.invalid_messages,
      published: (after.published - before.published) / ((after.at - before.at) / 1000),
      dropped: after.dropped - before.dropped,
      cpu: cp.cpu,
      rssMean: cp.rssMean,
      rssMax: cp.rssMax,
      simCpu: sims.cpu,
      connections: Math.round(connections.reduce((a, b) => a + b, 0) / connections.length),
      staleP50: percentile(ages, 0.5),
      staleP99: percentile(ages, 0.99),
      missing,
      apiP50: percentile(apiMs, 0.5),
      apiMax: Math.max(...apiMs),
      statusMb: bytes / 1024 / 1024,
      cliMedian: percentile(cliRuns, 0.5),
      cliMax: Math.max(...cliRuns),
    };

    // 1 % killed abruptly: how long until the status says so.
    const killed = nodes.filter((_, i) => i % 100 === 50 || (N < 100 && i === 0)).map((n) => n.id);
    const killedSet = new Set(killed);
    const killedAt = Date.now();
    await fleet.kill(killed);
    for (;;) {
      const { status } = await getStatus();
      const seen = status.nodes.filter((n) => killedSet.has(n.id) && n.state !== 'online').length;
      if (seen === killed.length) break;
      if (Date.now() - killedAt > 120_000) throw new Error(`only ${seen}/${killed.length} killed nodes detected after 120 s`);
      await sleep(100);
    }
    result.killed = killed.length;
    result.detectMs = Date.now() - killedAt;
    return result;
  } catch (err) {
    const log = join(dir, '.otto', 'logs', 'control-plane.log');
    try {
      console.error(`control-plane log (last lines):\n${readFileSync(log, 'utf8').trim().split('\n').slice(-15).join('\n')}`);
    } catch {
      // no log
    }
    if (fleet) console.error(`simulators: ${JSON.stringify(await fleet.stats().catch(() => ({})))}`);
    throw err;
  } finally {
    await fleet?.stop();
    await otto('cluster', 'stop').catch((err) => console.error(`cluster stop: ${err.message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The control plane in the foreground under `node --cpu-prof` (NODE_OPTIONS may not carry it); ready once its API answers. */
async function startProfiled(dir, env) {
  const { spawn } = await import('node:child_process');
  const flags = [`--cpu-prof`, `--cpu-prof-dir=${resolve(values.profile)}`, `--diagnostic-dir=${resolve(values.profile)}`, '--heapsnapshot-signal=SIGUSR2'];
  const { mkdirSync, openSync } = await import('node:fs');
  mkdirSync(join(dir, '.otto', 'logs'), { recursive: true });
  const log = openSync(join(dir, '.otto', 'logs', 'control-plane.log'), 'a', 0o600);
  const child = spawn(process.execPath, [...flags, cli, 'control-plane', '-c', 'otto.yaml'], { cwd: dir, env: { ...env, OTTO_LOG_PRETTY: '1' }, stdio: ['ignore', log, log], detached: true });
  child.unref();
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    try {
      const info = JSON.parse(readFileSync(join(dir, '.otto', 'control-plane.json'), 'utf8'));
      if (info.pid === child.pid && (await fetch(`${info.api_url}/healthz`)).ok) return;
    } catch {
      // not yet
    }
  }
  throw new Error('the profiled control plane did not start');
}

/** Every service reports all its replicas running (the simulated agents obeyed their desired states). */
async function waitRunning(getStatus, deadline) {
  for (;;) {
    const { status } = await getStatus();
    const desired = status.services.reduce((s, x) => s + x.desired, 0);
    const running = status.services.reduce((s, x) => s + x.running, 0);
    if (running === desired) return { desired, running };
    if (Date.now() > deadline) return { desired, running };
    await sleep(1000);
  }
}

// ---- the raw floor --------------------------------------------------------------------------------------

async function floorRun(workerFile, brokerFile) {
  const port = await freePort();
  const broker = fork(brokerFile, [String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((ready, fail) => {
    broker.once('message', ready);
    broker.once('exit', (code) => fail(new Error(`the bare broker exited (${code})`)));
  });
  const nodes = Array.from({ length: N }, (_, i) => ({ id: `n${String(i + 1).padStart(5, '0')}`, password: 'floor' }));
  const fleet = new Fleet(workerFile, nodes, { host: '127.0.0.1', port, cluster, intervalMs, otherContainers: OTHERS });
  try {
    const t0 = Date.now();
    await fleet.start();
    let stats;
    for (;;) {
      stats = await fleet.stats();
      if (stats.allConnectedAt) break;
      if (Date.now() - t0 > 120_000) throw new Error(`only ${stats.everConnected}/${N} connected to the bare broker`);
      await sleep(200);
    }
    const connectedMs = stats.allConnectedAt - t0;
    await sleep(Math.min(10_000, 2 * intervalMs));
    const meter = new ProcessMeter([broker.pid]);
    const first = { at: Date.now(), ...(await ask(broker, { type: 'stats' }, 'stats')) };
    const connections = [];
    const end = Date.now() + Math.min(DURATION_S, 30) * 1000;
    while (Date.now() < end) {
      connections.push(brokerConnections(port));
      await sleep(1000);
    }
    const last = { at: Date.now(), ...(await ask(broker, { type: 'stats' }, 'stats')) };
    const usage = meter.stop();
    return {
      connectedMs,
      ingested: (last.received - first.received) / ((last.at - first.at) / 1000),
      cpu: usage.cpu,
      rssMean: usage.rssMean,
      rssMax: usage.rssMax,
      connections: Math.round(connections.reduce((a, b) => a + b, 0) / connections.length),
    };
  } finally {
    await fleet.stop();
    await ask(broker, { type: 'stop' }, 'never').catch(() => undefined);
  }
}

// ---- main -----------------------------------------------------------------------------------------------

const cacheDir = join(root, 'node_modules', '.cache', 'otto-bench-fleet');
await build({
  entryPoints: { 'sim-worker': join(root, 'test/support/sim-fleet/sim-worker.ts'), 'bare-broker': join(root, 'test/support/sim-fleet/bare-broker.ts') },
  outdir: cacheDir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});
const workerFile = join(cacheDir, 'sim-worker.mjs');
const brokerFile = join(cacheDir, 'bare-broker.mjs');

const machine = `${cpus().length} x ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}`;
console.log(`fleet: ${N} nodes, metrics every ${values.interval}, ${PROCESSES} simulator process(es), ${REPLICAS_PER_NODE} replica(s) + ${OTHERS} other container(s) a node; ${machine}`);
const expected = (N * 3 * 1000) / intervalMs;
if (values['floor-only']) {
  const floor = await floorRun(workerFile, brokerFile);
  console.log(`raw floor: ${fmt(floor.ingested)} messages/s, CPU ${fmt(floor.cpu)} %, RSS ${fmt(floor.rssMean)} / ${fmt(floor.rssMax)} MB, ${floor.connections} connections, all connected after ${seconds(floor.connectedMs)}`);
  process.exit(0);
}
const cp = await controlPlaneRun(workerFile);
const floor = values['skip-floor'] ? undefined : await floorRun(workerFile, brokerFile);
const s = cp.steady;
const row = (label, a, b = '') => console.log(`${label.padEnd(36)}${String(a).padEnd(30)}${b}`);
console.log('');
row('', 'control plane', floor ? 'raw floor (bare aedes + 1 subscriber)' : '');
row('messages/s ingested', `${fmt(s.ingested)} (sent ${fmt(s.published)}, expected ${fmt(expected)})`, floor ? fmt(floor.ingested) : '');
row('CPU (% of one core)', fmt(s.cpu), floor ? fmt(floor.cpu) : '');
row('RSS (MB) mean / max', `${fmt(s.rssMean)} / ${fmt(s.rssMax)}`, floor ? `${fmt(floor.rssMean)} / ${fmt(floor.rssMax)}` : '');
row('broker connections', s.connections, floor ? floor.connections : '');
row('all connected after start', seconds(cp.connectedMs), floor ? seconds(floor.connectedMs) : '');
row('all online in status after start', seconds(cp.onlineMs));
row('replicas running', `${cp.replicas.running}/${cp.replicas.desired} after ${seconds(cp.runningMs)}`);
row('status staleness p50 / p99', `${seconds(s.staleP50)} / ${seconds(s.staleP99)}${s.missing ? ` (${s.missing} without metrics)` : ''}`);
row('GET /api/v1/status p50 / max', `${fmt(s.apiP50)} / ${fmt(s.apiMax)} ms (${fmt(s.statusMb, 1)} MB)`);
row('otto cluster status --json', `${fmt(s.cliMedian)} / ${fmt(s.cliMax)} ms (median / max)`);
row(`detect ${cp.killed} killed (1 %)`, seconds(cp.detectMs));
row('config validate / cluster init', `${fmt(cp.validateMs)} / ${fmt(cp.initMs)} ms`);
row('cluster start --detach', `${fmt(cp.startMs)} ms`);
row('simulators CPU (% of one core)', fmt(s.simCpu));
row('invalid messages / dropped by sims', `${s.invalid} / ${s.dropped}`);
console.log('');
const targets = [
  ['staleness p99 <= 2 intervals', s.staleP99 <= 2 * intervalMs],
  ['control-plane RSS <= 1 GB', s.rssMax <= 1024],
  ['status API <= 1 s', s.apiMax <= 1000],
  ['all messages ingested (>= 95 % of expected)', s.ingested >= 0.95 * expected],
];
console.log(`targets: ${targets.map(([what, ok]) => `${what} ${ok ? 'OK' : 'MISSED'}`).join('; ')}`);
