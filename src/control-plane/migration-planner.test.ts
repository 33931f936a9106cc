import { describe, expect, it } from 'vitest';
import { parseNfrRule } from '../config/nfr-rules.js';
import { ottoConfigSchema } from '../config/schema.js';
import { planNfrActions, planRebalance, predictLoad, type MigrationFacts, type NodeLoad, type ReplicaUsage } from './migration-planner.js';
import type { Violation } from './nfr-detector.js';

const NOW = 1_000_000;
const cpuRule = parseNfrRule('node.cpu_percent < 85 for 1m');

function configOf(extra: Record<string, unknown> = {}, services?: unknown[]) {
  return ottoConfigSchema.parse({
    cluster: { name: 'c' },
    nodes: [
      { id: 'a', host: 'localhost', labels: { zone: 'x' } },
      { id: 'b', host: 'localhost', labels: { zone: 'x' } },
      { id: 'c', host: 'localhost', labels: { zone: 'y' } },
    ],
    services: services ?? [{ name: 'web', image: 'i', replicas: 2, nfr: { rules: [cpuRule.text], action: 'migrate' } }],
    ...extra,
  });
}

const load = (cpu: number, memory = 30, cores = 4): NodeLoad => ({ cpu_percent: cpu, memory_percent: memory, disk_percent: 10, cpu_count: cores, memory_total_mb: 4000 });

function facts(over: Partial<MigrationFacts> & { loads?: Record<string, NodeLoad>; usages?: Record<string, ReplicaUsage>; moved?: Record<string, { at: number; failed_to?: string }> }): MigrationFacts {
  const loads = over.loads ?? { a: load(95), b: load(40), c: load(20) };
  return {
    config: over.config ?? configOf(),
    assignments: over.assignments ?? new Map([['web#1', 'a'], ['web#2', 'b']]),
    online: over.online ?? (() => true),
    load: (id) => loads[id],
    usage: (key) => over.usages?.[key] ?? { cpu_percent: 40, memory_usage_mb: 100 },
    violations: over.violations ?? [],
    inFlight: over.inFlight ?? new Map(),
    lastMove: (key) => over.moved?.[key],
    now: NOW,
  };
}

const violation = (replica: number, node: string, extra: Partial<Violation> = {}): Violation => ({
  service: 'web',
  replica,
  node,
  rule: cpuRule,
  since: NOW - 70_000,
  value: 95,
  failing: true,
  at: NOW,
  ...extra,
});

describe('planNfrActions', () => {
  it('moves a replica off a node that violates its rule, to the node with the most headroom', () => {
    const decisions = planNfrActions(facts({ violations: [violation(1, 'a')] }));
    expect(decisions).toEqual([expect.objectContaining({ action: 'move', service: 'web', replica: 1, from: 'a', to: 'c' })]);
    expect((decisions[0] as { reason: string }).reason).toContain('node.cpu_percent < 85 for 1m violated on a');
    expect((decisions[0] as { reason: string }).reason).toContain('c has the most cpu headroom (30% after the move)');
  });

  it('nothing to do while the latest sample is back inside the threshold (not cleared yet) or the action is alert', () => {
    expect(planNfrActions(facts({ violations: [violation(1, 'a', { failing: false, value: 80 })] }))).toEqual([]);
    const alerting = configOf({}, [{ name: 'web', image: 'i', replicas: 2, nfr: { rules: [cpuRule.text] } }]);
    expect(planNfrActions(facts({ config: alerting, violations: [violation(1, 'a')] }))).toEqual([]);
  });

  it('every node overloaded: no move, and why', () => {
    const [d] = planNfrActions(facts({ violations: [violation(1, 'a')], loads: { a: load(95), b: load(90), c: load(88) } }));
    expect(d).toMatchObject({ action: 'blocked', replica: 1 });
    expect(d!.reason).toContain('b would reach node.cpu_percent 100 (rule: node.cpu_percent < 85 for 1m)');
  });

  it('never pushes a target over: the replica usage is added to the prediction, with the clearing margin', () => {
    // 4 cores; the replica uses 100 % of one: +25 % on the node. c at 56 would reach 81 (over 85 - 5), b at 40 reaches 65.
    const d = planNfrActions(facts({ violations: [violation(1, 'a')], loads: { a: load(95), b: load(40), c: load(56) }, usages: { 'web#1': { cpu_percent: 100, memory_usage_mb: 10 } } }));
    expect(d).toEqual([expect.objectContaining({ action: 'move', to: 'b' })]);
    expect(predictLoad(load(40), [{ cpu_percent: 100, memory_usage_mb: 400 }])).toMatchObject({ cpu_percent: 65, memory_percent: 40 });
  });

  it('keeps placement constraints and host ports', () => {
    const constrained = configOf({}, [{ name: 'web', image: 'i', replicas: 2, ports: ['8080:80'], placement: { constraints: ['zone == x'] }, nfr: { rules: [cpuRule.text], action: 'migrate' } }]);
    // c does not match; b holds web#2 and its host port.
    const [d] = planNfrActions(facts({ config: constrained, violations: [violation(1, 'a')] }));
    expect(d).toMatchObject({ action: 'blocked' });
    expect(d!.reason).toContain('host port 8080/tcp is taken on b');
    expect(d!.reason).toContain('c does not match zone == x');
  });

  it('a cooldown holds a replica that moved recently; a failed target is not tried again within it', () => {
    const recent = planNfrActions(facts({ violations: [violation(1, 'a')], moved: { 'web#1': { at: NOW - 60_000 } } }));
    expect(recent).toEqual([expect.objectContaining({ action: 'wait', reason: expect.stringContaining('cooldown: 540s left') })]);
    const failed = planNfrActions(facts({ violations: [violation(1, 'a')], moved: { 'web#1': { at: NOW - 11 * 60_000, failed_to: 'c' } } }));
    expect(failed).toEqual([expect.objectContaining({ action: 'move', to: 'c' })]);
  });

  it('at most max_in_flight moves at once, and one at a time off an overloaded node', () => {
    const config = configOf({ migration: { max_in_flight: 2 } }, [{ name: 'web', image: 'i', replicas: 4, nfr: { rules: [cpuRule.text], action: 'migrate' } }]);
    const assignments = new Map([['web#1', 'a'], ['web#2', 'a'], ['web#3', 'b'], ['web#4', 'b']]);
    const decisions = planNfrActions(
      facts({ config, assignments, loads: { a: load(95), b: load(95), c: load(5, 30, 16) }, violations: [violation(1, 'a'), violation(2, 'a'), violation(3, 'b'), violation(4, 'b')] }),
    );
    expect(decisions.map((d) => [d.action, d.replica])).toEqual([['move', 1], ['wait', 2], ['move', 3], ['wait', 4]]);
    expect(decisions[1]!.reason).toContain('already leaving a');
    const full = planNfrActions(facts({ config, assignments, inFlight: new Map([['web#2', { from: 'a', to: 'c' }], ['web#4', { from: 'b', to: 'c' }]]), violations: [violation(1, 'a'), violation(3, 'b')] }));
    expect(full.map((d) => d.action)).toEqual(['wait', 'wait']);
  });

  it('restart as the action restarts the replica in place', () => {
    const config = configOf({}, [{ name: 'web', image: 'i', replicas: 2, nfr: { rules: ['memory_percent < 90 for 30s'], action: 'restart' } }]);
    const v = violation(2, 'b', { rule: parseNfrRule('memory_percent < 90 for 30s') });
    expect(planNfrActions(facts({ config, violations: [v] }))).toEqual([expect.objectContaining({ action: 'restart', replica: 2, node: 'b' })]);
  });

  it('spread picks the node with the fewest replicas of the service', () => {
    const config = configOf({ migration: { strategy: 'spread' } }, [{ name: 'web', image: 'i', replicas: 3, nfr: { rules: [cpuRule.text], action: 'migrate' } }]);
    const assignments = new Map([['web#1', 'a'], ['web#2', 'c'], ['web#3', 'c']]);
    // c has more headroom, but already two replicas of web.
    const [d] = planNfrActions(facts({ config, assignments, loads: { a: load(95), b: load(50), c: load(10) }, violations: [violation(1, 'a')] }));
    expect(d).toMatchObject({ action: 'move', to: 'b' });
  });
});

describe('planRebalance', () => {
  const config = configOf({ migration: { max_in_flight: 3 } }, [{ name: 'web', image: 'i', replicas: 4 }]);
  const assignments = new Map([['web#1', 'b'], ['web#2', 'b'], ['web#3', 'b'], ['web#4', 'b']]);
  const base = { config, assignments, loads: { a: load(10), b: load(60), c: load(10) }, settled: () => true };

  it('spreads a service back over the nodes, highest replica numbers first, until no two nodes differ by more than one', () => {
    const moves = planRebalance({ ...facts(base), settled: () => true });
    expect(moves.map((m) => `${m.replica}:${m.from}->${m.to}`)).toEqual(['4:b->a', '3:b->c']);
    expect(moves[0]!.reason).toBe('rebalance: web has 4 replica(s) on b and 0 on a');
  });

  it('leaves out nodes not settled, replicas in their cooldown, and targets a move would push over a rule', () => {
    expect(planRebalance({ ...facts(base), settled: (id) => id !== 'c' }).map((m) => m.to)).toEqual(['a', 'a']);
    expect(planRebalance({ ...facts({ ...base, moved: { 'web#4': { at: NOW - 1000 } } }), settled: () => true }).map((m) => m.replica)).toEqual([3, 2]);
    const ruled = configOf({ migration: { max_in_flight: 3 } }, [{ name: 'web', image: 'i', replicas: 4, nfr: { rules: [cpuRule.text] } }]);
    expect(planRebalance({ ...facts({ ...base, config: ruled, loads: { a: load(83), b: load(60), c: load(10) } }), settled: () => true }).map((m) => m.to)).toEqual(['c', 'c']);
  });

  it('room is what max_in_flight leaves; a balanced cluster moves nothing', () => {
    const one = planRebalance({ ...facts({ ...base, inFlight: new Map([['x#1', { from: 'a', to: 'b' }], ['x#2', { from: 'a', to: 'b' }]]) }), settled: () => true });
    expect(one).toHaveLength(1);
    const balanced = new Map([['web#1', 'a'], ['web#2', 'b'], ['web#3', 'c'], ['web#4', 'a']]);
    expect(planRebalance({ ...facts({ ...base, assignments: balanced }), settled: () => true })).toEqual([]);
  });
});
