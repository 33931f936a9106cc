import { describe, expect, it } from 'vitest';
import type { DesiredState } from '../protocol/messages.js';
import { judgeDesired } from './desired-gate.js';

const desired = (revision: number, node = 'n1', cluster = 'c'): DesiredState => ({
  cluster,
  node_id: node,
  revision,
  generated_at: new Date(0).toISOString(),
  settings: { metrics_interval_ms: 1000 },
  replicas: [],
});
const me = { nodeId: 'n1', cluster: 'c' };

describe('judgeDesired', () => {
  it('applies the first desired state and every newer revision', () => {
    expect(judgeDesired(undefined, desired(5), me)).toEqual({ apply: true });
    expect(judgeDesired(desired(5), desired(6), me)).toEqual({ apply: true });
  });

  it('ignores an equal or older revision: a node never goes backwards', () => {
    expect(judgeDesired(desired(5), desired(5), me)).toEqual({ apply: false, reason: 'stale' });
    expect(judgeDesired(desired(5), desired(4), me)).toEqual({ apply: false, reason: 'stale' });
  });

  it('ignores a desired state for another node or cluster', () => {
    expect(judgeDesired(undefined, desired(9, 'n2'), me)).toEqual({ apply: false, reason: 'foreign' });
    expect(judgeDesired(undefined, desired(9, 'n1', 'other'), me)).toEqual({ apply: false, reason: 'foreign' });
  });
});
