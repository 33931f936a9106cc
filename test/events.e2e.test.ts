/**
 * `otto cluster events` on a log written by the ledger: the whole log, the tail, and `--follow` across
 * rotations and a torn line, each event printed exactly once and in order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger, readEvents } from '../src/control-plane/ledger.js';
import { cliPath, otto, waitFor } from './support/cli.js';

const MAX_LOG_BYTES = 4_000; // about 25 events a file

let dir: string;
let ottoDir: string;
let eventsFile: string;
let follower: ChildProcess | undefined;

/** A control plane run: a ledger loaded from .otto/ as at start, appending `count` events. */
async function appendEvents(count: number, label: string): Promise<number[]> {
  const ledger = new Ledger(ottoDir, { maxEventLogBytes: MAX_LOG_BYTES });
  await ledger.load();
  const appended = await Promise.all(
    Array.from({ length: count }, (_, i) => ledger.appendEvent({ kind: 'replica-died', service: 'web', replica: i, message: `${label} ${i}: web replica ${i} exited with code 137` })),
  );
  return appended.map((e) => e.id);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'otto-events-'));
  ottoDir = join(dir, '.otto');
  eventsFile = join(ottoDir, 'events.jsonl');
  writeFileSync(join(dir, 'otto.yaml'), 'nodes:\n  - id: local\n    host: localhost\n');
  for (let run = 0; run < 5; run++) await appendEvents(12, `run ${run}`); // rotated twice already
});

afterAll(() => {
  follower?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('otto cluster events', () => {
  it('prints the whole log, the rotated file first, in order', async () => {
    const kept = (await readEvents(eventsFile)).map((e) => e.id);
    expect(kept[0]).toBeGreaterThan(1); // the oldest events were rotated away
    const result = await otto(['cluster', 'events', '--json'], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { id: number }).id)).toEqual(kept);
  });

  it('prints only the last events with -n 3', async () => {
    const last = (await readEvents(eventsFile)).slice(-3);
    const result = await otto(['cluster', 'events', '-n', '3'], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    const printed = result.stdout.trim().split('\n');
    expect(printed).toHaveLength(3);
    printed.forEach((text, i) => expect(text).toContain(`service=web replica=${last[i]!.replica}  ${last[i]!.message}`));
  });

  it('rejects a bad -n with exit 1 and a clear message', async () => {
    const result = await otto(['cluster', 'events', '-n', 'x'], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('otto: -n/--tail: expected a non-negative number, got "x"');
    expect(result.stdout).toBe('');
  });

  it('follows the log across rotations and a torn line, printing every event exactly once, in order', async () => {
    const atStart = (await readEvents(eventsFile)).map((e) => e.id);
    let stdout = '';
    follower = spawn(process.execPath, [cliPath, 'cluster', 'events', '--follow', '--json'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    follower.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    let stderr = '';
    follower.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const printedIds = () =>
      stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { id: number }).id);
    await waitFor('the existing events printed', async () => printedIds().length >= atStart.length, 20_000, 100);

    const appended: number[] = [];
    for (let burst = 0; burst < 8; burst++) {
      appended.push(...(await appendEvents(7, `burst ${burst}`))); // 8 x 7 events: two rotations and more
      await sleep(150);
    }
    appendFileSync(eventsFile, '{"id":999999,"time":"2026'); // a control plane killed in the middle of an append
    await sleep(400);
    appended.push(...(await appendEvents(30, 'after restart'))); // the restarted one closes the torn line; rotates again

    const expected = [...atStart, ...appended];
    for (let i = 1; i < expected.length; i++) expect(expected[i]).toBe(expected[i - 1]! + 1);
    await waitFor('every event printed', async () => printedIds().length >= expected.length, 20_000, 100);
    await sleep(600); // a few more polls: nothing printed twice
    expect(stderr).toBe('');
    expect(printedIds()).toEqual(expected);

    follower.kill('SIGINT');
    const code = await new Promise((resolve) => follower!.once('exit', resolve));
    expect(code).toBe(0);
  });
});
