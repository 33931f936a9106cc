import { describe, expect, it } from 'vitest';
import { newMoves, planHandover, type HandoverFacts, type Move } from './handover.js';
import type { NodeLifecycle } from './node-lifecycle.js';

const move: Move = { key: 'web#1', from: 'pi1', to: 'pi2' };

const facts = (over: Partial<HandoverFacts> & { states?: Record<string, NodeLifecycle> } = {}): HandoverFacts => ({
  assignmentOf: () => 'pi2',
  lifecycleOf: (id) => over.states?.[id] ?? 'online',
  reportedSinceBack: () => true,
  readinessOn: () => 'failed',
  runningOn: () => false,
  ...over,
});

describe('planHandover', () => {
  it('holds the copy in the lost node’s desired state while it is away or has not reported since it came back', () => {
    for (const states of [{ pi1: 'lost' as const }, { pi1: 'unreachable' as const }]) {
      expect(planHandover([move], facts({ states }))).toEqual({ held: new Map([['pi1', ['web#1']]]), outcomes: [] });
    }
    expect(planHandover([move], facts({ reportedSinceBack: () => false })).held.get('pi1')).toEqual(['web#1']);
  });

  it('releases the returning copy once the replacement is ready', () => {
    const result = planHandover([move], facts({ readinessOn: (key, node) => (key === 'web#1' && node === 'pi2' ? 'ready' : 'failed'), runningOn: () => true }));
    expect(result).toEqual({ held: new Map(), outcomes: [{ kind: 'released', move }] });
  });

  it('keeps both copies while the replacement is still starting, the returning one serving', () => {
    const result = planHandover([move], facts({ readinessOn: () => 'starting', runningOn: (key, node) => node === 'pi1' }));
    expect(result).toEqual({ held: new Map([['pi1', ['web#1']]]), outcomes: [] });
  });

  it('gives the replica back to the returning node when the replacement failed and the copy runs', () => {
    const result = planHandover([move], facts({ runningOn: (key, node) => node === 'pi1' }));
    expect(result.outcomes).toEqual([{ kind: 'given-back', move }]);
  });

  it('releases a returning copy that does not run either: the replacement is the one to keep', () => {
    expect(planHandover([move], facts()).outcomes).toEqual([{ kind: 'released', move }]);
  });

  it('ends a move whose replica was scaled away or moved again', () => {
    expect(planHandover([move], facts({ assignmentOf: () => undefined })).outcomes).toEqual([{ kind: 'obsolete', move }]);
    expect(planHandover([move], facts({ assignmentOf: () => 'pc' })).outcomes).toEqual([{ kind: 'obsolete', move }]);
  });
});

describe('newMoves', () => {
  it('records replicas that left a lost node, not those that left for another reason, nor twice', () => {
    const lifecycle = (id: string): NodeLifecycle => (id === 'pi1' ? 'lost' : 'online');
    const before = { 'web#1': 'pi1', 'web#2': 'pc', 'db#1': 'pi1', 'old#1': 'pi1' };
    const after = new Map([['web#1', 'pi2'], ['web#2', 'pi2'], ['db#1', 'pi1'], ['old#1', 'pc']]);
    expect(newMoves(before, after, lifecycle, new Set(['old#1']))).toEqual([{ key: 'web#1', from: 'pi1', to: 'pi2' }]);
  });
});
