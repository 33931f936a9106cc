/**
 * Drift: a service whose running replicas differ from its desired ones. A difference seen at one tick
 * only is a service converging (just scaled, just started); it becomes drift when the next tick still
 * sees it. Pure: views in, changes out.
 */
export interface DriftRecord {
  service: string;
  desired: number;
  running: number;
  since: string;
}

export interface DriftChanges {
  found: DriftRecord[];
  cleared: DriftRecord[];
}

export class DriftTracker {
  private readonly suspects = new Map<string, string>();
  private readonly confirmed = new Map<string, DriftRecord>();

  observe(services: { name: string; desired: number; running: number }[], now = new Date()): DriftChanges {
    const changes: DriftChanges = { found: [], cleared: [] };
    const names = new Set(services.map((s) => s.name));
    for (const { name, desired, running } of services) {
      const known = this.confirmed.get(name);
      if (running === desired) {
        this.suspects.delete(name);
        if (known) {
          this.confirmed.delete(name);
          changes.cleared.push({ ...known, desired, running });
        }
      } else if (known) {
        Object.assign(known, { desired, running });
      } else if (this.suspects.has(name)) {
        const record = { service: name, desired, running, since: this.suspects.get(name)! };
        this.confirmed.set(name, record);
        changes.found.push(record);
      } else {
        this.suspects.set(name, now.toISOString());
      }
    }
    for (const name of [...this.suspects.keys(), ...this.confirmed.keys()]) {
      if (!names.has(name)) {
        this.suspects.delete(name);
        this.confirmed.delete(name);
      }
    }
    return changes;
  }

  current(): DriftRecord[] {
    return [...this.confirmed.values()].map((record) => ({ ...record }));
  }
}
