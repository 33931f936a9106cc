// npm run bench:cli — the CLI's start-up, felt on every command: wall time of a few commands against a bare
// `node -e 0` measured in the same run. The commands that talk to the control plane are timed against a
// running cluster (the example config in a temp dir, its own name and free ports, started with
// `cluster start --detach` and removed with `cluster stop --down` at the end).
//
//   node scripts/bench-cli.mjs     BENCH_RUNS=15: runs of each command (medians are printed);
//                                  BENCH_CLI=path/to/main.js: another build of the CLI, to compare with
//
// The runs are interleaved (one of each command per round), so a busy moment of the machine weighs on
// every command alike, the baseline included.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const cli = process.env.BENCH_CLI ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const example = readFileSync(fileURLToPath(new URL('../examples/otto.yaml', import.meta.url)), 'utf8');

const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

/** The example config, with a name and ports of its own: a cluster already running here is left alone. */
async function benchConfig() {
  const replace = (text, from, to) => {
    if (!text.includes(from)) throw new Error(`examples/otto.yaml changed: "${from}" not found; update scripts/bench-cli.mjs`);
    return text.replace(from, to);
  };
  let text = replace(example, 'name: demo', `name: benchcli${process.pid}`);
  text = replace(text, 'host: localhost\n  port: 1883', `host: 127.0.0.1\n  port: ${await freePort()}`);
  text = replace(text, '"8080:80"', `"127.0.0.1:${await freePort()}:80"`);
  return `${text}\nhttp:\n  port: ${await freePort()}\n`;
}

const dir = mkdtempSync(join(tmpdir(), 'otto-bench-cli-'));
writeFileSync(join(dir, 'otto.yaml'), await benchConfig());
const otto = (...args) => execFileSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function runOnce(args) {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${args.slice(1).join(' ')} exited ${result.status}: ${result.stderr}`);
  return ms;
}

/** Median and min of each case, one run of every case per round. */
function measure(cases) {
  const samples = cases.map(() => []);
  for (const [, args] of cases) runOnce(args); // warm the file system cache
  for (let round = 0; round < RUNS; round++) cases.forEach(([, args], i) => samples[i].push(runOnce(args)));
  return cases.map(([name, , target], i) => {
    const sorted = samples[i].sort((a, b) => a - b);
    return { name, target, median: sorted[Math.floor(sorted.length / 2)], min: sorted[0] };
  });
}

/** Status is timed as users see it: the node online, its replicas running and reporting metrics. */
async function waitUntilRunning() {
  for (let i = 0; i < 120; i++) {
    const status = JSON.parse(otto('cluster', 'status', '--json'));
    if (status.nodes.every((n) => n.online && n.metrics) && status.services.every((s) => s.running === s.desired)) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error('the bench cluster did not get its services running within 60 s');
}

const baseline = ['node -e 0', ['-e', '0']];
const command = (name, target) => [`otto ${name}`, [cli, ...name.split(' ')], target];

function print(title, [base, ...rows]) {
  console.log(`\n${title}`);
  console.log(`  ${'command'.padEnd(30)}${'median'.padStart(8)}${'min'.padStart(8)}${'over node'.padStart(11)}   target`);
  for (const r of [base, ...rows]) {
    const over = r === base ? '' : `+${(r.median - base.median).toFixed(0)} ms`;
    const target = r.target === undefined ? '' : `<= ${r.target} ms: ${r.median <= r.target ? 'ok' : 'MISSED'}`;
    console.log(`  ${r.name.padEnd(30)}${`${r.median.toFixed(0)} ms`.padStart(8)}${`${r.min.toFixed(0)} ms`.padStart(8)}${over.padStart(11)}   ${target}`);
  }
}

let started = false;
try {
  otto('cluster', 'init');
  const stopped = measure([baseline, command('--version', 100), command('--help', 100), command('config validate'), command('cluster status')]);
  started = true; // from here on, `cluster stop --down` cleans up, even after a start that failed half-way
  otto('cluster', 'start', '--detach');
  await waitUntilRunning();
  const running = measure([baseline, command('cluster status', 150), command('cluster status --json'), command('service ls'), command('node ls')]);
  console.log(`otto CLI start-up: wall time, median of ${RUNS} interleaved runs (Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model.trim() ?? 'cpu'})`);
  print('cluster initialized, not running:', stopped);
  print('cluster running (one local node, two services):', running);
} finally {
  if (started) {
    try {
      otto('cluster', 'stop', '--down');
    } catch (err) {
      console.error(`could not stop the bench cluster in ${dir}: ${err.stderr ?? err.message}`);
      process.exitCode = 2;
    }
  }
  if (process.exitCode !== 2) rmSync(dir, { recursive: true, force: true });
}
