// npm run bench:deploy — how fast Otto deploys, against what the Docker engine itself can do:
//   floor:   20 `docker run -d` started in parallel (the same image and command), wall time until all returned;
//   scale:   `otto service scale idle=20` from 1 replica, wall time until the command says done (all 20 running);
//   rolling: `otto service restart idle --rolling` of 5 replicas (parallelism 1, monitor 1s, a workload that
//            exits at once on SIGTERM): its floor is 5 x monitor = 5 s plus 5 stop+create+start.
// Target: scale <= 1.3x floor. Each figure is the median of ROUNDS runs. Real cluster, real Docker; cleans up.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const COUNT = 20;
const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const COMMAND = ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1; done'];
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

const label = `otto-bench-deploy=${process.pid}`;
const removeFloorContainers = () => {
  const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=${label}`], { encoding: 'utf8' }).split('\n').filter(Boolean);
  if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
};

async function floorRound() {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: COUNT }, (_, i) => run('docker', ['run', '-d', '--label', label, '--name', `otto-bench-floor-${process.pid}-${i}`, 'otto-test/busybox', ...COMMAND])),
  );
  const ms = performance.now() - started;
  removeFloorContainers();
  return ms;
}

const dir = mkdtempSync(join(tmpdir(), 'otto-bench-deploy-'));
const cluster = `benchdeploy${process.pid}`;
writeFileSync(
  join(dir, 'otto.yaml'),
  `cluster: { name: ${cluster} }
mqtt: { host: 127.0.0.1, port: ${await freePort()} }
http: { port: ${await freePort()} }
metrics: { interval: 2s }
control: { interval: 2s }
nodes:
  - { id: local, host: localhost }
services:
  - name: idle
    image: otto-test/busybox
    command: ${JSON.stringify(COMMAND)}
    replicas: 1
    stop_grace_period: 2s
    update: { parallelism: 1, monitor: 1s }
`,
);
const otto = async (...args) => {
  const started = performance.now();
  const { stdout } = await run(process.execPath, [cli, ...args], { cwd: dir });
  return { ms: performance.now() - started, stdout };
};

try {
  const floor = [];
  const scale = [];
  const rolling = [];
  for (let round = 0; round < ROUNDS; round++) floor.push(await floorRound());
  await otto('cluster', 'start', '--detach');
  await otto('service', 'scale', 'idle=1');
  for (let round = 0; round < ROUNDS; round++) {
    scale.push((await otto('service', 'scale', `idle=${COUNT}`)).ms);
    await otto('service', 'scale', 'idle=5');
    await sleep(1_000);
    rolling.push((await otto('service', 'restart', 'idle', '--rolling')).ms);
    await otto('service', 'scale', 'idle=1');
    await sleep(1_000);
  }
  const f = median(floor);
  const s = median(scale);
  const r = median(rolling);
  const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`machine: ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores, Docker ${execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8' }).trim()}; median of ${ROUNDS}`);
  console.log(`floor   ${COUNT} parallel docker run -d        ${fmt(f)}   (runs: ${floor.map(fmt).join(', ')})`);
  console.log(`scale   otto service scale idle=1->${COUNT}        ${fmt(s)}   (runs: ${scale.map(fmt).join(', ')})  = ${(s / f).toFixed(2)}x floor (target <= 1.3x)`);
  console.log(`rolling otto service restart --rolling of 5  ${fmt(r)}   (runs: ${rolling.map(fmt).join(', ')})  floor 5 x monitor 1s = 5.00 s + 5 replacements`);
} finally {
  await otto('cluster', 'stop', '--down').catch(() => undefined);
  removeFloorContainers();
}
