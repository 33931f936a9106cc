/**
 * Watches the containers of a test cluster in Docker while faults are injected: every container id each
 * replica had, and every moment one replica had two containers. Samples every 200 ms (a duplicate that
 * lives less than that can slip through; the agent's own plan also removes duplicates it sees).
 */
import { docker } from '../support/cli.js';

export interface ContainerWatch {
  /** Replica (`service#index`) -> every container id seen for it. */
  readonly ids: Map<string, Set<string>>;
  /** Samples in which a replica had more than one container (running or not). */
  duplicates: number;
  /** Describes each duplicate seen, for the assertion message. */
  readonly duplicateNotes: string[];
  /** Running containers per service in the last sample. */
  running(service: string): number;
  /** The lowest running count of a service over all samples since `since()` was last called. */
  lowestRunning(service: string): number;
  resetLowest(): void;
  stop(): Promise<void>;
}

export function watchContainers(cluster: string, options: { allowTwoPerReplica?: (service: string) => boolean } = {}): ContainerWatch {
  const ids = new Map<string, Set<string>>();
  const lowest = new Map<string, number>();
  let last: { service: string; state: string }[] = [];
  let stopped = false;
  const watch: ContainerWatch = {
    ids,
    duplicates: 0,
    duplicateNotes: [],
    running: (service) => last.filter((c) => c.service === service && c.state === 'running').length,
    lowestRunning: (service) => lowest.get(service) ?? 0,
    resetLowest: () => lowest.clear(),
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
  const sample = async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`otto.cluster=${cluster}`] } });
    const perReplica = new Map<string, string[]>();
    for (const c of list) {
      // A container being removed is on its way out; it is no second copy.
      if (c.State === 'removing') continue;
      const key = `${c.Labels['otto.service']}#${c.Labels['otto.replica']}`;
      perReplica.set(key, [...(perReplica.get(key) ?? []), c.Id]);
      if (!ids.has(key)) ids.set(key, new Set());
      ids.get(key)!.add(c.Id);
    }
    for (const [key, containers] of perReplica) {
      const service = key.split('#')[0]!;
      if (containers.length > 1 && !options.allowTwoPerReplica?.(service)) {
        watch.duplicates++;
        watch.duplicateNotes.push(`${new Date().toISOString()} ${key}: ${containers.map((id) => id.slice(0, 12)).join(', ')}`);
      }
    }
    last = list.map((c) => ({ service: c.Labels['otto.service'] ?? '', state: c.State }));
    for (const service of new Set(last.map((c) => c.service))) {
      const now = watch.running(service);
      lowest.set(service, Math.min(lowest.get(service) ?? now, now));
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await sample().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  return watch;
}

/** Replicas whose container changed (ids seen besides the first), given the ids before the faults. */
export function recreatedReplicas(before: Map<string, string>, watch: ContainerWatch, only?: (key: string) => boolean): string[] {
  const changed: string[] = [];
  for (const [key, first] of before) {
    if (only && !only(key)) continue;
    const seen = watch.ids.get(key) ?? new Set();
    if ([...seen].some((id) => id !== first)) changed.push(key);
  }
  return changed;
}

/** Current container id of every replica of a cluster. */
export async function replicaContainers(cluster: string): Promise<Map<string, string>> {
  const list = await docker.listContainers({ all: true, filters: { label: [`otto.cluster=${cluster}`] } });
  return new Map(list.map((c) => [`${c.Labels['otto.service']}#${c.Labels['otto.replica']}`, c.Id]));
}
