/**
 * Spec revisions per service, so a changed spec rolls out replica by replica and can roll back. Each spec
 * the config gave a service is a revision; `current` is what new replicas get and what an update moves every
 * replica to; replicas still on another revision are listed in `replicas` (an update under way, paused, or
 * interrupted by a restart). Pure functions over the ledger's `specs` record.
 */
import type { ContainerSpec } from '../protocol/messages.js';
import { specHash } from '../protocol/spec-hash.js';
import type { ServiceSpecs, SpecRevision } from './ledger.js';

export type SpecsByService = Record<string, ServiceSpecs>;

/** Revisions kept besides the ones in use: enough to roll back, not a history. */
const SPARE_REVISIONS = 2;

export interface ServiceSpecInput {
  name: string;
  spec: ContainerSpec;
  /** Replicas the service has now (config or scale). */
  replicas: number;
}

const revisionById = (entry: ServiceSpecs, id: number) => entry.revisions.find((r) => r.id === id);

export function currentRevision(entry: ServiceSpecs): SpecRevision {
  return revisionById(entry, entry.current)!;
}

/** The revision a replica must run. */
export function revisionOf(entry: ServiceSpecs, replica: number): SpecRevision {
  return revisionById(entry, entry.replicas[replica] ?? entry.current) ?? currentRevision(entry);
}

/** Replicas (of 1..count) not on the current revision yet, lowest first. */
export function pendingReplicas(entry: ServiceSpecs, count: number): number[] {
  const pending: number[] = [];
  for (let i = 1; i <= count; i++) if (entry.replicas[i] !== undefined && entry.replicas[i] !== entry.current) pending.push(i);
  return pending;
}

/**
 * Brings the revisions in line with the config: a service seen for the first time starts at revision 1; a
 * changed spec becomes the new current revision with every existing replica pinned to the old one (the
 * update then moves them); a spec on hold (its update paused or rolled back) is left alone until the
 * config changes it. Returns the services whose spec changed.
 */
export function syncSpecs(specs: SpecsByService, services: ServiceSpecInput[], now = new Date()): string[] {
  const changed: string[] = [];
  const names = new Set(services.map((s) => s.name));
  for (const name of Object.keys(specs)) if (!names.has(name)) delete specs[name];
  for (const { name, spec, replicas } of services) {
    const hash = specHash(spec);
    const entry = specs[name];
    if (!entry) {
      specs[name] = { revisions: [{ id: 1, spec, hash, created: now.toISOString() }], current: 1, replicas: {} };
      continue;
    }
    for (const index of Object.keys(entry.replicas)) if (Number(index) > replicas || entry.replicas[index] === entry.current) delete entry.replicas[index];
    if (currentRevision(entry).hash === hash) {
      // The config says what runs (again): nothing on hold any more.
      delete entry.hold;
    } else if (entry.hold?.config_hash !== hash) {
      const id = Math.max(...entry.revisions.map((r) => r.id)) + 1;
      entry.revisions.push({ id, spec, hash, created: now.toISOString() });
      for (let i = 1; i <= replicas; i++) entry.replicas[i] ??= entry.current;
      entry.previous = entry.current;
      entry.current = id;
      delete entry.hold;
      changed.push(name);
    }
    prune(entry);
  }
  return changed;
}

/**
 * Makes the previous revision current again (what `otto service rollback` and a failed update with
 * `failure_action: rollback` do), keeping every replica where it is until the update moves it; the spec
 * rolled back from is put on hold so the config does not roll it out again. False if there is no previous.
 */
export function rollBack(entry: ServiceSpecs, replicas: number, message: string): boolean {
  const target = entry.previous !== undefined ? revisionById(entry, entry.previous) : undefined;
  if (!target) return false;
  const from = currentRevision(entry);
  for (let i = 1; i <= replicas; i++) entry.replicas[i] ??= entry.current;
  entry.previous = entry.current;
  entry.current = target.id;
  for (const index of Object.keys(entry.replicas)) if (entry.replicas[index] === entry.current) delete entry.replicas[index];
  entry.hold = { config_hash: from.hash, state: 'rolled-back', message };
  return true;
}

/** Keeps the current and previous revisions, those replicas run, and a few spare. */
function prune(entry: ServiceSpecs): void {
  const used = new Set([entry.current, ...(entry.previous !== undefined ? [entry.previous] : []), ...Object.values(entry.replicas)]);
  const spare = entry.revisions
    .filter((r) => !used.has(r.id))
    .sort((a, b) => b.id - a.id)
    .slice(0, SPARE_REVISIONS)
    .map((r) => r.id);
  entry.revisions = entry.revisions.filter((r) => used.has(r.id) || spare.includes(r.id));
}
