/**
 * The agent's copy of its last desired state on disk. An agent that restarts while the control plane is
 * away still knows what its node must run (edge autonomy).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decode, desiredStateSchema, type DesiredState } from '../protocol/messages.js';
import { writeAtomic } from '../workspace.js';

export class DesiredStore {
  private readonly file: string;

  constructor(private readonly dir: string) {
    this.file = join(dir, 'desired.json');
  }

  async load(): Promise<DesiredState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return undefined;
    }
    const decoded = decode(desiredStateSchema, text);
    return decoded.ok ? decoded.value : undefined;
  }

  async save(state: DesiredState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeAtomic(this.file, JSON.stringify(state));
  }
}
