import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serviceSchema } from '../config/schema.js';
import type { Operation } from '../http/schemas.js';
import { Ledger } from './ledger.js';
import { runMigration, type MigrationHost } from './migration-runner.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A host whose nodes answer at once: the target runs the replica as soon as it is assigned there. */
async function hostWith(targetState: 'running' | 'exited', frozenAtStart = true) {
  const dir = await mkdtemp(join(tmpdir(), 'otto-migration-runner-'));
  dirs.push(dir);
  const ledger = new Ledger(dir);
  // Frozen: the planner keeps its map of the assignments per record, so a move must replace the record.
  ledger.data.assignments = { 'web#1': 'a', 'web#2': 'b' };
  if (frozenAtStart) Object.freeze(ledger.data.assignments);
  const service = serviceSchema.parse({ name: 'web', image: 'busybox', update: { monitor: '0s' } });
  const records: Record<string, string>[] = [];
  const host: MigrationHost = {
    ledger,
    service: (name) => (name === 'web' ? service : undefined),
    replan: async () => {
      records.push(ledger.data.assignments);
      Object.freeze(ledger.data.assignments);
    },
    reported: (key, nodeId) =>
      ledger.data.assignments[key] === nodeId || ledger.data.migrations.some((m) => m.key === key && m.from === nodeId)
        ? { service: 'web', replica: 1, name: 'c-web-1', state: nodeId === 'c' ? targetState : 'running', health: 'none', spec_hash: 'h1' }
        : undefined,
    leavingOn: () => false,
    expectedHash: () => 'h1',
    lifecycle: () => 'online',
    maxInFlight: () => 2,
    event: () => undefined,
  };
  return { host, ledger, records };
}

const op = (): Operation => ({
  id: 'op1',
  kind: 'migrate',
  service: 'web',
  moves: [{ service: 'web', replica: 1, from: 'a', to: 'c', reason: 'test', state: 'pending' }],
  state: 'running',
  requested_at: new Date().toISOString(),
});

describe('runMigration', () => {
  it('replaces the ledger assignments at each step instead of changing them in place', async () => {
    const { host, ledger, records } = await hostWith('running');
    const result = await runMigration(op(), host, () => undefined, () => false);
    expect(result.state).toBe('succeeded');
    expect(ledger.data.assignments).toEqual({ 'web#1': 'c', 'web#2': 'b' });
    expect(ledger.data.migrations).toEqual([]);
    expect(records[0]).toEqual({ 'web#1': 'c', 'web#2': 'b' });
  });

  it('gives a replica whose target fails back to its source the same way', async () => {
    // Frozen from the first replan on: the step that gives it back must replace the record too.
    const { host, ledger } = await hostWith('exited', false);
    const result = await runMigration(op(), host, () => undefined, () => false);
    expect(result.state).toBe('failed');
    expect(ledger.data.assignments).toEqual({ 'web#1': 'a', 'web#2': 'b' });
    expect(ledger.data.last_moves['web#1']).toMatchObject({ failed_to: 'c' });
  });
});
