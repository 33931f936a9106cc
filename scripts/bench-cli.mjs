// npm run bench:cli — the CLI's start-up, felt on every command: wall time of a few commands against a bare
// `node -e 0`. Each command imports its heavy modules (fastify, aedes, dockerode, mqtt) only when it runs.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'otto-bench-cli-'));
cpSync(fileURLToPath(new URL('../examples/otto.yaml', import.meta.url)), join(dir, 'otto.yaml'));
spawnSync(process.execPath, [cli, 'cluster', 'init'], { cwd: dir });

function time(args) {
  const samples = [];
  for (let i = 0; i < RUNS; i++) {
    const started = process.hrtime.bigint();
    const result = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)], min: samples[0] };
}

const cases = [
  ['node -e 0 (baseline)', ['-e', '0']],
  ['otto --version', [cli, '--version']],
  ['otto config validate', [cli, 'config', 'validate']],
  ['otto cluster status (stopped)', [cli, 'cluster', 'status']],
];
console.log(`median of ${RUNS} runs`);
for (const [name, args] of cases) {
  const { median, min } = time(args);
  console.log(`${name.padEnd(32)} median ${median.toFixed(0).padStart(4)} ms   min ${min.toFixed(0).padStart(4)} ms`);
}
