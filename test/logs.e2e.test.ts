/**
 * `otto service logs` on a real cluster with real Docker: a bounded default tail, every line in order with
 * -n all, huge lines cut, follow, the agent's memory flat while it streams 200 MB, and the agent's reading
 * stopped when the CLI is killed.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CUT_MARKER, MAX_LINE_BYTES } from '../src/agent/log-chunking.js';
import { controlPlaneCredentials } from '../src/protocol/broker-auth.js';
import { cliPath, waitFor } from './support/cli.js';
import { createCluster, type TestCluster } from './support/cluster.js';

const NUMBERS = 50_000;
const BIG_LINES = 1_000_000;

// big: 1,000,000 lines of 200 bytes (200 MB), each starting with its 7-digit number, then DONE.
const config = `metrics:
  interval: 5s
nodes:
  - id: local
    host: localhost
services:
  - name: numbers
    image: otto-test/busybox
    replicas: 2
    command: sh -c 'seq 1 ${NUMBERS}; exec sleep 100000'
    init: true
  - name: long
    image: otto-test/busybox
    command: sh -c 'echo before; head -c 1048576 /dev/zero | tr "\\0" x; echo; echo after; head -c 1048576 /dev/zero | tr "\\0" y; exec sleep 100000'
    init: true
  - name: ticker
    image: otto-test/busybox
    command: sh -c 'i=0; while true; do i=$$((i+1)); echo "tick $$i"; sleep 0.2; done'
    init: true
  - name: big
    image: otto-test/busybox
    command: sh -c 'seq 1 ${BIG_LINES} | awk "{printf \\"%07d %0192d\\\\n\\", \\$$1, 0}"; echo DONE; exec sleep 100000'
    init: true
`;

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i));
const lines = (text: string) => text.split('\n').slice(0, -1);

function vmRssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

describe('service logs', () => {
  let c: TestCluster;
  /** Runs the CLI without execFile's output limit (these logs are megabytes). */
  const logs = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [cliPath, 'service', 'logs', ...args], { cwd: c.dir });
      const out: Buffer[] = [];
      let stderr = '';
      child.stdout.on('data', (data: Buffer) => out.push(data));
      child.stderr.on('data', (data) => (stderr += data));
      child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr }));
    });
  const replicaName = (service: string, replica: number) => `${c.name}-${service}-${replica}`;

  beforeAll(async () => {
    c = await createCluster('logs', config);
    const started = await c.run('cluster', 'start', '--detach');
    expect(started.code, started.stderr).toBe(0);
    await waitFor('all services running', async () => {
      const status = await c.status();
      return status.services.every((s) => s.desired > 0 && s.running === s.desired);
    });
    await waitFor('every number printed', async () => (await logs('numbers', '--replica', '2', '-n', '1')).stdout === `${NUMBERS}\n`);
    await waitFor('the long lines printed', async () => (await logs('long', '-n', '1')).stdout.startsWith('yyyy'));
  });

  afterAll(async () => {
    await c?.destroy();
  });

  it('prints every line in order with -n all, none missing or doubled', async () => {
    const one = await logs('numbers', '--replica', '1', '-n', 'all');
    expect(one.code, one.stderr).toBe(0);
    expect(lines(one.stdout)).toEqual(range(1, NUMBERS));
  });

  it("prefixes each replica's lines and keeps each replica's order", async () => {
    const both = await logs('numbers', '-n', 'all');
    expect(both.code, both.stderr).toBe(0);
    for (const replica of [1, 2]) {
      const prefix = `${replicaName('numbers', replica)} | `;
      const own = lines(both.stdout).filter((line) => line.startsWith(prefix));
      expect(own.map((line) => line.slice(prefix.length))).toEqual(range(1, NUMBERS));
    }
    expect(lines(both.stdout)).toHaveLength(2 * NUMBERS);
  });

  it('prints the last 100 lines of each replica by default, and -n N the last N', async () => {
    const byDefault = await logs('numbers', '--replica', '1');
    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(lines(byDefault.stdout)).toEqual(range(NUMBERS - 99, NUMBERS));

    const both = await logs('numbers');
    expect(lines(both.stdout)).toHaveLength(200);

    const five = await logs('numbers', '--replica', '1', '-n', '5');
    expect(lines(five.stdout)).toEqual(range(NUMBERS - 4, NUMBERS));
  });

  it('refuses a bad -n with exit 1 and a hint', async () => {
    for (const bad of ['abc', '1.5', '-1']) {
      const result = await logs('numbers', '-n', bad);
      expect(result.code, bad).toBe(1);
      expect(result.stderr).toContain(`otto: -n/--tail: expected a number of lines or "all", got "${bad}"`);
      expect(result.stderr).toContain('hint: e.g. otto service logs numbers -n 20, or -n all for every line');
    }
  });

  it('cuts a line of a megabyte at the bound, with the marker', async () => {
    const result = await logs('long', '-n', 'all');
    expect(result.code, result.stderr).toBe(0);
    expect(lines(result.stdout)).toEqual(['before', 'x'.repeat(MAX_LINE_BYTES) + CUT_MARKER, 'after', 'y'.repeat(MAX_LINE_BYTES) + CUT_MARKER]);
  });

  it('follows new lines until Ctrl-C', async () => {
    const child = spawn(process.execPath, [cliPath, 'service', 'logs', 'ticker', '-f', '-n', '0'], { cwd: c.dir });
    let out = '';
    child.stdout.on('data', (data) => (out += data));
    await waitFor('three followed lines', async () => lines(out).length >= 3, 15_000, 100);
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGINT');
    });
    expect(code).toBe(0);
    const ticks = lines(out).map((line) => Number(/^tick (\d+)$/.exec(line)?.[1]));
    expect(ticks.every((tick, i) => i === 0 || tick === ticks[i - 1]! + 1), out).toBe(true);
  });

  it("streams 200 MB with -n all, in order, while the agent's memory stays flat", async () => {
    await waitFor('the big log written', async () => (await logs('big', '-n', '1')).stdout === 'DONE\n', 120_000, 1_000);
    const agentPid = (await c.status()).nodes.find((n) => n.id === 'local')?.agent_pid;
    expect(agentPid).toBeGreaterThan(0);
    const before = vmRssKb(agentPid!);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, vmRssKb(agentPid!))), 100);

    const child = spawn(process.execPath, [cliPath, 'service', 'logs', 'big', '-n', 'all'], { cwd: c.dir });
    let count = 0;
    let outOfOrder = '';
    let partial = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (data: string) => {
      const parts = (partial + data).split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        count++;
        const expected = count <= BIG_LINES ? String(count).padStart(7, '0') : 'DONE';
        if (!outOfOrder && !line.startsWith(expected)) outOfOrder = `line ${count}: ${line.slice(0, 20)}`;
      }
    });
    let stderr = '';
    child.stderr.on('data', (data) => (stderr += data));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearInterval(sampler);
    const growthMb = (peak - before) / 1024;
    console.log(`agent VmRSS before ${Math.round(before / 1024)} MB, peak while streaming ${Math.round(peak / 1024)} MB (+${growthMb.toFixed(1)} MB)`);

    expect(code, stderr).toBe(0);
    expect(outOfOrder).toBe('');
    expect(count).toBe(BIG_LINES + 1);
    expect(growthMb).toBeLessThan(60);
  }, 240_000);

  it("stops the agent's reading when the CLI is killed mid-stream", async () => {
    const token = readFileSync(join(c.dir, '.otto', 'token'), 'utf8').trim();
    const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${c.mqttPort}`, controlPlaneCredentials(token));
    let chunks = 0;
    watcher.on('message', () => chunks++);
    await watcher.subscribeAsync('otto/logs/+', { qos: 0 });
    try {
      const child = spawn(process.execPath, [cliPath, 'service', 'logs', 'big', '-n', 'all'], { cwd: c.dir });
      let received = 0;
      child.stdout.on('data', (data: Buffer) => (received += data.length));
      await waitFor('10 MB printed', async () => received > 10_000_000, 30_000, 50);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      const atKill = chunks;
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const afterKill = chunks - atKill;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      // The agent may run a window ahead of what the CLI printed (16 chunks plus 4 in flight), no more;
      // the rest of the 200 MB (~3,000 chunks) stays unread.
      expect(afterKill).toBeLessThanOrEqual(24);
      expect(chunks - atKill - afterKill, 'chunks 3 to 5 s after the kill').toBe(0);
    } finally {
      await watcher.endAsync();
    }
  });
});
