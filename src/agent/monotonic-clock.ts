/**
 * Milliseconds on a monotonic clock, as performance.now() gives them: the global `performance` loads Node's
 * perf_hooks (ten modules, about 0.3 MB of an agent's RSS, npm run bench:agent); process.hrtime does not.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
