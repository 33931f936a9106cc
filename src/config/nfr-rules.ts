/**
 * NFR rules: what a service needs from the node it runs on and from its own container, as otto.yaml writes
 * them ("node.cpu_percent < 85 for 1m"). A rule states the requirement; it is violated when the requirement
 * fails for its whole window. Parsed here once for validation (with positions) and for the control plane.
 */
import type { OttoConfig, ServiceConfig } from './schema.js';
import { parseDuration } from './units.js';

/** Metrics a rule may name: the node's of the replica (seed 004's field names) and the replica container's own. */
export const NFR_METRICS = ['node.cpu_percent', 'node.memory_percent', 'node.disk_percent', 'cpu_percent', 'memory_percent'] as const;
export type NfrMetric = (typeof NFR_METRICS)[number];
export type NfrOperator = '<' | '<=' | '>' | '>=';
export type NfrAction = 'migrate' | 'restart' | 'alert';

export interface NfrRule {
  /** The rule as written, the key of its violations. */
  text: string;
  metric: NfrMetric;
  op: NfrOperator;
  threshold: number;
  windowMs: number;
}

/** How far back inside its threshold a violated rule's metric must come before the violation clears (percentage points). */
export const CLEAR_MARGIN = 5;
/** When a rule leaves out `for`: long enough that a spike of a few samples is not a violation. */
export const DEFAULT_WINDOW = '1m';

const METRIC = NFR_METRICS.map((m) => m.replace('.', '\\.')).join('|');
/** Also the JSON Schema's pattern, so editors check a rule while it is typed. */
export const NFR_RULE_PATTERN = `^\\s*(${METRIC})\\s*(<=|>=|<|>)\\s*(\\d+(?:\\.\\d+)?)\\s*(?:for\\s+(\\S+)\\s*)?$`;
const RULE = new RegExp(NFR_RULE_PATTERN);

/** Parses a rule; throws an Error saying what is wrong (the config loader adds the position). */
export function parseNfrRule(text: string): NfrRule {
  const match = RULE.exec(text);
  if (!match) {
    const metric = /^\s*([\w.]+)/.exec(text)?.[1];
    if (metric && !(NFR_METRICS as readonly string[]).includes(metric)) {
      throw new Error(`unknown metric "${metric}" in rule "${text}" (metrics: ${NFR_METRICS.join(', ')})`);
    }
    throw new Error(`expected a rule such as "node.cpu_percent < 85 for 1m" (METRIC <|<=|>|>= NUMBER [for DURATION]), got "${text}"`);
  }
  const [, metric, op, value, window] = match as unknown as [string, NfrMetric, NfrOperator, string, string | undefined];
  const threshold = Number(value);
  if (metric !== 'cpu_percent' && threshold > 100) throw new Error(`${metric} is a percentage: ${threshold} is above 100 in rule "${text}"`);
  let windowMs: number;
  try {
    windowMs = parseDuration(window ?? DEFAULT_WINDOW);
  } catch {
    throw new Error(`expected a duration after "for" such as "30s" or "2m", got "${window}" in rule "${text}"`);
  }
  if (windowMs < 1_000 || windowMs > 24 * 3_600_000) throw new Error(`the window of rule "${text}" must be from 1s to 24h`);
  return { text: text.trim(), metric, op, threshold, windowMs };
}

/** The requirement holds for this value. */
export function ruleHolds(rule: Pick<NfrRule, 'op' | 'threshold'>, value: number, margin = 0): boolean {
  switch (rule.op) {
    case '<':
      return value < rule.threshold - margin;
    case '<=':
      return value <= rule.threshold - margin;
    case '>':
      return value > rule.threshold + margin;
    case '>=':
      return value >= rule.threshold + margin;
  }
}

export const isNodeMetric = (metric: NfrMetric): metric is Extract<NfrMetric, `node.${string}`> => metric.startsWith('node.');

/** The node resource a rule is about: a replica's own CPU or memory weighs on its node's. */
export function resourceOf(metric: NfrMetric): 'cpu' | 'memory' | 'disk' {
  if (metric.endsWith('cpu_percent')) return 'cpu';
  if (metric.endsWith('memory_percent')) return 'memory';
  return 'disk';
}

/**
 * A service's rules and action: its own `nfr`, else the cluster-wide one. A pinned service cannot move: the
 * cluster-wide `migrate` only alerts for it (its own `migrate` is refused by validation).
 */
export function nfrOf(config: Pick<OttoConfig, 'nfr'>, service: Pick<ServiceConfig, 'nfr' | 'node'>): { rules: NfrRule[]; action: NfrAction } {
  const source = service.nfr ?? config.nfr;
  const action = source.action ?? (service.nfr ? config.nfr.action : undefined) ?? 'alert';
  return { rules: source.rules.map(parseNfrRule), action: action === 'migrate' && service.node ? 'alert' : action };
}
