/**
 * The agent's state folder on disk: its last desired state, so an agent that restarts while the control
 * plane is away still knows what its node must run (edge autonomy), and its last report, which `otto
 * cluster status` shows when the control plane is down. Both may hold environment values: mode 0600.
 */
import { join } from 'node:path';
import { mkdir, readFile } from '../fs-async.js';
import type { DesiredEnvelope, DesiredState, NodeState } from '../protocol/messages.js';
import { decodeDesired, type RejectedReplica } from './desired-decode.js';
import { writeAtomic } from '../workspace.js';

export type LoadedDesired = { state: DesiredState; rejected: RejectedReplica[] } | { state: undefined; problem?: string };

export const lastReportFile = (stateDir: string) => join(stateDir, 'state.json');

export class DesiredStore {
  private readonly file: string;

  constructor(private readonly dir: string) {
    this.file = join(dir, 'desired.json');
  }

  /** The saved desired state; none when missing, and none with the problem when the file is damaged. */
  async load(): Promise<LoadedDesired> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? { state: undefined } : { state: undefined, problem: `cannot read ${this.file}: ${code}` };
    }
    // Checked like a message: a replica this agent cannot run is set aside again, the others run.
    const decoded = await decodeDesired(text);
    return decoded.ok ? { state: decoded.desired, rejected: decoded.rejected } : { state: undefined, problem: `${this.file} is damaged (${decoded.error})` };
  }

  /** The desired state as received, replicas the agent set aside included (so it reports them after a restart). */
  async save(state: DesiredEnvelope): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeAtomic(this.file, JSON.stringify(state), 0o600);
  }

  async saveReport(state: NodeState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeAtomic(lastReportFile(this.dir), JSON.stringify(state), 0o600);
  }
}
