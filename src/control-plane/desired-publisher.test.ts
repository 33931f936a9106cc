import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import type { DesiredState, ReplicaSpec } from '../protocol/messages.js';
import { DesiredPublisher } from './desired-publisher.js';
import type { ClusterPlan } from './desired-state.js';
import { Ledger } from './ledger.js';

const config = parseConfig('cluster: { name: c }\nnodes:\n  - { id: n1, host: localhost }\n', 'otto.yaml');
const replicas = (n: number): ReplicaSpec[] =>
  Array.from({ length: n }, (_, i) => ({ service: 's', replica: i + 1, name: `c-s-${i + 1}`, spec_hash: 'h', container: { image: 'x', env: {}, ports: [], volumes: [], restart: 'always', labels: {} } }));

/** A publisher whose plan is "the latest wanted count", and whose broker takes a random time to acknowledge. */
function setup(options: { agentRevision?: number; savedRevision?: number } = {}) {
  let wanted = 0;
  const published: DesiredState[] = [];
  const ledger = new Ledger('/nonexistent');
  if (options.savedRevision) ledger.data.desired_revisions.n1 = options.savedRevision;
  ledger.saveSoon = () => undefined;
  const publisher = new DesiredPublisher({
    config: () => config,
    ledger,
    log: createLogger({ component: 'test', level: 'silent' }),
    computePlan: (): ClusterPlan => ({ placement: { assignments: [], unplaced: [] }, replicasByNode: new Map([['n1', replicas(wanted)]]), assignments: new Map() }),
    planned: () => undefined,
    publish: async (_node, desired) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
      published.push(desired);
    },
    agentRevision: () => options.agentRevision,
  });
  return { publisher, published, want: (n: number) => (wanted = n) };
}

describe('DesiredPublisher', () => {
  it('never publishes an older plan after a newer one, whatever the overlap of requests', async () => {
    const { publisher, published, want } = setup();
    const requests: Promise<void>[] = [];
    for (let n = 1; n <= 30; n++) {
      want(n);
      requests.push(publisher.replan());
      if (n % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await Promise.all(requests);
    expect(published.at(-1)!.replicas).toHaveLength(30);
    const revisions = published.map((d) => d.revision);
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
    expect(new Set(revisions).size).toBe(revisions.length);
    // Runs are serialized and coalesced: far fewer publishes than requests.
    expect(published.length).toBeLessThan(30);
  });

  it('publishes only what changed, and resolves a request only after a run that saw it', async () => {
    const { publisher, published, want } = setup();
    want(2);
    await publisher.replan();
    await publisher.replan();
    expect(published).toHaveLength(1);
    want(3);
    await publisher.replan();
    expect(published.at(-1)!.replicas).toHaveLength(3);
  });

  it('starts above the revision the ledger kept and the one the agent reports', async () => {
    const future = Date.now() + 3_600_000;
    const fromLedger = setup({ savedRevision: future });
    fromLedger.want(1);
    await fromLedger.publisher.replan();
    expect(fromLedger.published[0]!.revision).toBe(future + 1);
    const fromAgent = setup({ agentRevision: future + 10 });
    fromAgent.want(1);
    await fromAgent.publisher.replan();
    expect(fromAgent.published[0]!.revision).toBe(future + 11);
  });
});
