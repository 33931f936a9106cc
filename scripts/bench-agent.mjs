// npm run bench:agent — the agent's budget on a Pi: RSS and CPU while idle with 20 containers, and the
// time one container metrics cycle takes for them. Targets (issue 10): RSS <= 50 MB, idle CPU <= 1 % of a
// core at a 5 s interval, a metrics cycle <= 5 ms a container. Prints, from the same run, the RSS of a bare
// `node` process started with the agent's Node.js flags: the floor no JavaScript program goes under.
// Runs a real cluster (embedded broker, real Docker, image otto-test/busybox) and removes it afterwards. The
// broker listens beyond this machine, so the agent speaks MQTT over TLS as a remote node's does
// (BENCH_PLAIN_MQTT=1: plain MQTT, as a local agent), and it is started with the flags and environment every
// agent gets.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_ENV } from '../dist/agent/bundle.js';

const CONTAINERS = Number(process.env.BENCH_CONTAINERS ?? 20);
const SETTLE_S = 10;
const MEASURE_S = Number(process.env.BENCH_SECONDS ?? 60);
const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

const dir = mkdtempSync(join(tmpdir(), 'otto-bench-'));
const cluster = `bench${process.pid}`;
writeFileSync(
  join(dir, 'otto.yaml'),
  `cluster: { name: ${cluster} }
mqtt: { host: ${process.env.BENCH_PLAIN_MQTT ? '127.0.0.1' : '0.0.0.0'}, port: ${await freePort()} }
http: { port: ${await freePort()} }
metrics: { interval: 5s }
nodes:
  - { id: local, host: localhost }
services:
  - name: idle
    image: otto-test/busybox
    command: sleep 86400
    replicas: ${CONTAINERS}
`,
);
const otto = (...args) => execFileSync(process.execPath, [cli, ...args], { cwd: dir, env: { ...process.env, OTTO_LOG_LEVEL: 'debug' }, encoding: 'utf8' });
const status = () => JSON.parse(otto('cluster', 'status', '--json'));

function sampleProcess(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  return { cpuTicks, rssMb: rssKb / 1024 };
}

/** RSS of `node` with the agent's flags and environment, doing nothing, sampled like the agent (the mean over a few seconds). */
async function bareNodeRssMb(flags) {
  const child = spawn(process.execPath, [...flags, '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', env: { ...process.env, ...AGENT_ENV } });
  try {
    await sleep(2000);
    const samples = [];
    for (let i = 0; i < 5; i++, await sleep(500)) samples.push(sampleProcess(child.pid).rssMb);
    return samples.reduce((a, b) => a + b, 0) / samples.length;
  } finally {
    child.kill();
  }
}

const stats = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { mean, p95: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))], max: sorted.at(-1) };
};

try {
  console.log(`starting a cluster with ${CONTAINERS} containers in ${dir} ...`);
  otto('cluster', 'start', '--detach');
  let agentPid;
  for (let i = 0; i < 120; i++) {
    const s = status();
    if (s.services[0]?.running === CONTAINERS && s.nodes[0]?.agent_pid) {
      agentPid = s.nodes[0].agent_pid;
      break;
    }
    await sleep(1000);
  }
  if (!agentPid) throw new Error(`the ${CONTAINERS} containers did not start within 120 s`);
  console.log(`agent pid ${agentPid}; settling ${SETTLE_S} s, then measuring ${MEASURE_S} s idle`);
  await sleep(SETTLE_S * 1000);

  const logPath = join(dir, '.otto', 'logs', 'control-plane.log');
  const logOffset = readFileSync(logPath, 'utf8').length;
  const first = sampleProcess(agentPid);
  const rss = [first.rssMb];
  const startedAt = Date.now();
  while (Date.now() - startedAt < MEASURE_S * 1000) {
    await sleep(1000);
    rss.push(sampleProcess(agentPid).rssMb);
  }
  const last = sampleProcess(agentPid);
  const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  const cpuPercent = ((last.cpuTicks - first.cpuTicks) / ticksPerSecond / ((Date.now() - startedAt) / 1000)) * 100;
  // The engine may run other containers too (the agent measures all it lists): time per container listed.
  const cycles = [...readFileSync(logPath, 'utf8').slice(logOffset).matchAll(/container metrics cycle containers=(\d+) cycleMs=([\d.]+)/g)]
    .filter((m) => Number(m[1]) >= CONTAINERS)
    .map((m) => ({ ms: Number(m[2]), perContainer: Number(m[2]) / Number(m[1]) }));
  if (cycles.length === 0) throw new Error('no metrics cycle was logged');
  // The agent's Node.js flags: what comes between `node` and the program on its command line.
  const argv = readFileSync(`/proc/${agentPid}/cmdline`, 'utf8').split('\0').slice(1);
  const agentFlags = argv.slice(0, argv.findIndex((arg) => !arg.startsWith('--')));
  const bare = await bareNodeRssMb(agentFlags);
  const broker = argv[argv.indexOf('--mqtt-url') + 1];
  const environ = readFileSync(`/proc/${agentPid}/environ`, 'utf8').split('\0');
  const agentEnv = Object.entries(AGENT_ENV).map(([name, value]) => (environ.includes(`${name}=${value}`) ? `${name}=${value}` : `${name} MISSING`));

  const r = stats(rss);
  const c = stats(cycles.map((cycle) => cycle.ms));
  const pc = stats(cycles.map((cycle) => cycle.perContainer));
  const verdict = (ok) => (ok ? 'OK' : 'OVER');
  console.log('');
  console.log(`agent                   pid ${agentPid}, broker ${broker}, ${agentEnv.join(' ')}`);
  console.log(`agent RSS (MB)          mean ${r.mean.toFixed(1)}  max ${r.max.toFixed(1)}   target <= 50   ${verdict(r.max <= 50)}`);
  console.log(`bare node RSS (MB)      ${bare.toFixed(1)}   (node ${agentFlags.join(' ')} -e 'setInterval(...)', same run: the floor)`);
  console.log(`agent CPU while idle    ${cpuPercent.toFixed(2)} % of one core (metrics every 5 s)   target <= 1   ${verdict(cpuPercent <= 1)}`);
  console.log(`metrics cycle (ms)      mean ${c.mean.toFixed(1)}  p95 ${c.p95.toFixed(1)}  max ${c.max.toFixed(1)}  over ${cycles.length} cycles of >= ${CONTAINERS} containers`);
  console.log(`  per container (ms)    mean ${pc.mean.toFixed(2)}  p95 ${pc.p95.toFixed(2)}  max ${pc.max.toFixed(2)}   target <= 5   ${verdict(pc.max <= 5)}`);
} finally {
  try {
    otto('cluster', 'stop', '--down');
  } catch (err) {
    console.error(`cleanup failed: ${err.message}`);
  }
}
