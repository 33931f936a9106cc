import { describe, expect, it } from 'vitest';
import { nfrOf, parseNfrRule, ruleHolds } from './nfr-rules.js';

describe('NFR rules', () => {
  it('parses metric, operator, threshold and window', () => {
    expect(parseNfrRule('node.cpu_percent < 85 for 1m')).toEqual({ text: 'node.cpu_percent < 85 for 1m', metric: 'node.cpu_percent', op: '<', threshold: 85, windowMs: 60_000 });
    expect(parseNfrRule('  memory_percent<=90.5 for 30s ')).toMatchObject({ metric: 'memory_percent', op: '<=', threshold: 90.5, windowMs: 30_000 });
    expect(parseNfrRule('node.disk_percent < 80')).toMatchObject({ windowMs: 60_000 });
    expect(parseNfrRule('cpu_percent < 150 for 2m')).toMatchObject({ threshold: 150 });
  });

  it('says what is wrong with a rule', () => {
    expect(() => parseNfrRule('node.cpu < 85 for 1m')).toThrow('unknown metric "node.cpu" in rule "node.cpu < 85 for 1m" (metrics: node.cpu_percent');
    expect(() => parseNfrRule('node.cpu_percent ~ 85')).toThrow('expected a rule such as "node.cpu_percent < 85 for 1m"');
    expect(() => parseNfrRule('node.memory_percent < 120 for 1m')).toThrow('node.memory_percent is a percentage: 120 is above 100');
    expect(() => parseNfrRule('node.cpu_percent < 85 for soon')).toThrow('expected a duration after "for"');
    expect(() => parseNfrRule('node.cpu_percent < 85 for 25h')).toThrow('must be from 1s to 24h');
  });

  it('judges a value against the requirement, with a margin for clearing', () => {
    const below = parseNfrRule('node.cpu_percent < 85');
    expect(ruleHolds(below, 84)).toBe(true);
    expect(ruleHolds(below, 85)).toBe(false);
    expect(ruleHolds(below, 82, 5)).toBe(false);
    expect(ruleHolds(below, 79, 5)).toBe(true);
    const above = parseNfrRule('node.disk_percent >= 10');
    expect(ruleHolds(above, 10)).toBe(true);
    expect(ruleHolds(above, 12, 5)).toBe(false);
  });

  it("a service's own rules replace the cluster's; a pinned service only alerts on the cluster's migrate", () => {
    const config = { nfr: { rules: ['node.cpu_percent < 90 for 1m'], action: 'migrate' as const } };
    expect(nfrOf(config, {})).toMatchObject({ action: 'migrate', rules: [{ threshold: 90 }] });
    expect(nfrOf(config, { node: 'a' })).toMatchObject({ action: 'alert' });
    expect(nfrOf(config, { nfr: { rules: ['memory_percent < 80 for 1m'] } })).toMatchObject({ action: 'migrate', rules: [{ metric: 'memory_percent' }] });
    expect(nfrOf({ nfr: { rules: [] } }, { nfr: { rules: ['cpu_percent < 80'], action: 'restart' } })).toMatchObject({ action: 'restart' });
    expect(nfrOf({ nfr: { rules: [] } }, {})).toEqual({ rules: [], action: 'alert' });
  });
});
