/**
 * Reads a desired state the way a node can live with: the envelope (cluster, node, revision, settings)
 * must be right, but each replica is checked on its own. One the agent cannot run (a spec the control
 * plane got wrong, e.g. `nano_cpus: null` where it computed Infinity) is set aside with its reason and
 * reported as a replica in `error`; the node runs the others. Pure, but for loading the schemas of an input
 * that fails its check (inputs.ts).
 */
import type { DesiredEnvelope, DesiredState, NodeState, ReplicaState } from '../protocol/messages.js';
import { checkInput, decodeInput } from './inputs.js';

export interface RejectedReplica {
  service: string;
  replica: number;
  name: string;
  /** Why the agent cannot run it, naming the field. */
  error: string;
}

export type DecodedDesired =
  | {
      ok: true;
      /** The replicas the agent runs. */
      desired: DesiredState;
      rejected: RejectedReplica[];
      /** The message as received, bad replicas included: what the agent keeps on disk. */
      envelope: DesiredEnvelope;
    }
  | { ok: false; error: string };

export async function decodeDesired(payload: Buffer | string): Promise<DecodedDesired> {
  const decoded = await decodeInput('desiredEnvelope', payload);
  if (!decoded.ok) return decoded;
  const envelope = decoded.value;
  const replicas: DesiredState['replicas'] = [];
  const rejected: RejectedReplica[] = [];
  for (const [index, raw] of envelope.replicas.entries()) {
    const parsed = await checkInput('replicaSpec', raw, '(replica)');
    if (parsed.ok) replicas.push(parsed.value);
    else rejected.push({ ...identityOf(raw, index), error: `this agent cannot run the replica's spec: ${parsed.error}` });
  }
  return { ok: true, desired: { ...envelope, replicas }, rejected, envelope };
}

/** The node's state with the set-aside replicas of the same revision added, each in `error` with its reason. */
export function withRejected(state: NodeState, rejected: { revision: number; replicas: RejectedReplica[] }): NodeState {
  if (rejected.replicas.length === 0 || state.revision !== rejected.revision) return state;
  const failed = rejected.replicas.map(
    (replica): ReplicaState => ({ service: replica.service, replica: replica.replica, name: replica.name, state: 'error', health: 'none', error: replica.error }),
  );
  return { ...state, replicas: [...state.replicas, ...failed] };
}

/** Whatever of the replica's identity can be read, so the control plane can tell which one failed. */
function identityOf(raw: unknown, index: number): Omit<RejectedReplica, 'error'> {
  const fields = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const service = typeof fields.service === 'string' ? fields.service : '';
  const replica = Number.isInteger(fields.replica) ? (fields.replica as number) : 0;
  const name = typeof fields.name === 'string' && fields.name !== '' ? fields.name : `replicas[${index}]`;
  return { service, replica, name };
}
