/**
 * The CLI's checks of API answers without zod (src/http/answer-check-codegen.ts): a predicate that says
 * true must mean zod accepts the answer and returns it unchanged, or the CLI would print something zod
 * would have stripped or refused.
 */
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { answerJsonSchemas } from '../src/http/answer-check-codegen.js';
import { outputJsonSchema } from '../src/protocol/check-codegen.js';
import { ANSWER_SCHEMAS, answers } from '../src/http/answers.js';
import * as schemas from '../src/http/schemas.js';
import { FakeControlPlane } from './support/http-fixtures.js';
import { compile, expectEverySampleAccepted, expectNoPredicateBeyondZod, type Check } from './support/schema-checks.js';

/** Answers as the API sends them (the server sends what the schema returns): pulls, holds, operations, drift. */
function sampleAnswers(): Record<string, unknown[]> {
  const fake = new FakeControlPlane();
  const statuses = [fake.status()];
  fake.pulls.set('web', 45);
  fake.holds.set('worker', 'update paused: replica 1 unhealthy');
  fake.desired.set('web', 3);
  fake.scale('web', 3);
  fake.restart('worker', true);
  fake.ops[0]!.state = 'running';
  fake.ops[0]!.progress = { done: 1, total: 3 };
  statuses.push(fake.status());
  // Migration: a violation, a move under way (its replica's migrating_to), a rebalance queued.
  fake.violations.set('web', [
    { replica: 1, node: 'edge-1', rule: 'node.cpu_percent < 85 for 1m', metric: 'node.cpu_percent', threshold: 85, since: new Date(0).toISOString(), value: 97.5, failing: true, action: 'migrate' },
  ]);
  fake.ops[0]!.state = 'succeeded';
  const moving = fake.move('web', 1, 'edge-1');
  Object.assign(moving, { state: 'running', progress: { done: 0, total: 1 }, moves: moving.moves!.map((m) => ({ ...m, state: 'starting' })) });
  const rebalanced = fake.rebalance(false);
  const migrating = fake.status();
  migrating.services[0]!.replicas[0]!.migrating_to = 'edge-1';
  statuses.push(migrating);
  const plan = fake.migrationPlan();
  const busyPlan = {
    ...plan,
    mode: 'advise' as const,
    nfr: [
      { action: 'move' as const, service: 'web', replica: 1, from: 'edge-1', to: 'edge-2', reason: 'node.cpu_percent < 85 for 1m violated' },
      { action: 'blocked' as const, service: 'worker', replica: 1, from: 'edge-1', reason: 'edge-2 is not online' },
    ],
    rebalance: rebalanced.moves.map((m) => ({ action: 'move' as const, ...m })),
  };
  return {
    clusterStatus: statuses.map((s) => schemas.clusterStatusSchema.parse(s)),
    operation: fake.ops.map((op) => schemas.operationSchema.parse(op)),
    operationList: [[], schemas.operationListSchema.parse(fake.ops)],
    rotation: [{ node: 'edge-1', rotated_at: new Date().toISOString() }],
    removal: [{ node: 'pi-7', removed_at: new Date().toISOString() }],
    migrationPlan: [plan, busyPlan].map((p) => schemas.migrationPlanSchema.parse(p)),
    rebalanceResult: [{ operation: null, moves: [] }, { operation: null, moves: busyPlan.rebalance }, { operation: rebalanced.operation, moves: busyPlan.rebalance }].map((r) => schemas.rebalanceResultSchema.parse(r)),
  };
}

describe('answer checks without zod', () => {
  const { checks, deferred } = compile(answerJsonSchemas());
  const samples = sampleAnswers();

  it('check every answer the CLI reads entirely (no part left to zod)', () => {
    expect(deferred).toEqual([]);
    expect(Object.keys(checks).sort()).toEqual(Object.keys(ANSWER_SCHEMAS).sort());
    // Each answer has samples for the tests below.
    expect(Object.keys(samples).sort()).toEqual(Object.keys(ANSWER_SCHEMAS).sort());
  });

  it('accept the answers the API sends', () => {
    expectEverySampleAccepted(checks, samples);
  });

  it('say true only for what zod accepts and returns unchanged, through every mutation of the answers', () => {
    const { tried, rejected, zodRejected } = expectNoPredicateBeyondZod(checks, samples, (answer) => schemas[ANSWER_SCHEMAS[answer as keyof typeof ANSWER_SCHEMAS]] as z.ZodType);
    expect(tried).toBeGreaterThan(4_000);
    // Most mutations break the answer; those that keep it valid ('' for a name) pass both.
    expect(zodRejected).toBeGreaterThan(tried / 2);
    expect(tried - rejected).toBeGreaterThan(100);
  });

  it('are the ones the build wrote to dist (npm run build), not the stand-in', async () => {
    const built = fileURLToPath(new URL('../dist/http/answer-checks.js', import.meta.url));
    const builtChecks = (await import(built)) as { answerChecks: Partial<Record<keyof typeof ANSWER_SCHEMAS, Check>> };
    expect(Object.keys(builtChecks.answerChecks).sort()).toEqual(Object.keys(ANSWER_SCHEMAS).sort());
    for (const [answer, values] of Object.entries(samples)) {
      for (const value of values) expect(builtChecks.answerChecks[answer as keyof typeof ANSWER_SCHEMAS]!(value)).toBe(true);
    }
    expect(builtChecks.answerChecks.clusterStatus!({ ...samples.clusterStatus![0]!, unexpected: 1 })).toBe(false);
  });

  it('leave to zod what JSON Schema cannot say exactly: refinements, overlapping unions, unknown keywords', () => {
    const { checks: odd, deferred: left } = compile({
      refined: outputJsonSchema(z.object({ name: z.string().refine((s) => s !== 'root') })),
      overlapping: outputJsonSchema(z.union([z.object({ a: z.string() }), z.looseObject({ b: z.string() })])),
      unknown: { type: 'object', properties: { n: { type: 'number', multipleOf: 2 } } },
      nullable: outputJsonSchema(z.object({ since: z.iso.datetime().nullable(), n: z.int().min(1).optional() })),
    });
    expect(left.map((part) => part.split(':')[0])).toEqual(['refined/properties/name', 'overlapping', 'unknown/properties/n']);
    expect(odd.refined!({ name: 'root' })).toBe(false);
    expect(odd.overlapping!({ a: 'x' })).toBe(false);
    expect(odd.unknown!({ n: 2 })).toBe(false);
    expect(odd.nullable!({ since: null })).toBe(true);
    expect(odd.nullable!({ since: '2024-01-01T00:00:00Z', n: 1 })).toBe(true);
    expect(odd.nullable!({ since: 'yesterday' })).toBe(false);
    expect(odd.nullable!({ since: null, n: 0 })).toBe(false);
  });

  it('send an answer they refuse to zod, which strips an unknown key or fails naming the field', async () => {
    const status = samples.clusterStatus![0] as Record<string, unknown>;
    expect(await answers.clusterStatus.parse({ ...status, unexpected: 1 })).toStrictEqual(status);
    await expect(Promise.resolve(answers.clusterStatus.parse({ ...status, nodes: 'none' }))).rejects.toThrow(/nodes/);
  });
});
