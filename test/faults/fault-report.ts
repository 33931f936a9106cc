/**
 * What every fault scenario reports. In `npm test` the scenarios run with small counts and assert; `npm run
 * faults` runs them with large counts (OTTO_FAULTS=full) and scripts/faults-table.mjs prints the rows they
 * appended to test-artifacts/faults.jsonl.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface FaultRow {
  scenario: string;
  /** Faults injected (kills, restarts, outages). */
  runs: number;
  /** Replica containers removed or replaced that the scenario did not ask for. */
  recreated: number;
  /** Moments when one replica had more than one container. */
  duplicates: number;
  /** Seconds until the cluster was back to normal after each fault: the worst and the median. */
  recoverMaxS?: number;
  recoverP50S?: number;
  notes?: string;
}

export const FULL = process.env.OTTO_FAULTS === 'full';

/** The CI count, or the larger one under `npm run faults`. */
export function count(ci: number, full: number): number {
  return FULL ? full : ci;
}

const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

export function recordFault(row: FaultRow): void {
  mkdirSync(artifacts, { recursive: true });
  appendFileSync(`${artifacts}faults.jsonl`, `${JSON.stringify({ ...row, at: new Date().toISOString(), full: FULL })}\n`);
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export const seconds = (ms: number) => Math.round(ms / 100) / 10;
