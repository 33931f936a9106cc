import { createHash } from 'node:crypto';
import type { ContainerSpec } from './messages.js';

/** JSON with sorted keys, so the same spec always hashes the same whatever order it was built in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The value of the `otto.spec-hash` label: a changed hash means the container must be replaced. */
export function specHash(spec: ContainerSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 12);
}
