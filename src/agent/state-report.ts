/**
 * What the agent tells the control plane about each replica it must run: the container that serves it,
 * Docker's state and health, and what the agent is doing about it (pulling 45 %, failing and retrying at
 * T). Pure: desired replicas, containers and the agent's bookkeeping in, replica states out.
 */
import type { NodeState, ReplicaSpec, ReplicaState } from '../protocol/messages.js';
import type { ManagedContainer } from '../runtime/docker.js';
import type { PullStatus } from './image-puller.js';
import { isoTime } from '../protocol/iso-time.js';

export interface ReportFacts {
  pull: (image: string) => PullStatus | undefined;
  /** The last failure to run this replica at this spec (create, start, update), with its retry time. */
  failure: (replica: ReplicaSpec) => { error: string; retryAt: number } | undefined;
  /** Why the replica cannot get its container at this spec yet (a secret has not arrived), if it cannot. */
  waiting?: (replica: ReplicaSpec) => string | undefined;
}

/** The container that best stands for a replica: running at the desired spec, else running, else the newest. */
function representative(replica: ReplicaSpec, containers: ManagedContainer[]): ManagedContainer | undefined {
  const score = (c: ManagedContainer) => (c.state === 'running' ? 2 : 0) + (c.specHash === replica.spec_hash ? 1 : 0);
  return [...containers].sort((a, b) => score(b) - score(a) || b.created - a.created)[0];
}


export function replicaStates(desired: ReplicaSpec[], actual: ManagedContainer[], facts: ReportFacts): ReplicaState[] {
  const byReplica = new Map<string, ManagedContainer[]>();
  for (const c of actual) {
    const key = `${c.service}#${c.replica}`;
    byReplica.set(key, [...(byReplica.get(key) ?? []), c]);
  }
  return desired.map((replica) => {
    const container = representative(replica, byReplica.get(`${replica.service}#${replica.replica}`) ?? []);
    const upToDate = container?.specHash === replica.spec_hash;
    const pull = upToDate ? undefined : facts.pull(replica.container.image);
    const pullError = pull?.state === 'failed' ? (pull.error.includes(replica.container.image) ? pull.error : `pull ${replica.container.image}: ${pull.error}`) : undefined;
    const failure = facts.failure(replica) ?? (pull?.state === 'failed' ? { error: pullError!, retryAt: pull.retryAt } : undefined);
    const waiting = upToDate ? undefined : facts.waiting?.(replica);
    const pulling =
      pull?.state === 'pulling'
        ? {
            image: replica.container.image,
            percent: pull.progress.percent,
            bytes_done: pull.progress.bytesDone,
            bytes_total: pull.progress.bytesTotal || undefined,
          }
        : undefined;
    const base = { service: replica.service, replica: replica.replica, name: replica.name };
    if (!container) {
      return {
        ...base,
        state: pulling ? 'pulling' : failure ? 'error' : 'missing',
        health: 'none',
        spec_hash: replica.spec_hash,
        error: failure?.error ?? waiting,
        retry_at: failure && isoTime(failure.retryAt),
        pull: pulling,
      };
    }
    return {
      ...base,
      container_id: container.id,
      state: container.state,
      health: container.health,
      spec_hash: container.specHash,
      exit_code: container.state === 'exited' || container.state === 'dead' ? container.exitCode : undefined,
      error: failure?.error ?? waiting,
      retry_at: failure && isoTime(failure.retryAt),
      pull: pulling,
    };
  });
}

/**
 * Containers of the cluster on the node that are on their way out: those of replicas not desired any more,
 * and the other copies of a replica whose container at the desired spec runs (the old container a
 * start-first update stops once the new one is ready, a duplicate). Operations wait until none is left,
 * so an update is not done while an old container still serves.
 */
export function leavingContainers(desired: ReplicaSpec[], actual: ManagedContainer[]): NonNullable<NodeState['leaving']> {
  const wanted = new Map(desired.map((r) => [`${r.service}#${r.replica}`, r]));
  const byReplica = new Map<string, ManagedContainer[]>();
  for (const c of actual) {
    const key = `${c.service}#${c.replica}`;
    byReplica.set(key, [...(byReplica.get(key) ?? []), c]);
  }
  const kept = new Set<ManagedContainer>();
  for (const [key, replica] of wanted) {
    const containers = byReplica.get(key) ?? [];
    const serving = representative(replica, containers);
    // Until the desired spec runs and is ready (healthy, or no healthcheck), every container of the replica may still serve.
    const ready = serving?.state === 'running' && serving.specHash === replica.spec_hash && (serving.health === 'healthy' || serving.health === 'none');
    if (ready) kept.add(serving);
    else for (const c of containers) kept.add(c);
  }
  return actual.filter((c) => !kept.has(c)).map((c) => ({ name: c.name, service: c.service, replica: c.replica, state: c.state }));
}
